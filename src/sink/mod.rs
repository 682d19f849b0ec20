//! Where events go. A sink is a config, a build function and an
//! implementation of [`Sink`], whose `send` returns only once the events are
//! confirmed: the completion tracker commits source positions after that.

mod file;
mod jetstream;
mod kafka;
mod memory;
mod nats;

pub use file::{FileSink, StdioSink};
pub use jetstream::JetStreamSink;
pub use kafka::{KafkaSink, TransactionalProducer};
pub use memory::MemorySink;
pub use nats::NatsSink;

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

/// A batch handed to a sink, resolving once the sink confirmed it.
pub type Confirmation =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SinkError>> + Send>>;

/// A destination of events.
#[async_trait]
pub trait Sink: Send {
    /// Delivers `events` in order; returns once they are confirmed.
    ///
    /// # Errors
    /// A [`SinkError`]; the batch is then not acknowledged.
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError>;

    /// Hands `events` over and returns their confirmation, so that the next
    /// batch can go out while this one is in flight. Sinks whose client
    /// tracks deliveries (Kafka) override it; the default confirms before
    /// returning.
    ///
    /// # Errors
    /// A [`SinkError`] when the events could not even be handed over.
    async fn enqueue(&mut self, events: Vec<Event>) -> Result<Confirmation, SinkError> {
        self.send(events).await?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
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
