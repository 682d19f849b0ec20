//! Restoring partitions: a source asks the [`Restorer`] for a partition's
//! record before it sends the partition's first event; the states wait in
//! [`Restored`] until the partition's first instance takes them, and the
//! source resumes after the record's position.

use super::{CheckpointStore, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Restored state not yet taken: stage → partition id → state.
#[derive(Debug, Default)]
pub struct Restored(Mutex<BTreeMap<String, BTreeMap<u32, Vec<u8>>>>);

impl Restored {
    /// Takes the restored state of `stage` for `partition`, if any.
    pub fn take(&self, stage: &str, partition: u32) -> Option<Vec<u8>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let parts = m.get_mut(stage)?;
        let state = parts.remove(&partition);
        if parts.is_empty() {
            m.remove(stage);
        }
        state
    }

    /// Leaves `state` for `stage`'s first instance of `partition`.
    pub fn put(&self, stage: String, partition: u32, state: Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stage)
            .or_default()
            .insert(partition, state);
    }
}

/// Loads partitions' checkpoints for a source.
#[derive(Clone)]
pub struct Restorer {
    store: Arc<dyn CheckpointStore>,
    pipeline: String,
    restored: Arc<Restored>,
}

impl Restorer {
    /// Restores `pipeline`'s partitions from `store`.
    pub fn new(store: Arc<dyn CheckpointStore>, pipeline: &str) -> Self {
        Restorer {
            store,
            pipeline: pipeline.to_string(),
            restored: Arc::default(),
        }
    }

    /// Loads the record of the partition named `name`, which the engine
    /// knows as `id`: its states wait for the partition's instances, and
    /// its position is returned (the source resumes after it). `None` when
    /// the partition has no checkpoint.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn restore(&self, id: u32, name: &str) -> Result<Option<u64>, StoreError> {
        let Some(record) = self.store.load(&self.pipeline, name).await? else {
            return Ok(None);
        };
        for (stage, state) in record.states {
            self.restored.put(stage, id, state);
        }
        tracing::info!(pipeline = %self.pipeline, partition = name, position = record.position, "restored a checkpoint; resuming after its position");
        Ok(Some(record.position))
    }

    /// Where the restored states wait.
    pub fn restored(&self) -> Arc<Restored> {
        self.restored.clone()
    }
}
