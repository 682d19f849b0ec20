"""Runs the same transform (parse a 256 B JSON order, drop it under 10, add
two fields, serialize) from one Kafka topic to another on one Tansu broker
with weir (the stage in Rust, Go, JavaScript and Python) and with the
stream processors a user would pick instead: Quix Streams, Bytewax and
Faust. Each run's every output is verified (count, no duplicates, fields
right). Writes results.md and peers.svg beside this file. Started by
run.sh."""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, "apps")
EVENTS = int(os.environ.get("PEERS_EVENTS", "100000"))
ROUNDS = int(os.environ.get("PEERS_ROUNDS", "1"))
TIMEOUT = float(os.environ.get("PEERS_TIMEOUT", "300"))
TICKS = os.sysconf("SC_CLK_TCK")
# PEERS_ONLY=weir,Quix runs the systems whose labels hold one of the words
# (results.md and the chart are then left as they are).
ONLY = [w for w in os.environ.get("PEERS_ONLY", "").split(",") if w]


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def value(i):
    v = '{"id":%d,"amount":%d.5,"note":"' % (i, i % 1000)
    return (v + "x" * (254 - len(v)) + '"}').encode()


def kept(n):
    """Orders of at least 10 among the first n: event i's amount is i % 1000 + 0.5."""
    return n - (n // 1000 * 10 + min(n % 1000, 10))


def start_tansu():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    binary = os.environ.get("WEIR_TANSU", os.path.expanduser("~/.cache/weir/bin/tansu"))
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("tansu did not start")


def create(brokers, topic):
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        f.result()


def produce(brokers):
    create(brokers, "in")
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for i in range(EVENTS):
        while True:
            try:
                p.produce("in", value(i), key=b"k%d" % (i % 64))
                break
            except BufferError:
                p.poll(0.1)
        if i % 10000 == 0:
            p.poll(0)
    p.flush()


def weir_command(plugin, run, brokers, workdir):
    toml = os.path.join(workdir, f"weir-{run}.toml")
    with open(toml, "w") as f:
        f.write(f'''name = "peers-{run}"
[source]
type = "kafka"
brokers = "{brokers}"
group = "weir-{run}"
topics = ["in"]
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}
[batch]
max_events = 512
linger = "5ms"
[[stage]]
name = "transform"
plugin = "{os.path.join(ROOT, "plugins/dist", plugin)}"
stateless = true
[sink]
type = "kafka"
brokers = "{brokers}"
topic = "out-{run}"
''')
    return [os.path.join(ROOT, "target/release/weir"), "run", toml]


def systems():
    py = sys.executable
    every = [
        ("weir, Rust stage", lambda run, b, w: weir_command("fixtures/transform_value.wasm", run, b, w)),
        ("weir, Go stage", lambda run, b, w: weir_command("go/transform.wasm", run, b, w)),
        ("weir, JavaScript stage", lambda run, b, w: weir_command("js/transform.wasm", run, b, w)),
        ("weir, Python stage", lambda run, b, w: weir_command("python/transform.wasm", run, b, w)),
        ("Quix Streams 3.28.1", lambda run, b, w: [py, "quix.py"]),
        ("Bytewax 0.21.1", lambda run, b, w: [py, "-m", "bytewax.run", "bytewax_flow:flow"]),
        ("Faust 0.15.3", lambda run, b, w: [py, "faust_app.py", "worker", "-l", "warn"]),
    ]
    return [s for s in every if not ONLY or any(w in s[0] for w in ONLY)]


def check(raw):
    """The id of a verified output; raises when a field is wrong."""
    o = json.loads(raw)
    amount = o["amount"]
    if amount < 10 or o["currency"] != "EUR" or o["amount_cents"] != round(amount * 100):
        raise ValueError(f"wrong output: {raw[:120]!r}")
    if o["amount"] != o["id"] % 1000 + 0.5:
        raise ValueError(f"amount does not match id: {raw[:120]!r}")
    return o["id"]


def run_one(label, command, run, brokers, broker_pid, workdir):
    out = f"out-{run}"
    create(brokers, out)
    env = dict(os.environ, BROKERS=brokers, OUT=out, GROUP=f"peers-{run}", PYTHONPATH=APPS)
    # The reader has its partitions before the system starts (no group to
    # join) and only keeps what it reads while the system runs; it checks
    # the outputs once the system is done.
    reader = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{run}",
                       "enable.auto.commit": False})
    reader.assign([TopicPartition(out, p, OFFSET_BEGINNING) for p in range(3)])
    reader.consume(1, 1.0)
    logfile = open(os.path.join(workdir, f"{run}.log"), "w")
    proc = subprocess.Popen(command(run, brokers, workdir), cwd=APPS, env=env,
                            stdout=logfile, stderr=subprocess.STDOUT)
    expected = kept(EVENTS)
    values = []
    first = cpu0 = broker0 = None
    deadline = time.time() + TIMEOUT
    try:
        while len(values) < expected:
            if proc.poll() is not None:
                raise RuntimeError(f"{label} exited with {proc.returncode}; see {logfile.name}")
            if time.time() > deadline:
                raise RuntimeError(f"{label}: {len(values)} of {expected} outputs in {TIMEOUT:.0f} s; see {logfile.name}")
            got = [m.value() for m in reader.consume(5000, 0.2) if not m.error()]
            if got and first is None:
                first = time.monotonic()
                cpu0, broker0 = cpu_seconds(proc.pid), cpu_seconds(broker_pid)
                at_first = len(got)
            values.extend(got)
        last = time.monotonic()
        cpu = cpu_seconds(proc.pid) - cpu0
        broker = cpu_seconds(broker_pid) - broker0
        # A moment more: outputs past the expected count are duplicates.
        end = time.monotonic() + 1
        while time.monotonic() < end:
            values.extend(m.value() for m in reader.consume(5000, 0.2) if not m.error())
    finally:
        reader.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    ids = [check(v) for v in values]
    distinct = len(set(ids))
    if distinct != expected:
        raise RuntimeError(f"{label}: {distinct} distinct outputs, {expected} expected")
    counted = expected - at_first
    return {"rate": counted / max(last - first, 1e-3), "cpu": cpu / counted * 1e6,
            "broker": broker / counted * 1e6, "duplicates": len(ids) - distinct}


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.barh(labels, [r[1]["rate"] / 1e3 for r in results], color="#3b6ea5")
    a.set_xlabel("output events/s (thousands, median)")
    a.invert_yaxis()
    b.barh(labels, [r[1]["cpu"] for r in results], color="#c0504d")
    b.set_xlabel("CPU µs per event of the process (median)")
    b.invert_yaxis()
    b.set_yticklabels([])
    fig.suptitle(f"Kafka (Tansu) → transform → Kafka, {EVENTS} JSON events of 256 B")
    fig.tight_layout()
    fig.savefig(path)


