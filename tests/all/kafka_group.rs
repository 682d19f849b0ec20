//! Kafka consumer groups on a real broker process (Tansu): two `weir`
//! processes split the partitions, take over from each other, and survive
//! SIGKILL without losing an event.

use crate::support::brokers::Tansu;
use crate::support::{root, spawn_weir};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;

use std::time::{Duration, Instant};

pub(crate) const PARTITIONS: i32 = 4;

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub(crate) fn setup(brokers: &str) {
    block_on(async {
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        let topics = [
            NewTopic::new("in", PARTITIONS, TopicReplication::Fixed(1)),
            NewTopic::new("out", PARTITIONS, TopicReplication::Fixed(1)),
        ];
        for r in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap()
        {
            r.unwrap();
        }
    });
}

pub(crate) fn produce(brokers: &str, from: usize, to: usize) {
    block_on(async {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        for i in from..to {
            let (key, value) = (format!("k{}", i % 16), format!("e{i}"));
            p.send(
                FutureRecord::to("in")
                    .partition((i % PARTITIONS as usize) as i32)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        }
    });
}

/// Reads `out` until `n` distinct values arrived (then a little longer, for
/// trailing duplicates); returns value → how many times it was seen.
fn read_out(brokers: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (value, _) in read_records(brokers, n) {
        *seen.entry(value).or_default() += 1;
    }
    seen
}

/// Reads `out` from the start until `n` distinct values arrived (then a
/// little longer, for trailing duplicates); returns every record as its
/// value and its `count` header, in the order read.
pub(crate) fn read_records(brokers: &str, n: usize) -> Vec<(String, Option<u64>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "verifier")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("out", p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    drop(tpl);
    let mut records = Vec::new();
    let mut distinct = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut settle: Option<Instant> = None;
    loop {
        if distinct.len() >= n && settle.is_none() {
            settle = Some(Instant::now() + Duration::from_secs(1));
        }
        if settle.is_some_and(|s| Instant::now() > s) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} distinct events arrived",
            distinct.len()
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            let count = m.headers().and_then(|hs| {
                hs.iter()
                    .find(|h| h.key == "count")
                    .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
            });
            distinct.insert(value.clone());
            records.push((value, count));
        }
    }
}

pub(crate) fn pipeline_file(dir: &std::path::Path, brokers: &str) -> std::path::PathBuf {
    let file = dir.join("group.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "group"
[source]
type = "kafka"
brokers = "{brokers}"
group = "weir-group"
topics = ["in"]
properties = {{ "session.timeout.ms" = "3000", "heartbeat.interval.ms" = "500" }}
[batch]
max_events = 20
linger = "5ms"
[[stage]]
name = "count"
plugin = "{}"
[sink]
type = "kafka"
brokers = "{brokers}"
topic = "out"
[workers]
threads = 2
"#,
            root().join("plugins/dist/counter.wasm").display()
        ),
    )
    .unwrap();
    file
}

fn assigned(log: &str) -> bool {
    log.contains("partitions assigned")
}

#[test]
fn two_workers_split_the_partitions_and_one_takes_over_from_the_other() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), &tansu.brokers);
    let mut a = spawn_weir(&file);
    let mut b = spawn_weir(&file);
    produce(&tansu.brokers, 0, 400);
    let seen = read_out(&tansu.brokers, 400);
    assert_eq!(seen.len(), 400, "every event of the first half");

    // Stop one worker: its partitions move to the other.
    let log_a = a.end_with(libc::SIGTERM);
    produce(&tansu.brokers, 400, 800);
    let seen = read_out(&tansu.brokers, 800);
    let log_b = b.end_with(libc::SIGTERM);
    assert!(
        assigned(&log_a) && assigned(&log_b),
        "both workers took part:\nA:\n{log_a}\nB:\n{log_b}"
    );
    assert!(
        log_a.contains("finished"),
        "the stopped worker drained and left cleanly:\n{log_a}"
    );
    assert_eq!(seen.len(), 800, "every input event is in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("two workers, one stopped: {duplicates} duplicates of 800 events");
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_duplicates_are_counted() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), &tansu.brokers);
    const N: usize = 2000;
    // Events keep arriving while the workers are killed, so each kill lands
    // with batches in flight and offsets not yet committed.
    let brokers = tansu.brokers.clone();
    let producer = std::thread::spawn(move || {
        for from in (0..N).step_by(50) {
            produce(&brokers, from, from + 50);
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    for kill_after in [300, 1200] {
        let mut w = spawn_weir(&file);
        read_out(&tansu.brokers, kill_after);
        w.end_with(libc::SIGKILL);
    }
    let mut w = spawn_weir(&file);
    producer.join().unwrap();
    let seen = read_out(&tansu.brokers, N);
    w.end_with(libc::SIGTERM);
    assert_eq!(seen.len(), N, "every input event is in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("at-least-once after two SIGKILLs: {duplicates} duplicates of {N} events");
}
