//! The Kafka source: a consumer group member (cooperative-sticky
//! assignment, auto-commit off) that commits an offset only after every event
//! before it was confirmed by both sinks.

mod assignments;
mod commit;
mod pause;
mod revoke;
mod source;

pub use commit::{ConsumedOffsets, Revoked};
pub use revoke::CommitNow;
pub use source::KafkaSource;
