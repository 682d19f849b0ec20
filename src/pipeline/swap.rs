//! Hot swap on a worker thread (docs/architecture.md §5). A control message lands between
//! two batches; the thread then moves every instance of the stage to the
//! new version, carrying each partition's state across with
//! `checkpoint-export` → `init` → `checkpoint-import`. The previous version
//! stays known for the first batches (its probation): when the new one fails
//! too many of them, the thread goes back to the previous version with the
//! state, re-runs the failing batch there, and reports the incident so every
//! other thread goes back as well.

use super::chain::{Origin, StageChain};
use super::stage::{ChainStage, StageSpec};
use crate::runtime::StageInstance;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use weir_abi::Event;

/// A control message for one worker thread.
pub enum Control {
    /// Move stage `stage` to `spec`; answers whether every instance took
    /// the state.
    Swap {
        /// The stage's index.
        stage: usize,
        /// The new version.
        spec: Arc<StageSpec>,
        /// Instances of the new version, started off the worker threads;
        /// a thread takes what it needs and starts more if they run out.
        spares: Arc<Spares>,
        /// Gets `Ok` or why not.
        reply: crossbeam_channel::Sender<Result<(), String>>,
    },
    /// Go back to the version before the last swap, if it is still on
    /// probation here.
    Rollback {
        /// The stage's index.
        stage: usize,
        /// Why, for the log.
        reason: String,
        /// Gets `true` when this thread went back, `false` when it had
        /// nothing to roll back.
        reply: crossbeam_channel::Sender<bool>,
    },
    /// Take on a new list of stages: stages kept by name keep their
    /// instances and state, new ones start empty, missing ones are dropped.
    Restructure {
        /// The stages, in their new order.
        stages: Vec<Arc<StageSpec>>,
        /// Gets `()` once done.
        reply: crossbeam_channel::Sender<()>,
    },
}

/// Started instances of a new version, shared by the worker threads: a
/// plugin that takes long to instantiate (a Python or JavaScript component)
/// does so off the hot path.
#[derive(Default)]
pub struct Spares(Mutex<Vec<StageInstance>>);

impl Spares {
    /// These instances.
    pub fn new(instances: Vec<StageInstance>) -> Self {
        Spares(Mutex::new(instances))
    }

    fn take(&self) -> Option<StageInstance> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }
}

/// A worker thread rolled a stage back on its own.
#[derive(Debug, Clone)]
pub struct Incident {
    /// The stage's index.
    pub stage: usize,
    /// What failed.
    pub reason: String,
}

/// A new version on probation, and what going back needs.
pub struct Probation {
    previous: Arc<StageSpec>,
    /// Each slot's state when the swap happened: the fallback when the
    /// previous version cannot import what the new one made of it.
    at_swap: HashMap<u32, Option<Vec<u8>>>,
    batches_left: u32,
    failed: u32,
    allowed: u32,
}

impl StageChain {
    /// Where this chain reports a new version it rolled back.
    pub fn report_to(&mut self, incidents: tokio::sync::mpsc::UnboundedSender<Incident>) {
        self.incidents = Some(incidents);
    }

    /// Handles a control message between two batches.
    pub fn control(&mut self, c: Control) {
        match c {
            Control::Swap {
                stage,
                spec,
                spares,
                reply,
            } => {
                let r = self.swap(stage, spec, &spares);
                let _ = reply.send(r);
            }
            Control::Rollback {
                stage,
                reason,
                reply,
            } => {
                let done = self.rollback(stage, &reason, None);
                let _ = reply.send(done);
            }
            Control::Restructure { stages, reply } => {
                self.restructure(stages);
                let _ = reply.send(());
            }
        }
    }

    fn restructure(&mut self, specs: Vec<Arc<StageSpec>>) {
        let mut old: Vec<Option<ChainStage>> = std::mem::take(&mut self.stages)
            .into_iter()
            .map(Some)
            .collect();
        for spec in specs {
            // A stage that stays keeps its version, instances and probation.
            let kept = old.iter_mut().find_map(|o| {
                o.as_ref()
                    .is_some_and(|s| s.spec.config.name == spec.config.name)
                    .then(|| o.take())
                    .flatten()
            });
            self.stages
                .push(kept.unwrap_or_else(|| ChainStage::new(spec)));
        }
        for s in old.into_iter().flatten() {
            s.spec.metrics.slots(-(s.slots.len() as i64));
        }
    }

