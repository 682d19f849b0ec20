//! Persistent checkpoints (docs/architecture.md §6): each stateful stage's state per
//! partition, stored together with the source position it belongs to. A
//! checkpoint only holds what the sinks confirmed: the state after the last
//! batch whose positions were committed. When a partition starts (a worker
//! restarts, or a Kafka partition is assigned to it) its state is imported
//! and the source resumes after the stored position, so state and position
//! move on together.
//!
//! [`CheckpointStore`] is the storage interface: one [`Record`] per
//! pipeline and partition, the latest wins, saved together with the keyed
//! state that changed since the partition's last save ([`KeyedChanges`]).
//! A local directory of embedded databases ([`DirStore`]) and a JetStream
//! key-value bucket ([`NatsKvStore`]) implement it.

mod changed_keys;
pub mod changelog;
mod dir;
mod keyed_log;
mod nats;
mod restore;

pub use changed_keys::ChangedKeys;
pub use dir::DirStore;
pub use nats::{NatsKvStore, COMPACT_AFTER as NATS_COMPACT_AFTER};
pub use restore::{Restored, Restorer};

use async_trait::async_trait;
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or written.
    #[error("checkpoint store: {0}")]
    Io(String),
    /// A stored checkpoint is not readable.
    #[error("checkpoint store: the stored checkpoint is damaged: {0}")]
    Damaged(String),
}

/// The state of one partition at a committed position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The last position whose events the sinks confirmed.
    pub position: u64,
    /// Per stateful stage: its state after that position.
    pub states: BTreeMap<String, Vec<u8>>,
}

impl Record {
    /// The record as JSON (states in base64).
    pub fn encode(&self) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let states: serde_json::Map<String, serde_json::Value> = self
            .states
            .iter()
            .map(|(stage, s)| (stage.clone(), b64.encode(s).into()))
            .collect();
        serde_json::json!({ "version": 2, "position": self.position, "states": states })
            .to_string()
            .into_bytes()
    }

    /// Reads [`Record::encode`]'s output.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
        let bad = |m: &str| StoreError::Damaged(m.to_string());
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Damaged(e.to_string()))?;
        if v["version"] != 2 {
            return Err(bad("unknown version"));
        }
        let position = v["position"]
            .as_u64()
            .ok_or_else(|| bad("the position is not a number"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut states = BTreeMap::new();
        for (stage, s) in v["states"].as_object().ok_or_else(|| bad("no states"))? {
            let s = b64
                .decode(s.as_str().ok_or_else(|| bad("a state is not a string"))?)
                .map_err(|_| bad("a state is not base64"))?;
            states.insert(stage.clone(), s);
        }
        Ok(Record { position, states })
    }
}

/// Keyed-state changes of one partition: stage → key → its value now
/// (`None`: removed).
pub type KeyedChanges = BTreeMap<String, ChangedKeys>;

/// One stage's keyed state of a partition: every key with its value.
pub type KeyedEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a store holds for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// Its position and the states the stages exported.
    pub record: Record,
    /// The keyed state per stage.
    pub keyed: BTreeMap<String, KeyedEntries>,
}

/// Where checkpoints are kept: one current [`Record`] per pipeline and
/// partition. Pipeline names are `[A-Za-z0-9_-]+`; partition names are
/// made of `[A-Za-z0-9._-]` and do not start with a dot (`shard-0`,
/// `orders.3`).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Replaces the partition's record and applies `changes` to its keyed
    /// state, atomically: a reader sees the old record and keyed state or
    /// the new ones, never a mix. The changes are shared, not copied: a
    /// store that writes from another thread keeps the `Arc` until it is
    /// done.
    ///
    /// # Errors
    /// When the store cannot be written; then nothing changed.
    async fn save(
        &self,
        pipeline: &str,
        partition: &str,
        record: &Record,
        changes: Arc<KeyedChanges>,
    ) -> Result<(), StoreError>;

    /// The partition's record and keyed state, if a record was saved.
    ///
    /// # Errors
    /// When the store cannot be read, or what it holds is damaged (never
    /// half of it).
    async fn load(&self, pipeline: &str, partition: &str) -> Result<Option<Stored>, StoreError>;

    /// The partitions of `pipeline` that have a record, by name, sorted.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn partitions(&self, pipeline: &str) -> Result<Vec<String>, StoreError>;

    /// The worker no longer holds the partition: what the store keeps open
    /// for it is let go, for the partition's next owner.
    async fn release(&self, pipeline: &str, partition: &str) {
        let _ = (pipeline, partition);
    }
}

/// Opens the store a pipeline names.
///
/// # Errors
/// When the directory cannot be created or the NATS server not reached.
pub async fn open(
    config: &crate::config::CheckpointStoreConfig,
) -> Result<std::sync::Arc<dyn CheckpointStore>, StoreError> {
    use crate::config::CheckpointStoreConfig as C;
    Ok(match config {
        C::Dir(path) => std::sync::Arc::new(DirStore::open(path)?),
        C::Nats { connection, bucket } => {
            std::sync::Arc::new(NatsKvStore::open(connection, bucket).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let r = Record {
            position: 42,
            states: [("count".to_string(), vec![0, 1, 255])].into(),
        };
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        assert!(matches!(
            Record::decode(br#"{"version":1}"#),
            Err(StoreError::Damaged(_))
        ));
    }
}
