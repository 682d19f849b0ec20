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

mod batch;
mod batcher;
mod budget;
mod chain;
mod persist;
pub mod reload;
mod run;
mod stage;
mod started;
mod swap;
mod tracker;
mod transaction;
mod worker;

pub use batch::{headers, AckToken, Batch, Processed};
pub use run::{prepare_stages, run, Endpoints, PipelineError, RunCounters, RunReport};
pub use stage::StageSpec;
pub use swap::{Control, Incident, Spares};
pub use tracker::CompletionTracker;
pub use transaction::{run_exactly_once, Faults, TRANSACTION_BATCHES, TRANSACTION_INTERVAL};
pub use worker::PoolControl;
