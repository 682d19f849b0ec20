#!/usr/bin/env bash
# Builds the Python plugins under plugins/examples/python/<name>/ (module
# stage.py, one subclass of weir_plugin.Stage) and the Python test fixtures
# under plugins/fixtures/python/<name>/ into components, plugins/dist/python/<name>.wasm,
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
sdk="$root/plugins/sdk/python"
for dir in plugins/examples/python/*/ plugins/fixtures/python/*/; do
  [ -f "$dir/stage.py" ] || continue
  name=$(basename "$dir")
  out="plugins/dist/python/$name.wasm"
  if [ -f "$out" ] && [ -z "$(find "$dir" "$sdk" plugins/wit -newer "$out" -type f -not -name '*.pyc' -print -quit)" ]; then
    continue
  fi
  # Without VIRTUAL_ENV and with -p naming only the plugin's directory and
  # the SDK, no site-packages of the caller's environment end up in the
  # component. The SDK's entry module exports the plugin's Stage subclass.
  (cd "$dir" && env -u VIRTUAL_ENV PYTHONDONTWRITEBYTECODE=1 "$venv/bin/componentize-py" \
    --wit-path "$root/plugins/wit" --world stage \
    componentize weir_stage_entry -p . -p "$sdk" -o "$root/$out.part" >/dev/null)
  mv "$out.part" "$out"
  echo "built $out" >&2
done
