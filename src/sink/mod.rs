//! Where events go. A sink is a config, a build function and an
//! implementation of [`Sink`], whose `send` returns only once the events are
//! confirmed: the completion tracker commits source positions after that.

mod file;
mod kafka;
mod memory;
mod nats;

pub use file::{FileSink, StdioSink};
pub use kafka::KafkaSink;
pub use memory::MemorySink;
pub use nats::{JetStreamSink, NatsSink};

use crate::config::SinkConfig;
use async_trait::async_trait;
use weir_abi::Event;

/// Why a sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("sink I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The broker refused or lost events.
    #[error("{0}")]
    Broker(String),
}

/// A destination of events.
#[async_trait]
pub trait Sink: Send {
    /// Delivers `events` in order; returns once they are confirmed.
    ///
    /// # Errors
    /// A [`SinkError`]; the batch is then not acknowledged.
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError>;
}

/// Builds the sink a pipeline names.
///
/// # Errors
/// When a file cannot be opened.
pub async fn build(config: &SinkConfig) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match config {
        SinkConfig::File { path } => Box::new(FileSink::open(path).await?),
        SinkConfig::Stdout => Box::new(StdioSink::stdout()),
        SinkConfig::Stderr => Box::new(StdioSink::stderr()),
        SinkConfig::Kafka(k) => Box::new(KafkaSink::new(k)?),
        SinkConfig::Nats(n) => Box::new(NatsSink::connect(n).await?),
        SinkConfig::JetStream(n) => Box::new(JetStreamSink::connect(n).await?),
    })
}
