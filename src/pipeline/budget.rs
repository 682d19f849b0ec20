//! Batches too big for a stage's limits.
//!
//! A batch that runs out of fuel, time or memory is split in halves to find
//! the event that caused it. When every piece then succeeds, no event was to
//! blame: the batch as a whole needed more than the stage's budget. That is a
//! setting to change, not a poison event, so it is said once, with what the
//! batch needed and the key to raise, and counted. From then on the stage is
//! called with pieces of the size that fitted, so later batches do not pay
//! the failed call and the split again.

use crate::runtime::{CallError, StageLimits};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What one stage has learnt about the batch sizes its limits allow; shared
/// by every worker thread running the stage.
#[derive(Debug)]
pub struct CallBudget {
    /// The most events one call gets; `usize::MAX` until a batch was too big.
    most_events: AtomicUsize,
    /// Whether the warning was logged, per limit (fuel, timeout, memory).
    said: [AtomicBool; 3],
}

impl Default for CallBudget {
    fn default() -> Self {
        CallBudget {
            most_events: AtomicUsize::new(usize::MAX),
            said: Default::default(),
        }
    }
}

/// The limits whose failure can be the batch's size rather than an event.
pub(super) fn size_dependent(err: &CallError) -> Option<&'static str> {
    match err {
        CallError::OutOfFuel { .. } => Some("fuel_per_event"),
        CallError::Deadline { .. } => Some("timeout"),
        CallError::MemoryLimit { .. } => Some("memory"),
        _ => None,
    }
}

impl CallBudget {
    /// The most events one call of the stage gets.
    pub fn most_events(&self) -> usize {
        self.most_events.load(Ordering::Relaxed)
    }

    /// A batch of `events` failed with `err`, and its pieces, the largest
    /// of `largest` events, then succeeded using `fuel` in all. Lowers the
    /// call size, counts it, and says so the first time for this limit.
    pub(super) fn too_big(
        &self,
        at: (&str, &str),
        limits: &StageLimits,
        events: usize,
        largest: usize,
        fuel: u64,
        err: &CallError,
    ) {
        let Some(key) = size_dependent(err) else {
            return;
        };
        let (pipeline, stage) = at;
        self.most_events
            .fetch_min(largest.max(1), Ordering::Relaxed);
        metrics::counter!("weir_stage_budget_exceeded_total", "pipeline" => pipeline.to_string(), "stage" => stage.to_string(), "limit" => key).increment(1);
        let idx = match key {
            "fuel_per_event" => 0,
            "timeout" => 1,
            _ => 2,
        };
        let first = !self.said[idx].swap(true, Ordering::Relaxed);
        let advice = match err {
            CallError::OutOfFuel { .. } => {
                let per_event = fuel.div_ceil(events.max(1) as u64);
                format!(
                    "the batch needed about {fuel} fuel ({per_event} per event) against fuel_per_event = {}; raise the stage's fuel_per_event to at least {}",
                    limits.fuel_per_event,
                    per_event.saturating_mul(2)
                )
            }
            CallError::Deadline { timeout } => format!(
                "a call of {events} events takes longer than timeout = {timeout:?}; raise the stage's timeout or lower batch.max_events"
            ),
            _ => format!(
                "a call of {events} events needs more than memory = {} bytes; raise the stage's memory or lower batch.max_events",
                limits.memory
            ),
        };
        let message = format!(
            "a batch of {events} events {err}, but every piece of it succeeded, so no event is to blame: {advice}. Until then this stage is called with at most {largest} events at a time"
        );
        if first {
            tracing::warn!(pipeline, stage, "{message}");
        } else {
            tracing::debug!(pipeline, stage, "{message}");
        }
    }
}
