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
# The reference minisign tool: the tests check that it and weir verify each
# other's signatures.
if ! command -v minisign >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing minisign (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q minisign >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q minisign >/dev/null; }
  else
    echo "setup: minisign is missing; install it (apt-get install minisign) for the signature tests" >&2
  fi
fi
bash plugins/build.sh
