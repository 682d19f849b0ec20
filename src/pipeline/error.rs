//! Why a pipeline could not start or had to stop.

use crate::runtime::{CallError, LoadError};
use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a pipeline could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A stage's plugin could not be loaded.
    #[error("stage {stage}: {source}")]
    Load {
        /// The stage.
        stage: String,
        /// Why.
        source: LoadError,
    },
    /// A stage's plugin is not signed as the pipeline requires.
    #[error("stage {stage}: refused: {source}")]
    Signature {
        /// The stage.
        stage: String,
        /// Why.
        source: crate::signing::SignError,
    },
    /// A stage's first instance did not start (its `init` refused, say).
    #[error("stage {stage}: cannot start: {source}")]
    Start {
        /// The stage.
        stage: String,
        /// Why.
        source: CallError,
    },
    /// The checkpoint store failed at start.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink failed; the batch it held was not acknowledged.
    #[error("sink: {0}")]
    Sink(SinkError),
    /// The dead-letter sink failed; the batch it held was not acknowledged.
    #[error("dead-letter sink: {0}")]
    DeadLetter(SinkError),
    /// An exactly-once transaction was aborted; its events and offsets were
    /// discarded and are read again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// Internal failure (a thread could not start, or panicked).
    #[error("internal error: {0}")]
    Internal(String),
}
