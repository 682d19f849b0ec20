//! Checkpoints in a JetStream key-value bucket. A partition's record sits
//! under `<pipeline>.<partition>` (the latest value wins; the bucket keeps a
//! short history). Its keyed state is a log beside it: each save that
//! changed keys writes one entry of the changes,
//! `<pipeline>.<partition>.keyed.<seq>.<chunk>` (in chunks that fit a NATS
//! message), and then the record, which names the entries that count. The
//! record is the commit point: entries written by a save that did not reach
//! its record are ignored, and overwritten by the next save. Every
//! [`COMPACT_AFTER`] entries, the log is folded into one entry and the old
//! entries are purged.

use super::keyed_log::{apply, drop_removed, encode, live};
use super::{CheckpointStore, KeyedChanges, Record, StoreError, Stored};
use crate::config::NatsConnection;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Log entries a partition's keyed state may have before they are folded
/// into one.
pub const COMPACT_AFTER: usize = 32;
/// The largest chunk of one log entry.
const CHUNK: usize = 512 << 10;

/// A JetStream key-value bucket of checkpoints.
pub struct NatsKvStore {
    kv: async_nats::jetstream::kv::Store,
    /// Per `<pipeline>.<partition>`: the log the last record named.
    logs: Mutex<HashMap<String, Log>>,
}

/// Which keyed-state log entries count: `base`, `base + 1`, … with the
/// number of chunks of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Log {
    base: u64,
    chunks: Vec<u32>,
}

impl Log {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "base": self.base, "chunks": self.chunks })
    }

    fn from_json(v: &serde_json::Value) -> Result<Log, StoreError> {
        let bad = || StoreError::Damaged("the record's keyed-state log is not readable".into());
        if v.is_null() {
            return Ok(Log::default());
        }
        let base = v["base"].as_u64().ok_or_else(bad)?;
        let chunks = v["chunks"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|c| {
                c.as_u64()
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<_, _>>()?;
        Ok(Log { base, chunks })
    }
}

impl NatsKvStore {
    /// Connects and opens `bucket`, creating it when missing.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the bucket.
    pub async fn open(connection: &NatsConnection, bucket: &str) -> Result<Self, StoreError> {
        let client = crate::nats::connect(connection)
            .await
            .map_err(StoreError::Io)?;
        let js = async_nats::jetstream::new(client);
        let kv = js
            .create_or_update_key_value(async_nats::jetstream::kv::Config {
                bucket: bucket.to_string(),
                description: "weir stage checkpoints".into(),
                history: 5,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::Io(format!("bucket {bucket}: {e}")))?;
        Ok(NatsKvStore {
            kv,
            logs: Mutex::default(),
        })
    }

    fn entry(name: &str, seq: u64, chunk: u32) -> String {
        format!("{name}.keyed.{seq}.{chunk}")
    }

    /// Writes `bytes` as log entry `seq`; returns its chunk count.
    async fn write_entry(&self, name: &str, seq: u64, bytes: &[u8]) -> Result<u32, StoreError> {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(CHUNK).collect()
        };
        for (i, c) in chunks.iter().enumerate() {
            self.kv
                .put(
                    Self::entry(name, seq, i as u32),
                    bytes::Bytes::copy_from_slice(c),
                )
                .await
                .map_err(|e| StoreError::Io(e.to_string()))?;
        }
        Ok(chunks.len() as u32)
    }

    /// Every change the log names, applied in order.
    async fn read_log(&self, name: &str, log: &Log) -> Result<KeyedChanges, StoreError> {
        let mut state = KeyedChanges::new();
        for (i, n) in log.chunks.iter().enumerate() {
            let seq = log.base + i as u64;
            let mut bytes = Vec::new();
            for c in 0..*n {
                let key = Self::entry(name, seq, c);
                match self.kv.get(&key).await {
                    Ok(Some(b)) => bytes.extend_from_slice(&b),
                    Ok(None) => {
                        return Err(StoreError::Damaged(format!(
                            "{key} is missing from the bucket; the partition's keyed state \
                             cannot be rebuilt"
                        )))
                    }
                    Err(e) => return Err(StoreError::Io(e.to_string())),
                }
            }
            apply(&bytes, &mut state)?;
        }
        Ok(state)
    }

    /// The log the partition's stored record names.
    async fn stored_log(&self, name: &str) -> Result<Log, StoreError> {
        match self.kv.get(name).await {
            Ok(Some(b)) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&b).map_err(|e| StoreError::Damaged(e.to_string()))?;
                Log::from_json(&v["keyed_log"])
            }
            Ok(None) => Ok(Log::default()),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }
}

#[async_trait]
impl CheckpointStore for NatsKvStore {
    async fn save(
        &self,
        pipeline: &str,
        partition: &str,
        record: &Record,
        changes: Arc<KeyedChanges>,
    ) -> Result<(), StoreError> {
        let name = format!("{pipeline}.{partition}");
        let known = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned();
        let mut log = match known {
            Some(l) => l,
            None => self.stored_log(&name).await?,
        };
        let old = log.clone();
        if !changes.is_empty() {
            let seq = log.base + log.chunks.len() as u64;
            let n = self.write_entry(&name, seq, &encode(&changes)).await?;
            log.chunks.push(n);
        }
        let compacted = log.chunks.len() > COMPACT_AFTER;
        if compacted {
            let all = self.read_log(&name, &log).await?;
            let mut live = all;
            drop_removed(&mut live);
            let seq = log.base + log.chunks.len() as u64;
            let n = self.write_entry(&name, seq, &encode(&live)).await?;
            log = Log {
                base: seq,
                chunks: vec![n],
            };
        }
        let mut value: serde_json::Value =
            serde_json::from_slice(&record.encode()).map_err(|e| StoreError::Io(e.to_string()))?;
        value["keyed_log"] = log.to_json();
        self.kv
            .put(&name, value.to_string().into())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?;
        if compacted {
            // What the new record no longer names (best effort: an entry
            // left behind is never read).
            for (i, n) in old.chunks.iter().enumerate() {
                for c in 0..*n {
                    let _ = self
                        .kv
                        .purge(Self::entry(&name, old.base + i as u64, c))
                        .await;
                }
            }
        }
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, log);
        Ok(())
    }

    async fn load(&self, pipeline: &str, partition: &str) -> Result<Option<Stored>, StoreError> {
        let name = format!("{pipeline}.{partition}");
        let bytes = match self.kv.get(&name).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(StoreError::Io(e.to_string())),
        };
        let record = Record::decode(&bytes)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Damaged(e.to_string()))?;
        let log = Log::from_json(&v["keyed_log"])?;
        let keyed = live(self.read_log(&name, &log).await?);
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, log);
        Ok(Some(Stored { record, keyed }))
    }

    async fn partitions(&self, pipeline: &str) -> Result<Vec<String>, StoreError> {
        use futures_util::StreamExt;
        let prefix = format!("{pipeline}.");
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut names = std::collections::BTreeSet::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| StoreError::Io(e.to_string()))?;
            if let Some(name) = key.strip_prefix(&prefix) {
                if !name.contains(".keyed.") {
                    names.insert(name.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn release(&self, pipeline: &str, partition: &str) {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("{pipeline}.{partition}"));
    }
}
