//! Persistent checkpoints of a running pipeline: the sink loop records the
//! state that came with each batch once its positions are committed, and
//! saves what changed every interval, on request, and when the pipeline
//! stops. One record per partition, so workers of one consumer group share
//! a store: each writes only the partitions it holds.

use super::batch::KeyedDelta;
use super::error::PipelineError;
use crate::checkpoint::{ChangedKeys, CheckpointStore, KeyedChanges, Record, Restored, Restorer};
use crate::config::Pipeline;
use crate::source::{Committer, Source};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A partition's latest confirmed record.
struct Confirmed {
    /// Its name in the store.
    name: String,
    record: Record,
    /// Keyed state changed up to the record's position, not saved yet
    /// (shared with a save in progress, never copied for it).
    changes: Arc<KeyedChanges>,
    /// Keyed state changed by confirmed batches past the record's
    /// position (their position is not committed yet): the batch's last
    /// position, and its changes.
    waiting: Vec<(u64, Vec<(String, KeyedDelta)>)>,
    /// Changed since the last save.
    dirty: bool,
}

impl Confirmed {
    fn new(name: String) -> Self {
        Confirmed {
            name,
            record: Record::default(),
            changes: Arc::default(),
            waiting: Vec::new(),
            dirty: false,
        }
    }
}

/// The checkpoints of a running pipeline.
pub(super) struct Persistence {
    store: Arc<dyn CheckpointStore>,
    pipeline: String,
    /// Per partition id.
    confirmed: HashMap<u32, Confirmed>,
    /// How often to save.
    pub interval: Duration,
    /// Bytes handed to the store so far: records, and keys and values of
    /// keyed state.
    pub bytes_saved: u64,
}

impl Persistence {
    /// Opens the pipeline's store (when it has one) and has `source`
    /// restore each partition from it as the partition starts. Returns
    /// where the restored states wait for the stages.
    pub async fn open(
        pipeline: &Pipeline,
        source: &mut dyn Source,
    ) -> Result<Option<(Persistence, Arc<Restored>)>, PipelineError> {
        let Some(config) = &pipeline.checkpoint else {
            return Ok(None);
        };
        let store = crate::checkpoint::open(&config.store)
            .await
            .map_err(|e| PipelineError::Checkpoint(e.to_string()))?;
        let restorer = Restorer::new(store.clone(), &pipeline.name);
        let restored = restorer.restored();
        if !source.restore_with(restorer) {
            return Err(PipelineError::Checkpoint(
                "this source cannot resume from a checkpoint's positions".into(),
            ));
        }
        let p = Persistence {
            store,
            pipeline: pipeline.name.clone(),
            confirmed: HashMap::new(),
            interval: config.interval,
            bytes_saved: 0,
        };
        Ok(Some((p, restored)))
    }

    /// The partition's entry, made when the worker still holds it.
    fn entry(&mut self, committer: &dyn Committer, partition: u32) -> Option<&mut Confirmed> {
        match self.confirmed.entry(partition) {
            std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => {
                let name = committer.checkpoint_name(partition)?;
                Some(v.insert(Confirmed::new(name)))
            }
        }
    }

    /// A batch of `partition` ending at `last_position` was confirmed and
    /// changed these keys; they are saved once its position is committed.
    pub fn changed(
        &mut self,
        committer: &dyn Committer,
        partition: u32,
        last_position: u64,
        keyed: Vec<(String, KeyedDelta)>,
    ) {
        if keyed.is_empty() {
            return;
        }
        if let Some(c) = self.entry(committer, partition) {
            c.waiting.push((last_position, keyed));
        }
    }

