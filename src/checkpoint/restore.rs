//! Restoring partitions: a source asks the [`Restorer`] for a partition's
//! record before it sends the partition's first event; the states wait in
//! [`Restored`] until the partition's first instance takes them, and the
//! source resumes after the record's position.

use super::changelog::Changelog;
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

/// Where a partition's state comes from.
#[derive(Clone)]
enum Backend {
    /// A checkpoint store: state and the position it belongs to.
    Store(Arc<dyn CheckpointStore>),
    /// Exactly-once mode: keyed state from the changelog; the position is
    /// the group's committed offset, which commits with it.
    Changelog(Arc<Changelog>),
}

/// Loads partitions' checkpoints for a source.
#[derive(Clone)]
pub struct Restorer {
    backend: Backend,
    pipeline: String,
    restored: Arc<Restored>,
}

impl Restorer {
    /// Restores `pipeline`'s partitions from `store`.
    pub fn new(store: Arc<dyn CheckpointStore>, pipeline: &str) -> Self {
        Restorer {
            backend: Backend::Store(store),
            pipeline: pipeline.to_string(),
            restored: Arc::default(),
        }
    }

    /// Restores the keyed state of `pipeline`'s partitions from their
    /// changelog into `restored`; the source keeps its positions.
    pub fn changelog(changelog: Arc<Changelog>, pipeline: &str, restored: Arc<Restored>) -> Self {
        Restorer {
            backend: Backend::Changelog(changelog),
            pipeline: pipeline.to_string(),
            restored,
        }
    }

    /// Rebuilds a partition's keyed state from its changelog, as of the
    /// events before position `next`.
    async fn rebuild_from_changelog(
        &self,
        changelog: &Changelog,
        id: u32,
        name: &str,
        next: u64,
    ) -> Result<Option<u64>, StoreError> {
        let started = std::time::Instant::now();
        let parsed = name
            .rsplit_once('.')
            .and_then(|(t, p)| Some((t, p.parse::<i32>().ok()?)));
        let Some((topic, partition)) = parsed else {
            return Err(StoreError::Io(format!(
                "changelog: {name} is not a Kafka partition"
            )));
        };
        let keyed = changelog.restore(topic, partition, next).await?;
        let took = started.elapsed();
        let keys: usize = keyed.values().map(Vec::len).sum();
        for (stage, entries) in keyed {
            self.restored.put_keyed(stage, id, entries);
        }
        crate::metrics::state_restored(&self.pipeline, took);
        tracing::info!(pipeline = %self.pipeline, partition = name, keys, "rebuilt the keyed state from the changelog in {took:.1?}");
        Ok(None)
    }

    /// Loads the record of the partition named `name`, which the engine
    /// knows as `id`: its states wait for the partition's instances, and
    /// its position is returned (the source resumes after it). `None` when
    /// the partition has no checkpoint.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn restore(&self, id: u32, name: &str) -> Result<Option<u64>, StoreError> {
        self.restore_before(id, name, u64::MAX).await
    }

    /// [`Restorer::restore`] for a partition whose first event to process
    /// is at position `next` (a changelog then holds nothing of it or
    /// after it).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn restore_before(
        &self,
        id: u32,
        name: &str,
        next: u64,
    ) -> Result<Option<u64>, StoreError> {
        let store = match &self.backend {
            Backend::Store(s) => s,
            Backend::Changelog(c) => return self.rebuild_from_changelog(c, id, name, next).await,
        };
        let started = std::time::Instant::now();
        let Some(stored) = store.load(&self.pipeline, name).await? else {
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
