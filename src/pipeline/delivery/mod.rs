//! The two delivery modes, siblings over the same started pipeline
//! ([`crate::pipeline::started`]): [`at_least_once`] commits positions after
//! the sinks confirmed, [`exactly_once`] commits outputs and positions in one
//! Kafka transaction.

pub(super) mod at_least_once;
pub(super) mod exactly_once;

pub use exactly_once::{Faults, TRANSACTION_BATCHES, TRANSACTION_INTERVAL};

use super::counters::RunCounters;
use crate::metrics::PipelineMetrics;
use std::sync::atomic::Ordering;

/// Counts one delivered batch in the metrics and the live counters.
fn count_delivered(
    metrics: &PipelineMetrics,
    counters: &RunCounters,
    created: std::time::Instant,
    n_out: u64,
    n_dead: u64,
) {
    metrics.events_out.increment(n_out);
    metrics
        .batch_duration
        .record(created.elapsed().as_secs_f64());
    counters.events_out.fetch_add(n_out, Ordering::Relaxed);
    counters.dead_letters.fetch_add(n_dead, Ordering::Relaxed);
    counters.batches.fetch_add(1, Ordering::Relaxed);
}
