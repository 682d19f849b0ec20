#!/usr/bin/env bash
# Builds the Python plugins under plugins/examples/python/<name>/ (module
# app.py, class Transform) into components, plugins/dist/python/<name>.wasm,
# with componentize-py. Installs componentize-py (pinned, from PyPI) into
# ~/.cache/weir/componentize-py-<version>/ when it is missing. A plugin is
# rebuilt only when its sources or the WIT contract are newer than it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=0.25.1
venv="$HOME/.cache/weir/componentize-py-$version"
if [ ! -x "$venv/bin/componentize-py" ]; then
  echo "installing componentize-py $version into $venv" >&2
  rm -rf "$venv.part"
  python3 -m venv "$venv.part"
  "$venv.part/bin/pip" install --quiet "componentize-py==$version"
  # The venv's scripts name their interpreter by path: fix it up on rename.
  sed -i "1s|$venv.part|$venv|" "$venv.part/bin/componentize-py"
  rm -rf "$venv"
  mv "$venv.part" "$venv"
fi

mkdir -p plugins/dist/python
for dir in plugins/examples/python/*/; do
  name=$(basename "$dir")
  out="plugins/dist/python/$name.wasm"
  if [ -f "$out" ] && [ -z "$(find "$dir" plugins/wit -newer "$out" -type f -print -quit)" ]; then
    continue
  fi
  # Without VIRTUAL_ENV and with -p naming the plugin's own directory, no
  # site-packages of the caller's environment end up in the component.
  (cd "$dir" && env -u VIRTUAL_ENV "$venv/bin/componentize-py" --wit-path "$root/plugins/wit" \
    --world stage componentize app -p . -o "$root/$out.part" >/dev/null)
  mv "$out.part" "$out"
  echo "built $out" >&2
done
