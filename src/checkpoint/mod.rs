//! Persistent checkpoints (DESIGN §5): each stateful stage's state per
//! partition, stored together with the source positions it belongs to. A
//! checkpoint only holds what the sinks confirmed: the state after the last
//! batch whose positions were committed. A restarted worker imports the
//! state and has the source resume after those positions, so state and
//! position move on together.
//!
//! [`CheckpointStore`] is the storage interface: a local directory
//! ([`DirStore`]) and a JetStream key-value bucket ([`NatsKvStore`])
//! implement it; a compacted Kafka topic would fit the same shape (one
//! record per pipeline key, latest wins).

mod dir;
mod nats;

pub use dir::DirStore;
pub use nats::NatsKvStore;

use async_trait::async_trait;
use base64::Engine;
use std::collections::BTreeMap;

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

/// The state of a pipeline at committed positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per partition: the last position whose events the sinks confirmed.
    pub positions: BTreeMap<u32, u64>,
    /// Per stage, per partition: the state after that position.
    pub states: BTreeMap<String, BTreeMap<u32, Vec<u8>>>,
}

impl Snapshot {
    /// The snapshot as JSON (states in base64).
    pub fn encode(&self) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let states: serde_json::Map<String, serde_json::Value> = self
            .states
            .iter()
            .map(|(stage, parts)| {
                let parts: serde_json::Map<String, serde_json::Value> = parts
                    .iter()
                    .map(|(p, s)| (p.to_string(), b64.encode(s).into()))
                    .collect();
                (stage.clone(), parts.into())
            })
            .collect();
        let positions: serde_json::Map<String, serde_json::Value> = self
            .positions
            .iter()
            .map(|(p, pos)| (p.to_string(), (*pos).into()))
            .collect();
        serde_json::json!({ "version": 1, "positions": positions, "states": states })
            .to_string()
            .into_bytes()
    }

    /// Reads [`Snapshot::encode`]'s output.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, StoreError> {
        let bad = |m: &str| StoreError::Damaged(m.to_string());
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Damaged(e.to_string()))?;
        if v["version"] != 1 {
            return Err(bad("unknown version"));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut snap = Snapshot::default();
        for (p, pos) in v["positions"]
            .as_object()
            .ok_or_else(|| bad("no positions"))?
        {
            let p = p.parse().map_err(|_| bad("a partition is not a number"))?;
            snap.positions.insert(
                p,
                pos.as_u64()
                    .ok_or_else(|| bad("a position is not a number"))?,
            );
        }
        for (stage, parts) in v["states"].as_object().ok_or_else(|| bad("no states"))? {
            let mut m = BTreeMap::new();
            for (p, s) in parts.as_object().ok_or_else(|| bad("bad states"))? {
                let p = p.parse().map_err(|_| bad("a partition is not a number"))?;
                let s = b64
                    .decode(s.as_str().ok_or_else(|| bad("a state is not a string"))?)
                    .map_err(|_| bad("a state is not base64"))?;
                m.insert(p, s);
            }
            snap.states.insert(stage.clone(), m);
        }
        Ok(snap)
    }
}

/// Where checkpoints are kept: one current snapshot per pipeline.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Replaces the pipeline's checkpoint, atomically: a reader sees the
    /// old one or the new one, never a mix.
    ///
    /// # Errors
    /// When the store cannot be written.
    async fn save(&self, pipeline: &str, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// The pipeline's checkpoint, if one was saved.
    ///
    /// # Errors
    /// When the store cannot be read or the checkpoint is damaged.
    async fn load(&self, pipeline: &str) -> Result<Option<Snapshot>, StoreError>;
}

/// Opens the store a pipeline names.
///
/// # Errors
/// When the directory cannot be created or the NATS server not reached.
pub async fn open(
    config: &crate::config::CheckpointStoreConfig,
) -> Result<Box<dyn CheckpointStore>, StoreError> {
    use crate::config::CheckpointStoreConfig as C;
    Ok(match config {
        C::Dir(path) => Box::new(DirStore::open(path)?),
        C::Nats { connection, bucket } => Box::new(NatsKvStore::open(connection, bucket).await?),
    })
}
