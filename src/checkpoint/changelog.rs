//! Keyed state in exactly-once mode (Kafka → Kafka): a compacted changelog
//! topic per source topic, `weir-<pipeline>-<topic>-changelog`, with the
//! source topic's partitions. The transaction that commits a batch's output
//! and offsets also holds the keys the batch changed, produced to the
//! changelog partition of the batch's source partition (record key
//! `<stage> 0x00 <key>`, value the value, no value for a removed key), so
//! state, outputs and positions commit or abort together. A partition that
//! starts on a worker is rebuilt from its changelog partition, read with
//! `read_committed` from the beginning to its end, before its first batch.
//! Each record carries the position of the batch it belongs to (header
//! `weir-position`); a restore ignores records at or past the position the
//! partition resumes from, so it never sees the changes of an aborted
//! transaction, even from a broker that shows aborted records to
//! `read_committed` readers.

use super::{KeyedEntries, StoreError};
use crate::config::KafkaSource;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The longest a restore waits without reaching the changelog's end.
const RESTORE_PATIENCE: Duration = Duration::from_secs(120);

/// Empty polls of 200 ms past the listed end that end a restore whose
/// reads never reported the end of the partition.
const QUIET: u32 = 10;

/// The changelog topics of one pipeline.
#[derive(Debug, Clone)]
pub struct Changelog {
    source: KafkaSource,
    pipeline: String,
}

/// The record key of `stage`'s `key`.
pub fn record_key(stage: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(stage.len() + 1 + key.len());
    k.extend_from_slice(stage.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn broker(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("changelog: {what}: {e}"))
}

impl Changelog {
    /// The changelogs of `pipeline`, whose source is `source`.
    pub fn new(source: &KafkaSource, pipeline: &str) -> Self {
        Changelog {
            source: source.clone(),
            pipeline: pipeline.to_string(),
        }
    }

    /// The changelog topic of `source_topic`.
    pub fn topic(&self, source_topic: &str) -> String {
        format!("weir-{}-{source_topic}-changelog", self.pipeline)
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.source.brokers);
        for (k, v) in &self.source.properties.0 {
            c.set(k, v);
        }
        c
    }

    /// Creates every source topic's changelog topic that does not exist
    /// yet: compacted, with as many partitions as its source topic.
    ///
    /// # Errors
    /// When the brokers cannot say how many partitions a source topic has,
    /// or refuse to create a changelog.
    pub async fn ensure_topics(&self) -> Result<(), StoreError> {
        let mut topics = Vec::new();
        for t in &self.source.topics {
            let partitions = self.partitions(t).await?;
            topics.push((self.topic(t), partitions));
        }
        let admin: AdminClient<_> = self
            .client()
            .create()
            .map_err(|e| broker("admin client", e))?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, n)| {
                NewTopic::new(name, *n, TopicReplication::Fixed(-1))
                    .set("cleanup.policy", "compact")
            })
            .collect();
        let results = admin
            .create_topics(&new, &AdminOptions::new())
            .await
            .map_err(|e| broker("create topics", e))?;
        for r in results {
            match r {
                Ok(name) => {
                    tracing::info!(pipeline = %self.pipeline, topic = %name, "created the changelog topic")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, e)) => return Err(broker(&format!("create {name}"), e)),
            }
        }
        Ok(())
    }

    /// The number of partitions of `topic`.
    async fn partitions(&self, topic: &str) -> Result<i32, StoreError> {
        let (config, topic) = (self.client(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = config.create().map_err(|e| broker("consumer", e))?;
            let md = c
                .fetch_metadata(Some(&topic), Duration::from_secs(30))
                .map_err(|e| broker(&format!("metadata of {topic}"), e))?;
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if n == 0 {
                return Err(broker(&topic, "the source topic has no partitions"));
            }
            Ok(n as i32)
        })
        .await
        .map_err(|e| broker("metadata", e))?
    }

    /// The keyed state of `source_topic`'s `partition`, per stage: its
    /// changelog partition read from the beginning to its end, the last
    /// value of every key.
    ///
    /// # Errors
    /// When the changelog cannot be read to its end, or holds a record
    /// that is not weir's.
    pub async fn restore(
        &self,
        source_topic: &str,
        partition: i32,
        next: u64,
    ) -> Result<BTreeMap<String, KeyedEntries>, StoreError> {
        let mut config = self.client();
        config
            .set("group.id", format!("weir-{}-restore", self.pipeline))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // The fetch that finds the end returns at once, not after the
            // broker's long-poll wait.
            .set("fetch.wait.max.ms", "10")
            .set("isolation.level", "read_committed");
        let topic = self.topic(source_topic);
        tokio::task::spawn_blocking(move || read_to_end(&config, &topic, partition, next))
            .await
            .map_err(|e| broker("restore", e))?
    }
}

