//! Persistent checkpoints: a worker killed with SIGKILL after a checkpoint
//! was saved restarts with the stages' state and the source position of that
//! checkpoint, together.

use crate::support::brokers::NatsServer;
use crate::support::*;
use crate::support::{free_port, scrape, spawn_weir, Process};
use std::io::Write;
use std::time::{Duration, Instant};
use weir::checkpoint::{CheckpointStore, NatsKvStore, Record};

const KEYS: usize = 3;

fn line(i: usize) -> String {
    format!("{{\"key\": \"k{}\", \"value\": {i}}}\n", i % KEYS)
}

fn metric(port: u16, name: &str) -> u64 {
    scrape(port)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Starts `weir run` reading the FIFO `input`; the test writes the lines.
fn start(p: &std::path::Path) -> Process {
    spawn_weir(p)
}

#[test]
fn a_killed_worker_resumes_state_and_position_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("input.jsonl");
    let port = free_port();
    let p = d.join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"ck\"\nsource = {{ type = \"file\", path = \"input.jsonl\", shards = 2 }}\n\
             sink = {{ type = \"file\", path = \"out.jsonl\" }}\n\
             batch = {{ max_events = 20, linger = \"2ms\" }}\n\
             metrics = {{ listen = \"127.0.0.1:{port}\" }}\n\
             checkpoint = {{ store = \"dir\", path = \"state\", interval = \"50ms\" }}\n\
             [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
            root().join("plugins/dist/counter.wasm").display()
        ),
    )
    .unwrap();
    const N: usize = 3000;
    let fifo_c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path in our temporary directory.
    assert_eq!(unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) }, 0);

    // First run: feed half the input, wait for a checkpoint, SIGKILL.
    let mut worker = start(&p);
    let mut input = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    for i in 0..N / 2 {
        input.write_all(line(i).as_bytes()).unwrap();
    }
    input.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(port, "weir_events_out_total") < (N / 2) as u64 {
        assert!(
            Instant::now() < deadline,
            "the first half was not processed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two checkpoint intervals: the last one holds the whole first half.
    std::thread::sleep(Duration::from_millis(200));
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    drop(input);
    let before = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    let saved: Vec<Record> = (0..2)
        .map(|shard| {
            let f = d.join(format!("state/ck/shard-{shard}.json"));
            Record::decode(&std::fs::read(f).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        saved.iter().map(|r| r.position).max(),
        Some(N as u64 / 2),
        "the checkpoint holds the first half: {saved:?}"
    );

    // Second run: the whole input again, as a replayed file would give it.
    let mut worker = start(&p);
    let mut input = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    for i in 0..N {
        input.write_all(line(i).as_bytes()).unwrap();
    }
    drop(input);
    let status = worker.child.wait().unwrap();
    assert!(status.success());
    let all = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    let after = &all[before.len()..];

    // Run two read only what the checkpoint did not cover, and its counts
    // go on from the restored state: the count of every event is the
    // number of events of its key up to it in the input.
    let mut seen = Vec::new();
    for l in after.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let i: usize = v["value"].as_str().unwrap().parse().unwrap();
        let count: usize = v["headers"][0][1].as_str().unwrap().parse().unwrap();
        assert_eq!(count, i / KEYS + 1, "event {i} counted as {count}");
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (N / 2..N).collect::<Vec<_>>(),
        "exactly the second half"
    );
    let first: usize = before.lines().count();
    assert_eq!(first, N / 2, "the first run delivered the first half");
}

#[test]
fn the_nats_key_value_store_keeps_the_latest_checkpoint() {
    let nats = NatsServer::start();
    let tokio = tokio_rt();
    tokio.block_on(async {
        let connection = weir::config::NatsConnection {
            url: nats.url(),
            auth: Default::default(),
        };
        let store = NatsKvStore::open(&connection, "weir-test").await.unwrap();
        assert_eq!(store.load("p", "shard-0").await.unwrap(), None);
        let mut record = Record::default();
        for n in 1..=3u64 {
            record.position = n * 10;
            record
                .states
                .insert("count".into(), n.to_le_bytes().to_vec());
            store.save("p", "shard-0", &record).await.unwrap();
        }
        let other = Record {
            position: 7,
            ..Record::default()
        };
        store.save("p", "orders.3", &other).await.unwrap();
        // A second handle, as a restarted worker would open it.
        let again = NatsKvStore::open(&connection, "weir-test").await.unwrap();
        assert_eq!(again.load("p", "shard-0").await.unwrap(), Some(record));
        assert_eq!(again.load("p", "orders.3").await.unwrap(), Some(other));
        assert_eq!(again.load("p", "shard-1").await.unwrap(), None);
        assert_eq!(again.load("other", "shard-0").await.unwrap(), None);
    });
}
