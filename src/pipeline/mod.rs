//! The pipeline engine (docs/architecture.md §2):
//!
//! ```text
//! source ─► batcher ─► dispatcher ─► worker thread k ─► sink + dead-letter sink
//!   ▲                                 (stage chain)          │
//!   └──── commit ◄── completion tracker ◄── confirmed ◄──────┘
//! ```
//!
//! Every channel is bounded, so a busy pool holds the source back. A batch
//! holds one partition's events; a partition always runs on the same worker
//! thread, so per-partition order holds end to end.
//!
//! [`start`] runs a pipeline in the delivery mode its file names and returns
//! a [`RunHandle`]: its counters, its reload manager, a way to stop it and
//! its report.

mod batch;
mod batcher;
mod budget;
mod chain;
mod counters;
mod delivery;
mod dispatch;
mod endpoints;
mod error;
mod persist;
pub mod reload;
mod slots;
mod stage;
mod start;
mod started;
mod swap;
mod tracker;
mod worker;

pub use batch::{headers, AckToken, Batch, Processed};
pub use counters::{RunCounters, RunReport};
pub use delivery::{Faults, TRANSACTION_BATCHES, TRANSACTION_INTERVAL};
pub use endpoints::Endpoints;
pub use error::PipelineError;
pub use stage::{prepare_stages, StageSpec};
pub use start::{start, RunHandle, StartOptions, Stopper};
pub use swap::{Control, Incident, Spares};
pub use tracker::CompletionTracker;
pub use worker::PoolControl;
