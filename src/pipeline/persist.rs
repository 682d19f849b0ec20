//! Persistent checkpoints of a running pipeline: the sink loop records the
//! state that came with each batch once its positions are committed, and
//! saves the lot every interval, on request, and when the pipeline stops.

use super::chain::Seed;
use super::run::PipelineError;
use crate::checkpoint::{CheckpointStore, Snapshot};
use crate::config::Pipeline;
use crate::source::Source;
use std::sync::Arc;
use std::time::Duration;

/// The checkpoint of a running pipeline.
pub(super) struct Persistence {
    store: Box<dyn CheckpointStore>,
    pipeline: String,
    confirmed: Snapshot,
    dirty: bool,
    /// How often to save.
    pub interval: Duration,
}

impl Persistence {
    /// Opens the pipeline's store (when it has one), loads its checkpoint and
    /// has `source` resume after its positions. Returns the state to seed
    /// the stages with.
    pub async fn open(
        pipeline: &Pipeline,
        source: &mut dyn Source,
    ) -> Result<Option<(Persistence, Option<Arc<Seed>>)>, PipelineError> {
        let Some(config) = &pipeline.checkpoint else {
            return Ok(None);
        };
        let fail = |e: crate::checkpoint::StoreError| PipelineError::Checkpoint(e.to_string());
        let store = crate::checkpoint::open(&config.store).await.map_err(fail)?;
        let loaded = store.load(&pipeline.name).await.map_err(fail)?;
        let seed = match &loaded {
            Some(snap) => {
                if !source.resume(&snap.positions) {
                    return Err(PipelineError::Checkpoint(
                        "this source cannot resume from a checkpoint's positions".into(),
                    ));
                }
                tracing::info!(pipeline = %pipeline.name, partitions = snap.positions.len(), "restored a checkpoint; resuming after its positions");
                Some(Arc::new(snap.states.clone()))
            }
            None => None,
        };
        let p = Persistence {
            store,
            pipeline: pipeline.name.clone(),
            confirmed: loaded.unwrap_or_default(),
            dirty: false,
            interval: config.interval,
        };
        Ok(Some((p, seed)))
    }

    /// Everything of `partition` up to `position` is confirmed, and
    /// `states` is what the stateful stages hold after it.
    pub fn confirmed(&mut self, partition: u32, position: u64, states: Vec<(String, Vec<u8>)>) {
        self.confirmed.positions.insert(partition, position);
        for (stage, state) in states {
            self.confirmed
                .states
                .entry(stage)
                .or_default()
                .insert(partition, state);
        }
        self.dirty = true;
    }

    /// Saves what changed since the last save; `true` when it saved.
    pub async fn save(&mut self) -> bool {
        if !self.dirty {
            return false;
        }
        match self.store.save(&self.pipeline, &self.confirmed).await {
            Ok(()) => {
                self.dirty = false;
                tracing::debug!(pipeline = %self.pipeline, "checkpoint saved");
                true
            }
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, "{e}; retrying at the next interval");
                false
            }
        }
    }
}