/// The header that holds the source position a changelog record belongs
/// to.
pub const POSITION_HEADER: &str = "weir-position";

/// The headers of a changelog record that belongs to source `position`
/// (its decimal digits).
pub fn position_headers(position: &str) -> rdkafka::message::OwnedHeaders {
    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: POSITION_HEADER,
        value: Some(position.as_bytes()),
    })
}

/// The source position a changelog record belongs to.
fn position(m: &impl Message) -> Option<u64> {
    use rdkafka::message::Headers;
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == POSITION_HEADER)
        .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
}

/// Reads `topic`'s `partition` from the beginning to its end, keeping the
/// records of source positions before `next`.
fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    next: u64,
) -> Result<BTreeMap<String, KeyedEntries>, StoreError> {
    let c: BaseConsumer = config.create().map_err(|e| broker("consumer", e))?;
    let at = || format!("{topic}/{partition}");
    // Its end for a `read_committed` reader: the last stable offset, so an
    // unfinished transaction (a worker killed mid-way) is not waited for.
    // A broker may list an end short of the records it holds (Tansu counts
    // one record less per produced batch): the read goes on to the end
    // its fetches report (end of partition), and never stops before this
    // one.
    let (_, end) = c
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(|e| broker(&at(), e))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| broker(topic, e))?;
    c.assign(&tpl).map_err(|e| broker(topic, e))?;
    let mut state: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
    let deadline = Instant::now() + RESTORE_PATIENCE;
    // An end of 0 is not trusted either: a broker may list one while a
    // transaction is open (a worker killed mid-way) though committed
    // records lie before it; the fetches' end of partition decides.
    let reached = |c: &BaseConsumer| {
        end <= 0
            || c.position().ok().is_some_and(|p| {
                p.find_partition(topic, partition)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= end))
            })
    };
    // Polls in a row that returned nothing: past the listed end, a quiet
    // of QUIET polls ends the read as the end of partition would.
    let mut quiet = 0;
    loop {
        if Instant::now() > deadline {
            return Err(broker(&at(), "its end was not reached in time"));
        }
        match c.poll(Duration::from_millis(200)) {
            None => {
                quiet += 1;
                if quiet >= QUIET && reached(&c) {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) if reached(&c) => break,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(broker(&at(), e)),
            Some(Ok(m)) => {
                quiet = 0;
                if position(&m).is_none_or(|p| p < next) {
                    let key = m.key().unwrap_or_default();
                    let Some(split) = key.iter().position(|b| *b == 0) else {
                        return Err(StoreError::Damaged(format!(
                            "changelog {} offset {}: a record without a stage in its key",
                            at(),
                            m.offset()
                        )));
                    };
                    let stage = String::from_utf8_lossy(&key[..split]).into_owned();
                    let entries = state.entry(stage).or_default();
                    match m.payload() {
                        Some(v) => entries.insert(key[split + 1..].to_vec(), v.to_vec()),
                        None => entries.remove(&key[split + 1..]),
                    };
                }
            }
        }
    }
    Ok(state
        .into_iter()
        .map(|(stage, entries)| (stage, entries.into_iter().collect()))
        .collect())
}
