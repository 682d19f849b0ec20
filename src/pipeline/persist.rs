//! Persistent checkpoints of a running pipeline: the sink loop records the
//! state that came with each batch once its positions are committed, and
//! saves what changed every interval, on request, and when the pipeline
//! stops. One record per partition, so workers of one consumer group share
//! a store: each writes only the partitions it holds.

use super::error::PipelineError;
use crate::checkpoint::{CheckpointStore, Record, Restored, Restorer};
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
    /// Changed since the last save.
    dirty: bool,
}

/// The checkpoints of a running pipeline.
pub(super) struct Persistence {
    store: Arc<dyn CheckpointStore>,
    pipeline: String,
    /// Per partition id.
    confirmed: HashMap<u32, Confirmed>,
    /// How often to save.
    pub interval: Duration,
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
        };
        Ok(Some((p, restored)))
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
        let c = match self.confirmed.entry(partition) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Some(name) = committer.checkpoint_name(partition) else {
                    return;
                };
                v.insert(Confirmed {
                    name,
                    record: Record::default(),
                    dirty: false,
                })
            }
        };
        c.record.position = position;
        c.record.states.extend(states);
        c.dirty = true;
    }

    /// Saves what changed since the last save; `true` when it saved
    /// something and everything. A partition no longer held is forgotten,
    /// not saved: its new owner writes it now.
    pub async fn save(&mut self, committer: &dyn Committer) -> bool {
        self.confirmed
            .retain(|&id, c| committer.checkpoint_name(id).as_deref() == Some(c.name.as_str()));
        let mut saved = false;
        let mut failed = false;
        for c in self.confirmed.values_mut().filter(|c| c.dirty) {
            match self.store.save(&self.pipeline, &c.name, &c.record).await {
                Ok(()) => {
                    c.dirty = false;
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
