//! Persistent checkpoints: a worker killed with SIGKILL after a checkpoint
//! was saved restarts with the stages' state and the source position of that
//! checkpoint, together.

use crate::support::brokers::NatsServer;
use crate::support::*;
use crate::support::{free_port, scrape, spawn_weir, Process};
use std::io::Write;
use std::time::{Duration, Instant};
use weir::checkpoint::{CheckpointStore, DirStore, KeyedChanges, NatsKvStore, Record, Stored};

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
    killed_worker_resumes("counter.wasm", "store = \"dir\", path = \"state\"");
}

#[test]
fn a_killed_worker_resumes_keyed_state_from_the_directory_store() {
    killed_worker_resumes("keyed_counter.wasm", "store = \"dir\", path = \"state\"");
}

#[test]
fn a_killed_worker_resumes_keyed_state_from_a_nats_bucket() {
    let nats = NatsServer::start();
    killed_worker_resumes(
        "keyed_counter.core.wasm",
        &format!(
            "store = \"nats\", url = \"{}\", bucket = \"ck\"",
            nats.url()
        ),
    );
}

/// What the store holds for each of the two shards.
fn stored(d: &std::path::Path, store: &str) -> Vec<Stored> {
    tokio_rt().block_on(async {
        let store: Box<dyn CheckpointStore> = if store.contains("nats") {
            let url = store.split('"').nth(3).unwrap().to_string();
            let connection = weir::config::NatsConnection {
                url,
                auth: Default::default(),
            };
            Box::new(NatsKvStore::open(&connection, "ck").await.unwrap())
        } else {
            Box::new(DirStore::open(&d.join("state")).unwrap())
        };
        let mut out = Vec::new();
        for shard in 0..2 {
            out.push(
                store
                    .load("ck", &format!("shard-{shard}"))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        out
    })
}

/// A worker counting per key with `plugin` is killed after a checkpoint
/// to `store`; restarted, it reads on from the checkpoint's positions with
/// the counts it had there.
fn killed_worker_resumes(plugin: &str, store: &str) {
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
             checkpoint = {{ {store}, interval = \"50ms\" }}\n\
             [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
            root().join("plugins/dist").join(plugin).display()
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
    let saved = stored(d, store);
    assert_eq!(
        saved.iter().map(|s| s.record.position).max(),
        Some(N as u64 / 2),
        "{plugin}: the checkpoint holds the first half: {saved:?}"
    );
    if plugin.starts_with("keyed") {
        let keys: usize = saved.iter().map(|s| s.keyed["count"].len()).sum();
        assert_eq!(keys, KEYS, "{plugin}: every key's count, in the store");
        show_state(&p, N / 2);
    }

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
        assert_eq!(
            count,
            i / KEYS + 1,
            "{plugin}: event {i} counted as {count}"
        );
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
        let none = std::sync::Arc::new(KeyedChanges::new());
        let mut record = Record::default();
        for n in 1..=3u64 {
            record.position = n * 10;
            record
                .states
                .insert("count".into(), n.to_le_bytes().to_vec());
            store
                .save("p", "shard-0", &record, none.clone())
                .await
                .unwrap();
        }
        let other = Record {
            position: 7,
            ..Record::default()
        };
        store
            .save("p", "orders.3", &other, none.clone())
            .await
            .unwrap();
        // A second handle, as a restarted worker would open it.
        let again = NatsKvStore::open(&connection, "weir-test").await.unwrap();
        let plain = |record: &Record| Stored {
            record: record.clone(),
            keyed: Default::default(),
        };
        assert_eq!(
            again.load("p", "shard-0").await.unwrap(),
            Some(plain(&record))
        );
        assert_eq!(
            again.load("p", "orders.3").await.unwrap(),
            Some(plain(&other))
        );
        assert_eq!(again.load("p", "shard-1").await.unwrap(), None);
        assert_eq!(again.load("other", "shard-0").await.unwrap(), None);
    });
}

/// Saves `rounds` checkpoints of a counter over `keys` keys in `store`
/// (every round changes a few keys and removes one); returns the keyed
/// state the last one holds.
async fn save_rounds(
    store: &dyn CheckpointStore,
    rounds: u64,
    keys: u64,
) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut expected = std::collections::BTreeMap::new();
    for round in 1..=rounds {
        let mut changes = KeyedChanges::new();
        let c = changes.entry("count".to_string()).or_default();
        for k in [round % keys, (round * 7) % keys] {
            let key = format!("k{k}").into_bytes();
            let value = round.to_le_bytes().to_vec();
            c.insert(&key, Some(&value));
            expected.insert(key, value);
        }
        let gone = format!("k{}", (round * 3 + 1) % keys).into_bytes();
        if !c.contains_key(&gone) {
            c.insert(&gone, None);
            expected.remove(&gone);
        }
        let record = Record {
            position: round,
            ..Record::default()
        };
        store
            .save("p", "shard-0", &record, changes.into())
            .await
            .unwrap();
    }
    expected
}

#[test]
fn the_nats_store_rebuilds_keyed_state_from_its_log_across_compactions() {
    let nats = NatsServer::start();
    tokio_rt().block_on(async {
        let connection = weir::config::NatsConnection {
            url: nats.url(),
            auth: Default::default(),
        };
        let store = NatsKvStore::open(&connection, "keyed").await.unwrap();
        // More rounds than the log keeps before it folds them into one.
        let rounds = 2 * weir::checkpoint::NATS_COMPACT_AFTER as u64 + 5;
        let expected = save_rounds(&store, rounds, 50).await;
        let again = NatsKvStore::open(&connection, "keyed").await.unwrap();
        let stored = again.load("p", "shard-0").await.unwrap().unwrap();
        assert_eq!(stored.record.position, rounds);
        let got: std::collections::BTreeMap<_, _> = stored.keyed["count"].iter().cloned().collect();
        assert_eq!(
            got, expected,
            "the state of the last checkpoint, key for key"
        );

        // A log entry written by a save that never reached its record (a
        // crash between the two) is not read.
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let kv = js.get_key_value("keyed").await.unwrap();
        let record: serde_json::Value =
            serde_json::from_slice(&kv.get("p.shard-0").await.unwrap().unwrap()).unwrap();
        let log = &record["keyed_log"];
        let next = log["base"].as_u64().unwrap() + log["chunks"].as_array().unwrap().len() as u64;
        kv.put(format!("p.shard-0.keyed.{next}.0"), "torn".into())
            .await
            .unwrap();
        let stored = again.load("p", "shard-0").await.unwrap().unwrap();
        assert_eq!(stored.keyed["count"].len(), expected.len());

        // An entry the record names that is gone: refused, never half-read.
        let base = log["base"].as_u64().unwrap();
        kv.purge(format!("p.shard-0.keyed.{base}.0")).await.unwrap();
        let err = again.load("p", "shard-0").await.unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("missing"), "{err}");
    });
}

