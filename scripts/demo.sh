#!/usr/bin/env bash
# Builds everything and runs the demo pipeline (pipelines/demo.toml): orders
# from a bundled JSONL file through four sandboxed plugins to stdout, dead
# letters included. Extra arguments go to `weir run`.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build in CI has no use for incremental state (half a GB).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
bash scripts/setup.sh
cargo build --quiet --bin weir
exec target/debug/weir run pipelines/demo.toml "$@"