    /// Everything of `partition` up to `position` is confirmed, and
    /// `states` is what the stateful stages hold after it.
    pub fn confirmed(
        &mut self,
        committer: &dyn Committer,
        partition: u32,
        position: u64,
        states: Vec<(String, Vec<u8>)>,
    ) {
        let Some(c) = self.entry(committer, partition) else {
            return;
        };
        c.record.position = position;
        c.record.states.extend(states);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut c.waiting)
            .into_iter()
            .partition(|(end, _)| *end <= position);
        c.waiting = later;
        let changes = Arc::make_mut(&mut c.changes);
        for (_, keyed) in now {
            for (stage, delta) in keyed {
                changes.entry(stage).or_default().merge(&delta);
            }
        }
        c.dirty = true;
    }

    /// Starts saving what changed since the last save, and returns the
    /// save to await, apart from `self`: the sink loop goes on confirming
    /// batches while the store writes. The records are taken as they are
    /// now; what changes from here waits for the next save. Hand the
    /// outcome to [`Persistence::finish_save`] before starting another.
    ///
    /// A partition no longer held is forgotten, not saved: its new owner
    /// writes it now.
    pub fn start_save(
        &mut self,
        committer: &dyn Committer,
    ) -> impl std::future::Future<Output = Vec<Saved>> + Send + 'static {
        // A partition under another name now, or none, was given up (its
        // new owner writes it); a partition still named but not held is on
        // its way out (a rebalance asked for this save): written here for
        // the last time. Both are let go at once, for their new owner.
        let named = |id: u32, c: &Confirmed| {
            committer.checkpoint_name(id).as_deref() == Some(c.name.as_str())
        };
        let mut writes = Vec::new();
        for (&partition, c) in self.confirmed.iter_mut() {
            if c.dirty && named(partition, c) {
                c.dirty = false;
                // The next interval likely changes as many keys: room
                // for them spares the maps growing key by key.
                let room = c
                    .changes
                    .iter()
                    .map(|(stage, keys)| (stage.clone(), ChangedKeys::room_like(keys)))
                    .collect();
                let changes = std::mem::replace(&mut c.changes, Arc::new(room));
                writes.push((partition, c.name.clone(), c.record.clone(), changes));
            }
        }
        let mut gone = Vec::new();
        self.confirmed.retain(|&id, c| {
            let kept = named(id, c) && committer.holds(id);
            if !kept {
                gone.push(std::mem::take(&mut c.name));
            }
            kept
        });
        let (store, pipeline) = (self.store.clone(), self.pipeline.clone());
        async move {
            let mut saved = Vec::with_capacity(writes.len());
            for (partition, name, record, changes) in writes {
                let result = store.save(&pipeline, &name, &record, changes.clone()).await;
                let bytes = match &result {
                    Ok(()) => {
                        let keyed: usize = changes.values().map(ChangedKeys::bytes).sum();
                        keyed + record.states.values().map(Vec::len).sum::<usize>()
                    }
                    Err(_) => 0,
                };
                saved.push(Saved {
                    partition,
                    name,
                    result,
                    changes,
                    bytes,
                });
            }
            for name in gone {
                store.release(&pipeline, &name).await;
            }
            saved
        }
    }

    /// Takes a save's outcome in; `true` when it saved something and
    /// everything. The changes of a partition whose write failed go back,
    /// under the ones made since, for the next save.
    pub fn finish_save(&mut self, saved: Vec<Saved>) -> bool {
        let (mut any, mut failed) = (false, false);
        for s in saved {
            match s.result {
                Ok(()) => {
                    self.bytes_saved += s.bytes as u64;
                    any = true;
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(pipeline = %self.pipeline, partition = %s.name, "{e}; retrying at the next interval");
                    let Some(c) = self.confirmed.get_mut(&s.partition) else {
                        continue;
                    };
                    if c.name != s.name {
                        continue;
                    }
                    c.dirty = true;
                    let now = Arc::make_mut(&mut c.changes);
                    for (stage, entries) in s.changes.iter() {
                        let newer = now.entry(stage.clone()).or_default();
                        for (key, value) in entries.iter() {
                            newer.insert_older(key, value);
                        }
                    }
                }
            }
        }
        if any {
            tracing::debug!(pipeline = %self.pipeline, "checkpoint saved");
        }
        any && !failed
    }
}

/// What one partition's write of a save came to.
pub(super) struct Saved {
    partition: u32,
    name: String,
    result: Result<(), crate::checkpoint::StoreError>,
    /// The keyed changes it wrote (or failed to).
    changes: Arc<KeyedChanges>,
    /// Bytes handed to the store.
    bytes: usize,
}