    /// Moves stage `i` to `new`: every instance of this thread is replaced
    /// by one of the new version that imported its state. Nothing changes
    /// when one of them fails.
    fn swap(&mut self, i: usize, new: Arc<StageSpec>, spares: &Spares) -> Result<(), String> {
        let runtime = self.runtime.clone();
        let ChainStage {
            spec: old,
            slots,
            probation,
        } = &mut self.stages[i];
        let stateless = old.config.stateless;
        let mut fresh = Vec::with_capacity(slots.len());
        for (&key, slot) in slots.iter_mut() {
            let state = if stateless {
                None
            } else {
                current_state(slot)?
            };
            let mut inst = match spares.take() {
                Some(inst) => inst,
                None => new
                    .instantiate(&runtime)
                    .map_err(|e| format!("the new version does not start: {e}"))?,
            };
            if let Some(s) = &state {
                inst.checkpoint_import(s)
                    .map_err(|e| format!("the new version refused the checkpoint: {e}"))?;
            }
            fresh.push((key, inst, state));
        }
        let mut at_swap = HashMap::with_capacity(fresh.len());
        for (key, inst, state) in fresh {
            let slot = slots.get_mut(&key).expect("the slot exists");
            slot.instance = Some(inst);
            slot.checkpoint.clone_from(&state);
            at_swap.insert(key, state);
        }
        let previous = std::mem::replace(old, new.clone());
        let policy = new.config.swap;
        *probation = Some(Probation {
            previous,
            at_swap,
            batches_left: policy.probation_batches,
            failed: 0,
            allowed: (policy.max_failure_share * f64::from(policy.probation_batches)).floor()
                as u32,
        });
        tracing::info!(pipeline = %self.pipeline, stage = %new.config.name, instances = slots.len(), "swapped to {}", new.plugin.sha256);
        Ok(())
    }

    /// Goes back to the version before the last swap of stage `i`, with
    /// each partition's state; `failing` pins one partition's state (the one
    /// from before the batch that failed). `false` when there is nothing to
    /// go back to.
    fn rollback(
        &mut self,
        i: usize,
        reason: &str,
        failing: Option<(u32, Option<Vec<u8>>)>,
    ) -> bool {
        let Some(p) = self.stages[i].probation.take() else {
            return false;
        };
        let runtime = self.runtime.clone();
        let pipeline = self.pipeline.clone();
        let ChainStage { spec, slots, .. } = &mut self.stages[i];
        let stateless = p.previous.config.stateless;
        for (&key, slot) in slots.iter_mut() {
            slot.instance = None;
            if stateless {
                continue;
            }
            let state = match &failing {
                Some((k, s)) if *k == key => s.clone(),
                _ => current_state(slot).ok().flatten(),
            };
            // The previous version may not read what the new one wrote: fall
            // back to the state it handed over at the swap.
            let restored =
                restore(&runtime, &p.previous, state.as_deref()).map(|inst| (inst, state));
            let (inst, state) = match restored {
                Ok(r) => r,
                Err(e) => {
                    let at_swap = p.at_swap.get(&key).cloned().flatten();
                    tracing::warn!(%pipeline, stage = %p.previous.config.name, partition = key, "the previous version refused the new version's state ({e}); going back to the state of the swap");
                    match restore(&runtime, &p.previous, at_swap.as_deref()) {
                        Ok(inst) => (inst, at_swap),
                        Err(e) => {
                            tracing::error!(%pipeline, stage = %p.previous.config.name, partition = key, "the previous version does not start again: {e}");
                            slot.checkpoint = at_swap;
                            continue;
                        }
                    }
                }
            };
            slot.instance = Some(inst);
            slot.checkpoint = state;
        }
        tracing::warn!(%pipeline, stage = %p.previous.config.name, "rolled back to {}: {reason}", p.previous.plugin.sha256);
        *spec = p.previous;
        true
    }

    /// Runs stage `i` while a new version is on probation: a batch the new
    /// version fails, beyond what the stage's policy allows, rolls the stage
    /// back and runs again on the previous version.
    pub(super) fn run_on_probation(
        &mut self,
        i: usize,
        events: Vec<Event>,
        origin: Origin<'_>,
        dead: &mut Vec<Event>,
    ) -> Vec<Event> {
        let backup = events.clone();
        let before = self.slot(i, origin.partition).checkpoint.clone();
        let dead_before = dead.len();
        let (out, trapped) = self.run_stage(i, events, origin, dead);
        let on_probation = &mut self.stages[i];
        let p = on_probation.probation.as_mut().expect("on probation");
        p.batches_left = p.batches_left.saturating_sub(1);
        if trapped {
            p.failed += 1;
        }
        if p.failed > p.allowed {
            let seen = on_probation.spec.config.swap.probation_batches - p.batches_left;
            let reason = format!(
                "the new version failed {} of its first {seen} batches on this thread",
                p.failed
            );
            dead.truncate(dead_before);
            let stage = i;
            self.rollback(i, &reason, Some((origin.partition, before)));
            if let Some(tx) = &self.incidents {
                let _ = tx.send(Incident { stage, reason });
            }
            return self.run_stage(i, backup, origin, dead).0;
        }
        if p.batches_left == 0 {
            // Probation is over: the previous version is released.
            self.stages[i].probation = None;
        }
        out
    }
}

/// A slot's state now: exported from its instance, else its checkpoint.
fn current_state(slot: &mut super::stage::Slot) -> Result<Option<Vec<u8>>, String> {
    match slot.instance.as_mut() {
        Some(inst) => inst
            .checkpoint_export()
            .map(Some)
            .map_err(|e| format!("the running version cannot export its checkpoint: {e}")),
        None => Ok(slot.checkpoint.clone()),
    }
}

fn restore(
    runtime: &crate::runtime::Runtime,
    spec: &StageSpec,
    state: Option<&[u8]>,
) -> Result<StageInstance, crate::runtime::CallError> {
    let mut inst = spec.instantiate(runtime)?;
    if let Some(s) = state {
        inst.checkpoint_import(s)?;
    }
    Ok(inst)
}
