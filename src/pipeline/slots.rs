//! A chain's slots, one per stage and partition (one per stage for a
//! stateless stage): made on first use with the partition's restored
//! state, the instance started in them, their checkpoints and keyed-state
//! changes taken after a batch, and dropped when the worker gives the
//! partition up.

use super::batch::KeyedDelta;
use super::chain::StageChain;
use super::stage::{ChainStage, Slot};
use crate::runtime::{CallError, KeyedState};

impl StageChain {
    /// Starts the instance for this stage and partition (restored from its
    /// checkpoint) if there is none.
    pub(super) fn start_instance(&mut self, i: usize, partition: u32) -> Result<(), CallError> {
        let spec = self.stages[i].spec.clone();
        let runtime = self.runtime.clone();
        let slot = self.slot(i, partition);
        if slot.instance.is_none() {
            let mut inst = spec.instantiate(&runtime)?;
            if let Some(state) = &slot.checkpoint {
                inst.checkpoint_import(state)?;
            }
            spec.metrics.instances_started.increment(1);
            slot.instance = Some(inst);
        }
        Ok(())
    }

    /// The slot of stage `i` for `partition` (one slot for a stateless
    /// stage).
    pub(super) fn slot(&mut self, i: usize, partition: u32) -> &mut Slot {
        let ChainStage { spec, slots, .. } = &mut self.stages[i];
        let key = if spec.config.stateless { 0 } else { partition };
        let (restored, persist) = (&self.restored, self.collect_states);
        slots.entry(key).or_insert_with(|| {
            spec.metrics.slots(1);
            let mut state = KeyedState::new(spec.settings.limits.state_max_bytes);
            if persist && !spec.config.stateless {
                state.track_changes();
            }
            if let Some(entries) = restored
                .as_ref()
                .and_then(|r| r.take_keyed(&spec.config.name, key))
            {
                state.apply(entries.into_iter().map(|(k, v)| (k, Some(v))));
            }
            Slot {
                instance: None,
                checkpoint: restored
                    .as_ref()
                    .and_then(|r| r.take(&spec.config.name, key)),
                state,
                reported: (0, 0),
            }
        })
    }

    /// The state of every stateful stage for `partition`.
    pub(super) fn states_of(&mut self, partition: u32) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            if self.stages[i].spec.config.stateless {
                continue;
            }
            let name = self.stages[i].spec.config.name.clone();
            if let Some(s) = self.slot(i, partition).checkpoint.clone() {
                out.push((name, s));
            }
        }
        out
    }

    /// Drops the slots (instances, checkpoints, keyed state) of the
    /// partitions `holds` no longer holds: a partition that comes back gets
    /// a new id and is restored afresh.
    pub fn forget_unheld(&mut self, holds: &dyn crate::source::Committer) {
        for stage in &mut self.stages {
            if stage.spec.config.stateless {
                continue;
            }
            let before = stage.slots.len();
            let metrics = &stage.spec.metrics;
            stage.slots.retain(|&partition, _| {
                let held = holds.holds(partition);
                if !held {
                    metrics.state_forgotten(partition);
                }
                held
            });
            metrics.slots(stage.slots.len() as i64 - before as i64);
        }
    }

    /// The keys every stateful stage changed for `partition` since the
    /// last batch.
    pub(super) fn keyed_changes_of(&mut self, partition: u32) -> Vec<(String, KeyedDelta)> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            if self.stages[i].spec.config.stateless {
                continue;
            }
            let name = self.stages[i].spec.config.name.clone();
            let changes = self.slot(i, partition).state.take_changes();
            if !changes.is_empty() {
                out.push((name, changes));
            }
        }
        out
    }

    pub(super) fn drop_instance(&mut self, i: usize, partition: u32) {
        self.slot(i, partition).instance = None;
    }

    pub(super) fn save_checkpoint(&mut self, i: usize, partition: u32) {
        let pipeline = self.pipeline.clone();
        let stage = self.stages[i].spec.config.name.clone();
        let slot = self.slot(i, partition);
        let Some(inst) = slot.instance.as_mut() else {
            return;
        };
        match inst.checkpoint_export() {
            Ok(state) => slot.checkpoint = Some(state),
            Err(e) => {
                // The batch's output stands; the instance does not.
                tracing::error!(pipeline, stage, partition, "checkpoint export failed ({e}); replacing the instance from the previous checkpoint");
                slot.instance = None;
            }
        }
    }
}
