//! The Kafka sink: an idempotent producer. `send` enqueues every event and
//! returns once each delivery report came back (`enqueue` returns as soon as
//! the events are queued, with a future for their reports), so the completion tracker
//! commits source offsets only for events the brokers acknowledged. It never
//! calls `flush()`, which waits in 100 ms steps.

use super::{Confirmation, Sink, SinkError};
use crate::config::KafkaSink as Config;
use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::VecDeque;
use weir_abi::Event;

/// Publishes to Kafka; a stage's topic override wins over `topic`.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// Creates the producer.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &Config) -> Result<Self, SinkError> {
        let producer = client_config(config)
            .create()
            .map_err(|e| SinkError::Broker(format!("kafka producer: {e}")))?;
        Ok(KafkaSink {
            producer,
            topic: config.topic.clone(),
        })
    }
}

/// The producer settings every weir Kafka producer shares.
pub(super) fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2");
    for (k, v) in &config.properties.0 {
        c.set(k, v);
    }
    c
}

async fn settle(f: DeliveryFuture) -> Result<(), SinkError> {
    match f.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(SinkError::Broker(format!("kafka delivery failed: {e}"))),
        Err(_) => Err(SinkError::Broker(
            "kafka producer went away before delivery".into(),
        )),
    }
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
/// local queue is full it waits for the oldest delivery.
///
/// # Errors
/// When librdkafka refuses an event or a delivery fails while waiting.
pub(super) async fn produce(
    producer: &FutureProducer,
    topic: &str,
    events: &[Event],
) -> Result<Confirmation, SinkError> {
    let mut pending = VecDeque::with_capacity(events.len());
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
        let mut record = FutureRecord::<[u8], [u8]> {
            topic: e.topic.as_deref().unwrap_or(topic),
            partition: None,
            payload: Some(&e.value),
            key: e.key.as_deref(),
            timestamp: e.timestamp,
            headers,
        };
        loop {
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push_back(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    match pending.pop_front() {
                        Some(f) => settle(f).await?,
                        None => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                    }
                }
                Err((e, _)) => return Err(SinkError::Broker(format!("kafka produce: {e}"))),
            }
        }
    }
    Ok(Box::pin(async move {
        for f in pending {
            settle(f).await?;
        }
        Ok(())
    }))
}