def main():
    tansu, brokers = start_tansu()
    workdir = tempfile.mkdtemp(prefix="weir-peers-")
    try:
        log(f"producing {EVENTS} events to {brokers}")
        produce(brokers)
        runs = {label: [] for label, _ in systems()}
        failed = {}
        for r in range(ROUNDS):
            for i, (label, command) in enumerate(systems()):
                if label in failed:
                    continue
                log(f"round {r + 1}: {label}")
                try:
                    res = run_one(label, command, f"{i}-{r}", brokers, tansu.pid, workdir)
                except Exception as e:  # noqa: BLE001 - reported, the others go on
                    failed[label] = str(e)
                    log(f"  failed: {e}")
                    continue
                log(f"  {res['rate'] / 1e3:.0f} k events/s, {res['cpu']:.1f} µs CPU/event, "
                    f"{res['duplicates']} duplicates")
                runs[label].append(res)
        results = []
        for label, rs in runs.items():
            if rs:
                med = {k: statistics.median(x[k] for x in rs) for k in ("rate", "cpu", "broker")}
                med["duplicates"] = sum(x["duplicates"] for x in rs)
                results.append((label, med))
        lines = [f"{EVENTS} events, {ROUNDS} round(s), medians; outputs verified\n",
                 "| system | events/s | CPU µs/event | broker CPU µs/event | duplicates |",
                 "|---|---|---|---|---|"]
        for label, m in results:
            lines.append(f"| {label} | {m['rate'] / 1e3:.0f} k | {m['cpu']:.1f} | "
                         f"{m['broker']:.1f} | {m['duplicates']} |")
        for label, why in failed.items():
            lines.append(f"| {label} | failed: {why} | | | |")
        text = "\n".join(lines) + "\n"
        print(text)
        if not ONLY:
            with open(os.path.join(HERE, "results.md"), "w") as f:
                f.write(text)
            if results:
                chart(results, os.path.join(HERE, "peers.svg"))
        if failed:
            sys.exit(1)
    finally:
        tansu.terminate()
        tansu.wait()


if __name__ == "__main__":
    main()
