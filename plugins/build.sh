#!/usr/bin/env bash
# Builds every Rust plugin of the plugins workspace in both binary forms:
#   plugins/dist/<name>.wasm        component (wasm32-wasip2)
#   plugins/dist/<name>.core.wasm   core module (wasm32-wasip1)
# Examples land in plugins/dist/, test fixtures in plugins/dist/fixtures/.
# Installs the wasm targets first when they are missing. Cargo builds into the
# host's target/ directory, so nothing is rebuilt that did not change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

installed=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-wasip2; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

for t in wasm32-wasip2 wasm32-wasip1; do
  cargo build --quiet --release --manifest-path plugins/Cargo.toml --target "$t" --target-dir target
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
bash plugins/build-python.sh
bash plugins/build-js.sh
bash plugins/build-go.sh
echo "plugins built into plugins/dist/" >&2
