#!/usr/bin/env bash
# The peers bench: weir against Quix Streams, Bytewax and Faust on one Tansu
# broker, the same transform, every output verified. Installs its pinned
# Python packages into ~/.cache/weir/peers-venv (a line per step), builds
# weir (release) and the plugins, then runs peers.py, which writes
# results.md and peers.svg here. PEERS_EVENTS (default 100000) and
# PEERS_ROUNDS (default 1) size it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$HOME/.cache/weir/peers-venv"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "peers: installing the pinned peers into $venv (about 150 MB from PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
cd "$root"
scripts/brokers.sh
echo "peers: building weir (release) and the plugins" >&2
cargo build --release --bin weir
WEIR=target/release/weir bash plugins/build.sh
exec "$venv/bin/python" "$here/peers.py"
