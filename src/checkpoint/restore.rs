//! Restoring partitions: a source asks the [`Restorer`] for a partition's
//! record before it sends the partition's first event; the states wait in
//! [`Restored`] until the partition's first instance takes them, and the
//! source resumes after the record's position.

use super::{CheckpointStore, KeyedEntries, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What waits for a stage's partitions: stage → partition id → it.
type Waiting<T> = Mutex<BTreeMap<String, BTreeMap<u32, T>>>;

/// Restored state not yet taken.
#[derive(Debug, Default)]
pub struct Restored {
    /// The state each stage exported itself.
    exported: Waiting<Vec<u8>>,
    /// The keyed state the host holds for each stage.
    keyed: Waiting<KeyedEntries>,
}

fn take<T>(waiting: &Waiting<T>, stage: &str, partition: u32) -> Option<T> {
    let mut m = waiting.lock().unwrap_or_else(|p| p.into_inner());
    let parts = m.get_mut(stage)?;
    let state = parts.remove(&partition);
    if parts.is_empty() {
        m.remove(stage);
    }
    state
}

fn put<T>(waiting: &Waiting<T>, stage: String, partition: u32, state: T) {
    waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(stage)
        .or_default()
        .insert(partition, state);
}

impl Restored {
    /// Takes the restored state of `stage` for `partition`, if any.
    pub fn take(&self, stage: &str, partition: u32) -> Option<Vec<u8>> {
        take(&self.exported, stage, partition)
    }

    /// Leaves `state` for `stage`'s first instance of `partition`.
    pub fn put(&self, stage: String, partition: u32, state: Vec<u8>) {
        put(&self.exported, stage, partition, state);
    }

    /// Takes the restored keyed state of `stage` for `partition`, if any.
    pub fn take_keyed(&self, stage: &str, partition: u32) -> Option<KeyedEntries> {
        take(&self.keyed, stage, partition)
    }

    /// Leaves keyed state for `stage`'s `partition`.
    pub fn put_keyed(&self, stage: String, partition: u32, entries: KeyedEntries) {
        put(&self.keyed, stage, partition, entries);
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
        let started = std::time::Instant::now();
        let Some(stored) = self.store.load(&self.pipeline, name).await? else {
            return Ok(None);
        };
        let took = started.elapsed();
        let position = stored.record.position;
        for (stage, state) in stored.record.states {
            self.restored.put(stage, id, state);
        }
        let (mut keys, mut bytes) = (0, 0);
        for (stage, entries) in stored.keyed {
            keys += entries.len();
            bytes += entries
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
            self.restored.put_keyed(stage, id, entries);
        }
        crate::metrics::state_restored(&self.pipeline, took);
        tracing::info!(pipeline = %self.pipeline, partition = name, position, keys, bytes, "restored a checkpoint in {took:.1?}; resuming after its position");
        Ok(Some(position))
    }

    /// Where the restored states wait.
    pub fn restored(&self) -> Arc<Restored> {
        self.restored.clone()
    }
}
