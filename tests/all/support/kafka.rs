//! Kafka helpers: topics, producing and reading records, committed offsets,
//! and the pipelines the Kafka tests run.

use super::{pipeline, root};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

pub async fn produce(brokers: &str, topic: &str, events: &[(i32, String)]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (partition, value) in events {
        let key = format!("k{partition}");
        p.send(
            FutureRecord::to(topic)
                .partition(*partition)
                .key(&key)
                .payload(value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

/// A record as a test reads it: value and headers.
pub type Record = (String, BTreeMap<String, String>);

/// Reads all `partitions` of `topic` from the beginning until `enough` says
/// so (given what was read and how long since the last record came).
pub fn read_until(
    brokers: &str,
    topic: &str,
    partitions: i32,
    enough: impl Fn(&[Record], Duration) -> bool,
) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "verifier")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    drop(tpl);
    let mut got = Vec::new();
    let mut last = Instant::now();
    while !enough(&got, last.elapsed()) {
        let polled = c.poll(Duration::from_millis(100));
        if let Some(Err(e)) = &polled {
            eprintln!("verifier poll on {topic}: {e}");
        }
        if let Some(Ok(m)) = polled {
            last = Instant::now();
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.push((
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                headers,
            ));
        }
    }
    got
}

/// Reads `n` messages from all `partitions` of `topic` (value, headers).
pub fn consume(brokers: &str, topic: &str, partitions: i32, n: usize) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(60);
    read_until(brokers, topic, partitions, |got, _| {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages arrived on {topic}",
            got.len()
        );
        got.len() >= n
    })
}

pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let offsets = got
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect();
    drop(got);
    offsets
}

pub fn kafka_pipeline(brokers: &str, stage: &str, extra: &str) -> weir::config::Pipeline {
    pipeline(&format!(
        r#"
        name = "k"
        {extra}
        [source]
        type = "kafka"
        brokers = "{brokers}"
        group = "weir"
        topics = ["in"]
        properties = {{ "session.timeout.ms" = "3000", "heartbeat.interval.ms" = "500" }}
        [batch]
        max_events = 50
        linger = "5ms"
        [[stage]]
        name = "s"
        plugin = "{{dist}}/{stage}"
        [sink]
        type = "kafka"
        brokers = "{brokers}"
        topic = "out"
        [dead_letter]
        type = "kafka"
        brokers = "{brokers}"
        topic = "dlq"
        "#
    ))
}

pub const PARTITIONS: i32 = 4;

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn setup(brokers: &str) {
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

pub fn produce_range(brokers: &str, from: usize, to: usize) {
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
pub fn read_records(brokers: &str, n: usize) -> Vec<(String, Option<u64>)> {
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

pub fn pipeline_file(dir: &std::path::Path, brokers: &str) -> std::path::PathBuf {
    pipeline_file_with(dir, brokers, "counter.wasm")
}

/// [`pipeline_file`] with another counter of `plugins/dist` as its stage.
pub fn pipeline_file_with(
    dir: &std::path::Path,
    brokers: &str,
    plugin: &str,
) -> std::path::PathBuf {
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
            root().join("plugins/dist").join(plugin).display()
        ),
    )
    .unwrap();
    file
}
