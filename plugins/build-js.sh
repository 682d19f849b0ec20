#!/usr/bin/env bash
# Builds the JavaScript and TypeScript plugins under
# plugins/examples/js/<name>/ and plugins/fixtures/js/<name>/ (a module
# stage.js or stage.ts) into components, plugins/dist/js/<name>.wasm: the
# SDK's entry wraps the module, esbuild bundles it with its npm
# dependencies, componentize-js (SpiderMonkey) makes the component.
# Installs the pinned tools (plugins/sdk/js/toolchain, about 420 MB) into
# ~/.cache/weir/js-toolchain-<lock hash>/ when they are missing. A plugin is
# rebuilt only when its sources, the SDK or the WIT contract are newer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "building JavaScript plugins needs Node.js 18 or later and npm (Debian: apt install nodejs npm)" >&2
  exit 1
fi
sdk="$root/plugins/sdk/js"
lock_hash=$(sha256sum "$sdk/toolchain/package-lock.json" | cut -c1-12)
tools="$HOME/.cache/weir/js-toolchain-$lock_hash"
if [ ! -x "$tools/node_modules/.bin/componentize-js" ]; then
  echo "installing the JavaScript toolchain (componentize-js 0.23.0, esbuild, typescript; about 420 MB) into $tools" >&2
  start=$(date +%s)
  rm -rf "$tools.part"
  mkdir -p "$tools.part"
  cp "$sdk/toolchain/package.json" "$sdk/toolchain/package-lock.json" "$tools.part/"
  (cd "$tools.part" && npm ci --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$tools"
  mv "$tools.part" "$tools"
  echo "installed the JavaScript toolchain in $(( $(date +%s) - start ))s" >&2
fi
bin="$tools/node_modules/.bin"

mkdir -p plugins/dist/js
for dir in plugins/examples/js/*/ plugins/fixtures/js/*/; do
  [ -d "$dir" ] || continue
  src=""
  for f in stage.ts stage.js; do [ -f "$dir/$f" ] && src="$dir$f" && break; done
  [ -n "$src" ] || continue
  name=$(basename "$dir")
  out="plugins/dist/js/$name.wasm"
  if [ -f "$out" ] && [ -z "$(find "$dir" "$sdk" plugins/wit -newer "$out" -type f -not -path '*/node_modules/*' -print -quit)" ]; then
    continue
  fi
  work=$(mktemp -d)
  if [[ "$src" == *.ts ]]; then
    # esbuild strips types without checking them: tsc checks them first.
    "$bin/tsc" --noEmit --strict --target es2022 --module es2022 --moduleResolution bundler \
      --baseUrl "$root" --paths "{\"weir-plugin\":[\"plugins/sdk/js/index.d.ts\"]}" "$src" >&2 || {
      echo "$src: type errors (above)" >&2; exit 1; }
  fi
  # A neutral platform has no Node built-ins: a dependency that needs one
  # fails here, naming the module.
  "$bin/esbuild" "$sdk/entry.js" --bundle --format=esm --platform=neutral \
    --main-fields=module,main --log-level=warning --log-override:import-is-undefined=silent \
    --alias:weir-stage="$root/$src" --alias:weir-plugin="$sdk/index.js" \
    --external:'weir:plugin/*' --outfile="$work/bundle.js" >&2
  "$bin/componentize-js" "$work/bundle.js" --wit "$root/plugins/wit" --world-name stage \
    -d stdio random clocks http fetch-event -o "$root/$out.part" >/dev/null
  mv "$out.part" "$out"
  rm -rf "$work"
  echo "built $out" >&2
done
