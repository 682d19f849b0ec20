#!/usr/bin/env bash
# Everything the demo and the tests need, installed and built from source:
# the wasm targets and every plugin (examples and test fixtures), in both
# binary forms. Safe to run again: cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust with rustup first" >&2
  exit 1
fi
bash plugins/build.sh
