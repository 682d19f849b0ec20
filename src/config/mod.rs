//! Pipeline files: TOML → a typed, validated [`Pipeline`], with every
//! problem reported at once (file, key path, hint) before anything starts.

mod checkpoint;
mod endpoints;
mod kafka;
mod nats;
mod pipeline;
mod problems;
mod stage;
pub mod units;

pub use checkpoint::{CheckpointConfig, CheckpointStoreConfig};
pub use endpoints::{transactional, SinkConfig, SourceConfig};
pub use kafka::{KafkaSink, KafkaSource, Properties};
pub use nats::{
    JetStreamSource, NatsAuth, NatsConnection, NatsSink, NatsSource,
    MAX_ACK_PENDING as JETSTREAM_MAX_ACK_PENDING, MAX_PENDING as NATS_MAX_PENDING,
};
pub use pipeline::{
    default_threads, BatchConfig, Delivery, Pipeline, SmokeCheck, SmokeCompare, StageConfig,
    SwapPolicy, WorkersConfig,
};
pub use problems::{ConfigError, Problem};