#[test]
fn the_directory_store_keeps_keyed_state_and_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    tokio_rt().block_on(async {
        let store = DirStore::open(dir.path()).unwrap();
        let expected = save_rounds(&store, 40, 20).await;
        drop(store);
        let store = DirStore::open(dir.path()).unwrap();
        let stored = store.load("p", "shard-0").await.unwrap().unwrap();
        assert_eq!(stored.record.position, 40);
        let got: std::collections::BTreeMap<_, _> = stored.keyed["count"].iter().cloned().collect();
        assert_eq!(got, expected);
        drop(store);

        // A file cut short (a torn copy) or overwritten is refused with
        // its name, not loaded in part.
        let file = dir.path().join("p/shard-0.redb");
        let bytes = std::fs::read(&file).unwrap();
        for damaged in [bytes[..bytes.len() / 2].to_vec(), vec![7u8; bytes.len()]] {
            std::fs::write(&file, &damaged).unwrap();
            let store = DirStore::open(dir.path()).unwrap();
            let err = store.load("p", "shard-0").await.unwrap_err().to_string();
            assert!(
                err.contains("damaged") && err.contains("shard-0.redb"),
                "{err}"
            );
        }
    });
}

/// `weir state` shows the keyed counts the store holds after `n` events.
fn show_state(p: &std::path::Path, n: usize) {
    let state = |args: &[&str]| {
        let out = weir()
            .args(["state", p.to_str().unwrap(), "--stage", "count"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let all = state(&[]);
    for shard in 0..2 {
        assert!(
            all.contains(&format!("partition shard-{shard}: position ")),
            "{all}"
        );
    }
    for k in 0..KEYS {
        let count = (n + KEYS - 1 - k) / KEYS;
        assert!(
            all.contains(&format!("\"k{k}\" = 0x")) && all.contains(&format!("(u64 LE: {count})")),
            "k{k} counted {count} times:\n{all}"
        );
    }
    let one = state(&["--key", "k0"]);
    assert_eq!(one.matches("\"k0\" = ").count(), 1, "{one}");
    assert_eq!(one.matches("\"k0\": no value").count(), 1, "{one}");
}
