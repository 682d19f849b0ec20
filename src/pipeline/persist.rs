//! Persistent checkpoints of a running pipeline: the sink loop records the
//! state that came with each batch once its positions are committed, and
//! saves what changed every interval, on request, and when the pipeline
//! stops. One record per partition, so workers of one consumer group share
//! a store: each writes only the partitions it holds.

use super::batch::KeyedDelta;
use super::error::PipelineError;
use crate::checkpoint::{CheckpointStore, KeyedChanges, Record, Restored, Restorer};
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
    /// Keyed state changed up to the record's position, not saved yet.
    changes: KeyedChanges,
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
            changes: KeyedChanges::new(),
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
        for (_, keyed) in now {
            for (stage, delta) in keyed {
                c.changes.entry(stage).or_default().extend(delta);
            }
        }
        c.dirty = true;
    }

    /// Saves what changed since the last save; `true` when it saved
    /// something and everything. A partition no longer held is forgotten,
    /// not saved: its new owner writes it now.
    pub async fn save(&mut self, committer: &dyn Committer) -> bool {
        let mut gone = Vec::new();
        self.confirmed.retain(|&id, c| {
            let held = committer.checkpoint_name(id).as_deref() == Some(c.name.as_str());
            if !held {
                gone.push(std::mem::take(&mut c.name));
            }
            held
        });
        for name in gone {
            self.store.release(&self.pipeline, &name).await;
        }
        let mut saved = false;
        let mut failed = false;
        for c in self.confirmed.values_mut().filter(|c| c.dirty) {
            match self
                .store
                .save(&self.pipeline, &c.name, &c.record, &c.changes)
                .await
            {
                Ok(()) => {
                    let keyed: usize = c
                        .changes
                        .values()
                        .flatten()
                        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                        .sum();
                    let record: usize = c.record.states.values().map(Vec::len).sum();
                    self.bytes_saved += (keyed + record) as u64;
                    c.dirty = false;
                    c.changes.clear();
                    saved = true;
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(pipeline = %self.pipeline, partition = %c.name, "{e}; retrying at the next interval");
                }
            }
        }
        if saved {
            tracing::debug!(pipeline = %self.pipeline, "checkpoint saved");
        }
        saved && !failed
    }
}
