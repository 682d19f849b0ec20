#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, formatting, lints, then
# every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build in CI has no use for incremental state (half a GB).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
bash scripts/setup.sh
bash scripts/brokers.sh

echo "== format" >&2
cargo fmt --all -- --check
cargo fmt --all --manifest-path plugins/Cargo.toml -- --check

echo "== lints" >&2
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --target-dir target -- -D warnings

echo "== tests" >&2
cargo test --workspace
