//! The stage chain of one worker thread: every stage's instances (one per
//! partition, or one for the thread when the stage is stateless), and what
//! happens when a plugin fails.
//!
//! - A per-event error from the plugin sends that input to the dead-letter
//!   sink; the rest of the output goes on.
//! - A trap or a limit poisons the instance: it is dropped, and the next one
//!   starts from the last checkpoint. The failed batch is split in halves and
//!   each half retried, down to the single event that fails, which goes to
//!   the dead-letter sink with the reason. Everything else is processed once.
//! - After every successful batch a stateful stage's checkpoint is taken, so
//!   a replacement instance resumes exactly where the batch before the
//!   failure left off.
//! - Linear memory never shrinks, and some guest runtimes keep what a call
//!   allocated (componentize-py and componentize-js do not free the memory
//!   a batch is handed in): an instance that holds more than half its
//!   memory limit after a successful call is replaced by a fresh one, which
//!   imports the checkpoint just taken. The next call finds the whole limit
//!   instead of failing on the garbage of earlier ones.

use super::batch::{dead_letter, Batch, Failure, Processed};
use super::stage::{ChainStage, Slot, StageSpec};
use crate::checkpoint::Restored;
use crate::metrics::PipelineMetrics;
use crate::runtime::{CallError, Runtime};
use std::sync::Arc;
use std::time::Instant;
use weir_abi::Event;

/// Where the events of a (sub-)batch came from.
#[derive(Clone, Copy)]
pub(super) struct Origin<'a> {
    pub(super) partition: u32,
    /// Exact positions, known before the first stage transforms anything.
    positions: Option<&'a [u64]>,
    range: (u64, u64),
}

impl Origin<'_> {
    /// The failure of the `j`th event of these at `stage`: the one place
    /// that says where a dead letter came from.
    fn failure<'s>(
        &self,
        pipeline: &'s str,
        stage: &'s str,
        kind: &'static str,
        reason: String,
        j: usize,
    ) -> Failure<'s> {
        Failure {
            pipeline,
            stage,
            kind,
            reason,
            partition: self.partition,
            position: self.positions.map(|p| p[j]),
            range: self.range,
        }
    }
}

/// What the calls of a split batch found out.
#[derive(Default)]
struct Pieces {
    /// Whether some event failed a call on its own.
    blamed: bool,
    /// Fuel the successful calls used.
    fuel: u64,
    /// Events of the largest successful call.
    largest: usize,
}

/// The stages of one worker thread.
pub struct StageChain {
    pub(super) runtime: Arc<Runtime>,
    pub(super) pipeline: String,
    pub(super) stages: Vec<ChainStage>,
    metrics: PipelineMetrics,
    /// Where a failing new version is reported.
    pub(super) incidents: Option<tokio::sync::mpsc::UnboundedSender<super::swap::Incident>>,
    /// Restored state per stage and partition, taken by a partition's first
    /// instance.
    pub(super) restored: Option<Arc<Restored>>,
    /// Whether processed batches carry their stateful stages' state.
    pub(super) collect_states: bool,
}

impl Drop for StageChain {
    fn drop(&mut self) {
        for s in &self.stages {
            s.spec.metrics.slots(-(s.slots.len() as i64));
        }
    }
}

impl StageChain {
    /// A chain over `stages`; instances are created on first use.
    pub fn new(
        runtime: Arc<Runtime>,
        pipeline: &str,
        stages: &[Arc<StageSpec>],
        metrics: PipelineMetrics,
    ) -> Self {
        StageChain {
            runtime,
            pipeline: pipeline.to_string(),
            stages: stages.iter().cloned().map(ChainStage::new).collect(),
            metrics,
            incidents: None,
            restored: None,
            collect_states: false,
        }
    }

    /// Takes partitions' first state from checkpoints (`restored`), and has
    /// every processed batch carry its stateful stages' state.
    pub fn persist(&mut self, restored: Arc<Restored>) {
        self.restored = Some(restored);
        self.collect_states = true;
    }

