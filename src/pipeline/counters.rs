//! What a run did: live counters readable while it runs, and the report
//! when it ends.

use std::sync::atomic::{AtomicBool, AtomicU64};

/// Live counts of a running pipeline, readable from another task (progress
/// display, admin status).
#[derive(Debug, Default)]
pub struct RunCounters {
    /// Events read from the source.
    pub events_in: AtomicU64,
    /// Events confirmed by the sink.
    pub events_out: AtomicU64,
    /// Dead letters confirmed by the dead-letter sink.
    pub dead_letters: AtomicU64,
    /// Batches fully acknowledged.
    pub batches: AtomicU64,
    /// Checkpoints saved to the store.
    pub checkpoints_saved: AtomicU64,
    /// Bytes handed to the checkpoint store: records, and keys and values
    /// of keyed state.
    pub checkpoint_bytes: AtomicU64,
    /// Whether the pipeline keeps persistent checkpoints.
    pub checkpointing: AtomicBool,
    /// Asks the running pipeline to save a checkpoint now.
    pub checkpoint_now: tokio::sync::Notify,
    /// Whether the worker pool started: the stages are loaded, the
    /// endpoints connected (readiness).
    pub started: AtomicBool,
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Events read from the source.
    pub events_in: u64,
    /// Events confirmed by the sink.
    pub events_out: u64,
    /// Dead letters confirmed by the dead-letter sink.
    pub dead_letters: u64,
    /// Batches fully acknowledged.
    pub batches: u64,
}
