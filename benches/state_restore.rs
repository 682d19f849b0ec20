//! Restore time of keyed state, per backend: the same state (by default
//! 100 MB of keys and values, one partition, one stage) written to the
//! directory store, a NATS key-value bucket and a Kafka changelog topic,
//! then read back the way a worker that takes the partition over reads it.
//! Reports seconds per 100 MB for each, measured in one run.
//!
//! `cargo bench --bench state_restore` (after `scripts/brokers.sh`);
//! `-- dir`, `-- nats` or `-- kafka` runs one backend;
//! `WEIR_BENCH_STATE_MB` changes the size, `WEIR_BENCH_VALUE_BYTES` the
//! size of each value (100).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
#[path = "common/brokers.rs"]
mod common;
use common::Bench;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use weir::checkpoint::changelog::{position_headers, record_key, Changelog};
use weir::checkpoint::{CheckpointStore, DirStore, KeyedChanges, NatsKvStore, Record};
use weir::config::{KafkaSource, NatsConnection};

const PIPELINE: &str = "restore";
const STAGE: &str = "count";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The state: keys `key-<n>` with values of `value_bytes` bytes, about
/// `mb` MB of keys and values together.
fn state(mb: usize, value_bytes: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let per_key = value_bytes + 11;
    let keys = mb * 1_000_000 / per_key;
    (0..keys)
        .map(|i| {
            let mut value = format!("{i}:").into_bytes();
            value.resize(value_bytes, b'.');
            (format!("key-{i:07}").into_bytes(), value)
        })
        .collect()
}

fn bytes_of(entries: &[(Vec<u8>, Vec<u8>)]) -> usize {
    entries.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn changes(state: &BTreeMap<Vec<u8>, Vec<u8>>) -> Arc<KeyedChanges> {
    let entries = state
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    Arc::new([(STAGE.to_string(), entries)].into())
}

/// Writes `state` to `store` as one checkpoint, then times a load.
async fn through_store(
    store: &dyn CheckpointStore,
    state: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> (Duration, usize) {
    let record = Record {
        position: 1,
        states: BTreeMap::new(),
    };
    store
        .save(PIPELINE, "shard-0", &record, changes(state))
        .await
        .unwrap();
    let start = Instant::now();
    let stored = store.load(PIPELINE, "shard-0").await.unwrap().unwrap();
    let took = start.elapsed();
    assert_eq!(stored.keyed[STAGE].len(), state.len(), "every key restored");
    (took, bytes_of(&stored.keyed[STAGE]))
}

/// Produces `state` to the changelog of a one-partition topic, as
/// exactly-once batches would have, then times the rebuild.
async fn through_changelog(brokers: &str, state: &BTreeMap<Vec<u8>, Vec<u8>>) -> (Duration, usize) {
    let topic = "orders";
    let source = KafkaSource {
        brokers: brokers.to_string(),
        group: "restore".into(),
        topics: vec![topic.into()],
        properties: Default::default(),
        instance: None,
    };
    common::create_topic(brokers, topic, 1).await;
    let changelog = Changelog::new(&source, PIPELINE);
    changelog.ensure_topics().await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let target = changelog.topic(topic);
    // A position per 512 keys, as batches would write them.
    let mut pending = Vec::new();
    for (i, (k, v)) in state.iter().enumerate() {
        let key = record_key(STAGE, k);
        let position = (i / 512).to_string();
        let headers = position_headers(&position);
        let record = FutureRecord::to(&target)
            .partition(0)
            .key(&key)
            .payload(v)
            .headers(headers);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        if pending.len() == 10_000 {
            for d in pending.drain(..) {
                d.await.unwrap().unwrap();
            }
        }
    }
    for d in pending {
        d.await.unwrap().unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let start = Instant::now();
    let restored = changelog.restore(topic, 0, u64::MAX).await.unwrap();
    let took = start.elapsed();
    assert_eq!(restored[STAGE].len(), state.len(), "every key restored");
    (took, bytes_of(&restored[STAGE]))
}

fn report(backend: &str, (took, bytes): (Duration, usize)) {
    let mb = bytes as f64 / 1e6;
    println!(
        "| {backend} | {mb:.1} MB | {:.2} s | **{:.2} s** |",
        took.as_secs_f64(),
        took.as_secs_f64() * 100.0 / mb
    );
}

fn main() {
    let Some(b) = Bench::start() else {
        return;
    };
    let mb = env_usize("WEIR_BENCH_STATE_MB", 100);
    let value_bytes = env_usize("WEIR_BENCH_VALUE_BYTES", 100);
    let state = state(mb, value_bytes);
    println!(
        "{} keys, values of {value_bytes} B, one partition of one stage\n",
        state.len()
    );
    println!("| backend | keys and values | restore | per 100 MB |");
    println!("|---|---|---|---|");
    if b.wants("dir") {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        report(
            "directory store",
            b.tokio.block_on(through_store(&store, &state)),
        );
    }
    if b.wants("nats") {
        let (_server, url) = common::nats();
        let connection = NatsConnection {
            url,
            auth: Default::default(),
        };
        let measured = b.tokio.block_on(async {
            let store = NatsKvStore::open(&connection, "restore").await.unwrap();
            through_store(&store, &state).await
        });
        report("NATS key-value bucket", measured);
    }
    if b.wants("kafka") {
        let (_broker, brokers) = common::tansu();
        report(
            "Kafka changelog (Tansu)",
            b.tokio.block_on(through_changelog(&brokers, &state)),
        );
    }
}