    /// Runs a batch through every stage.
    pub fn process(&mut self, batch: Batch) -> Processed {
        let Batch {
            ack,
            events,
            positions,
            refused,
            created,
        } = batch;
        let range = (
            positions
                .first()
                .copied()
                .into_iter()
                .chain(refused.iter().map(|m| m.1))
                .min()
                .unwrap_or(ack.last_position),
            ack.last_position,
        );
        let mut dead = Vec::new();
        for (event, position, why) in refused {
            let at = Origin {
                partition: ack.partition,
                positions: Some(&[position]),
                range,
            };
            let f = at.failure(&self.pipeline, "(source)", why.kind, why.reason, 0);
            self.dead_letter(&mut dead, event, &f);
        }
        // An output topic equal to the one the batch was read from is the
        // input's topic passed through, not a routing decision.
        let mut source_topics: Vec<String> = Vec::new();
        for e in &events {
            if let Some(t) = &e.topic {
                if !source_topics.contains(t) {
                    source_topics.push(t.clone());
                }
            }
        }
        let mut events = events;
        for i in 0..self.stages.len() {
            if events.is_empty() {
                break;
            }
            let origin = Origin {
                partition: ack.partition,
                positions: (i == 0).then_some(positions.as_slice()),
                range,
            };
            events = if self.stages[i].probation.is_some() {
                self.run_on_probation(i, events, origin, &mut dead)
            } else {
                self.run_stage(i, events, origin, &mut dead).0
            };
        }
        if !source_topics.is_empty() {
            for e in &mut events {
                if e.topic.as_ref().is_some_and(|t| source_topics.contains(t)) {
                    e.topic = None;
                }
            }
        }
        let (states, keyed) = if self.collect_states {
            (
                self.states_of(ack.partition),
                self.keyed_changes_of(ack.partition),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Processed {
            ack,
            events,
            dead_letters: dead,
            created,
            states,
            keyed,
        }
    }

    /// Sends `event` to the batch's dead letters for `f`, and counts it.
    fn dead_letter(&self, dead: &mut Vec<Event>, event: Event, f: &Failure<'_>) {
        self.metrics.dead_letter(f.stage, f.kind);
        dead.push(dead_letter(event, f));
    }

    fn fail_all(
        &self,
        i: usize,
        events: Vec<Event>,
        origin: Origin<'_>,
        err: &CallError,
        dead: &mut Vec<Event>,
    ) {
        let stage = &self.stages[i].spec.config.name;
        for (j, e) in events.into_iter().enumerate() {
            let f = origin.failure(&self.pipeline, stage, err.kind(), err.to_string(), j);
            self.dead_letter(dead, e, &f);
        }
    }

    /// Runs `events` through stage `i`, in calls no bigger than the stage's
    /// limits turned out to allow. Returns the output, and whether a call
    /// trapped (a probation counts those).
    pub(super) fn run_stage(
        &mut self,
        i: usize,
        mut events: Vec<Event>,
        origin: Origin<'_>,
        dead: &mut Vec<Event>,
    ) -> (Vec<Event>, bool) {
        let most = self.stages[i].spec.budget.most_events();
        if events.len() <= most {
            return self.run_call(i, events, origin, dead);
        }
        let mut out = Vec::with_capacity(events.len());
        let mut trapped = false;
        let mut offset = 0;
        while !events.is_empty() {
            let rest = events.split_off(most.min(events.len()));
            let positions = origin.positions.map(|p| &p[offset..offset + events.len()]);
            offset += events.len();
            let (events_out, call_trapped) = self.run_call(
                i,
                events,
                Origin {
                    positions,
                    ..origin
                },
                dead,
            );
            out.extend(events_out);
            trapped |= call_trapped;
            events = rest;
        }
        (out, trapped)
    }

    /// One call of stage `i`; when it fails for its size and every piece of
    /// it then succeeds, the stage's budget learns that the call was too big.
    /// Returns the output, and whether the call trapped.
    fn run_call(
        &mut self,
        i: usize,
        events: Vec<Event>,
        origin: Origin<'_>,
        dead: &mut Vec<Event>,
    ) -> (Vec<Event>, bool) {
        let n = events.len();
        let mut found = Pieces::default();
        let (out, failure) = self.run_piece(i, events, origin, dead, &mut found);
        let trapped = failure.is_some();
        if let Some(err) = failure {
            if n > 1 && !found.blamed {
                let spec = &self.stages[i].spec;
                spec.budget.too_big(
                    (&self.pipeline, &spec.config.name),
                    &spec.settings.limits,
                    n,
                    found.largest,
                    found.fuel,
                    &err,
                );
            }
        }
        (out, trapped)
    }

    /// Calls the stage with `events`; when the call fails, splits them in
    /// halves down to the event that fails. Returns the output and the
    /// failure of this call, if it failed.
    fn run_piece(
        &mut self,
        i: usize,
        mut events: Vec<Event>,
        origin: Origin<'_>,
        dead: &mut Vec<Event>,
        found: &mut Pieces,
    ) -> (Vec<Event>, Option<CallError>) {
        let spec = self.stages[i].spec.clone();
        let stage = spec.config.name.as_str();
        if let Err(e) = self.start_instance(i, origin.partition) {
            tracing::error!(pipeline = %self.pipeline, stage, partition = origin.partition, "cannot start an instance: {e}");
            spec.metrics.trap(e.kind());
            self.fail_all(i, events, origin, &e, dead);
            found.blamed = true;
            return (Vec::new(), None);
        }
        let n = events.len();
        spec.metrics.handed(n as u64);
        let Slot {
            instance,
            state,
            reported,
            ..
        } = self.slot(i, origin.partition);
        let inst = instance.as_mut().expect("started above");
        let keyed = !spec.config.stateless;
        if keyed {
            inst.swap_state(state);
        }
        let start = Instant::now();
        let result = inst.process(&mut events);
        let fuel = inst.last_fuel();
        spec.metrics.called(start.elapsed(), fuel);
        if keyed {
            inst.swap_state(state);
            let size = (state.keys(), state.bytes());
            if size != *reported {
                spec.metrics.state_size(origin.partition, size.0, size.1);
                *reported = size;
            }
        }
        let held = inst.memory();
        let result =
            result.and_then(
                |out| match out.errors.iter().find(|e| e.index as usize >= n) {
                    Some(e) => Err(CallError::BadOutput {
                        message: format!(
                            "error index {} is out of range for a batch of {n}",
                            e.index
                        ),
                    }),
                    None => Ok(out),
                },
            );
        match result {
            Ok(out) => {
                found.fuel = found.fuel.saturating_add(fuel);
                found.largest = found.largest.max(n);
                let mut seen = vec![false; n];
                for err in out.errors {
                    let j = err.index as usize;
                    if std::mem::replace(&mut seen[j], true) {
                        continue;
                    }
                    let f = origin.failure(&self.pipeline, stage, "rejected", err.message, j);
                    self.dead_letter(dead, std::mem::take(&mut events[j]), &f);
                }
                spec.metrics.emitted(out.events.len() as u64);
                if !spec.config.stateless {
                    self.save_checkpoint(i, origin.partition);
                }
                if held > spec.settings.limits.memory / 2 {
                    tracing::debug!(pipeline = %self.pipeline, stage, partition = origin.partition, held, "the instance holds more than half its memory limit; a fresh one takes over");
                    spec.metrics.instances_recycled.increment(1);
                    self.drop_instance(i, origin.partition);
                }
                (out.events, None)
            }
            Err(e) => {
                spec.metrics.trap(e.kind());
                self.drop_instance(i, origin.partition);
                if n == 1 {
                    tracing::warn!(pipeline = %self.pipeline, stage, partition = origin.partition, "event dead-lettered: {e}");
                    self.fail_all(i, events, origin, &e, dead);
                    found.blamed = true;
                    return (Vec::new(), Some(e));
                }
                tracing::debug!(pipeline = %self.pipeline, stage, partition = origin.partition, "batch of {n} failed ({e}); isolating the failing event");
                let right = events.split_off(n / 2);
                let (lp, rp) = match origin.positions {
                    Some(p) => {
                        let (l, r) = p.split_at(n / 2);
                        (Some(l), Some(r))
                    }
                    None => (None, None),
                };
                let left = Origin {
                    positions: lp,
                    ..origin
                };
                let (mut out, _) = self.run_piece(i, events, left, dead, found);
                let right_origin = Origin {
                    positions: rp,
                    ..origin
                };
                out.extend(self.run_piece(i, right, right_origin, dead, found).0);
                (out, Some(e))
            }
        }
    }
}
