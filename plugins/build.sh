#!/usr/bin/env bash
# Builds every plugin of the repository from source:
#   plugins/dist/<name>.wasm, <name>.core.wasm   Rust examples, both forms
#   plugins/dist/fixtures/                        Rust test fixtures
#   plugins/dist/<language>/<name>.wasm           go, js, ts and python
#                                                 examples and fixtures
# Rust plugins build as one cargo workspace (plugins/Cargo.toml) into the
# host's target/ directory, both wasm targets installed first when missing.
# The others are built by `weir build`, which installs their pinned
# toolchains into ~/.cache/weir when they are missing (a line per step) and
# skips a plugin that has not changed since it was built. The weir binary
# is $WEIR, or target/debug/weir (built when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

installed=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-wasip2; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

for t in wasm32-wasip2 wasm32-wasip1; do
  echo "building the Rust plugins for $t" >&2
  cargo build --release --manifest-path plugins/Cargo.toml --target "$t" --target-dir target
done

mkdir -p plugins/dist/fixtures
copy() { # <dir> <dest dir>
  local name
  for d in "$1"/*/; do
    name=$(basename "$d")
    cp "target/wasm32-wasip2/release/$name.wasm" "$2/$name.wasm"
    cp "target/wasm32-wasip1/release/$name.wasm" "$2/$name.core.wasm"
  done
}
copy plugins/examples/rust plugins/dist
copy plugins/fixtures/rust plugins/dist/fixtures

weir=${WEIR:-${CARGO_TARGET_DIR:-target}/debug/weir}
if [ -z "${WEIR:-}" ]; then
  echo "building weir (for weir build)" >&2
  cargo build --bin weir
fi
for language in go js ts python; do
  mkdir -p "plugins/dist/$language"
  for dir in plugins/examples/$language/*/ plugins/fixtures/$language/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    out="plugins/dist/$language/$name.wasm"
    "$weir" build "$dir" --out "$out" | sed -n "1s|^|$language/$name: |p" >&2
  done
done
echo "plugins built into plugins/dist/" >&2
