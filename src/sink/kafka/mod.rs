//! The Kafka sink: an idempotent producer. `send` enqueues every event and
//! returns once each delivery report came back (`enqueue` returns as soon as
//! the events are queued, with a future for their reports), so the
//! completion tracker commits source offsets only for events the brokers
//! acknowledged. It never calls `flush()`, which waits in 100 ms steps.

mod reports;
mod txn;

pub use txn::TransactionalProducer;

use super::{Confirmation, Sink, SinkError};
use crate::config::KafkaSink as Config;
use async_trait::async_trait;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::ClientConfig;
use reports::{BatchAck, Producer, Reports};
use weir_abi::Event;

/// Publishes to Kafka; a stage's topic override wins over `topic`.
pub struct KafkaSink {
    producer: Producer,
    topic: String,
}

impl KafkaSink {
    /// Creates the producer.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &Config) -> Result<Self, SinkError> {
        let producer = create(&client_config(config))
            .map_err(|e| SinkError::Broker(format!("kafka producer: {e}")))?;
        Ok(KafkaSink {
            producer,
            topic: config.topic.clone(),
        })
    }
}

/// The producer settings every weir Kafka producer shares.
fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2");
    for (k, v) in &config.properties.0 {
        c.set(k, v);
    }
    c
}

/// A producer with its polling thread, reporting deliveries per batch.
fn create(config: &ClientConfig) -> rdkafka::error::KafkaResult<Producer> {
    Producer::from_config_and_context(config, Reports)
}

#[async_trait]
impl Sink for KafkaSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.enqueue(events).await?.await
    }

    async fn enqueue(&mut self, events: Vec<Event>) -> Result<Confirmation, SinkError> {
        produce(&self.producer, &self.topic, &events).await
    }
}

/// Hands `events` to `producer` (a stage's topic override wins over
/// `topic`) and returns the future of their delivery reports. When the
/// local queue is full it waits for room.
///
/// # Errors
/// When librdkafka refuses an event.
async fn produce(
    producer: &Producer,
    topic: &str,
    events: &[Event],
) -> Result<Confirmation, SinkError> {
    let ack = BatchAck::new();
    for e in events {
        let headers = (!e.headers.is_empty()).then(|| {
            e.headers
                .iter()
                .fold(OwnedHeaders::new_with_capacity(e.headers.len()), |hs, h| {
                    hs.insert(Header {
                        key: &h.key,
                        value: Some(&h.value),
                    })
                })
        });
        let record = BaseRecord::<[u8], [u8], _> {
            topic: e.topic.as_deref().unwrap_or(topic),
            partition: None,
            payload: Some(&e.value),
            key: e.key.as_deref(),
            timestamp: e.timestamp,
            headers,
            delivery_opaque: ack.clone(),
        };
        ack.expect_one();
        send(producer, record).await?;
    }
    ack.handed_over();
    Ok(Box::pin(async move { ack.confirmed().await }))
}

/// Hands one record to `producer`; when its local queue is full, waits
/// for room.
///
/// # Errors
/// When librdkafka refuses the record.
async fn send(
    producer: &Producer,
    mut record: BaseRecord<'_, [u8], [u8], std::sync::Arc<reports::BatchAck>>,
) -> Result<(), SinkError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                // The polling thread drains the queue as reports come.
                record = r;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(SinkError::Broker(format!("kafka produce: {e}"))),
        }
    }
}
