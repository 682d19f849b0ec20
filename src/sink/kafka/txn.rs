//! The transactional Kafka producer of exactly-once mode: one producer
//! writes the events and the dead letters, and commits the consumed offsets
//! in the same transaction.
//!
//! librdkafka's transactional calls block; each runs on tokio's blocking
//! pool so the sink loop's runtime stays free.

use super::reports::{BatchAck, Producer as ReportingProducer};
use super::{client_config, create, produce, send};
use crate::config::KafkaSink as Config;
use crate::sink::{Confirmation, SinkError};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::producer::BaseRecord;
use rdkafka::producer::Producer;
use rdkafka::TopicPartitionList;
use std::time::Duration;
use weir_abi::Event;

/// How long a transactional call may take before it counts as failed.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A transactional producer for a pipeline's sink and dead-letter topics.
pub struct TransactionalProducer {
    producer: ReportingProducer,
    topic: String,
    dead_letter_topic: String,
    /// The `transactional.id`, for logs.
    pub id: String,
}

impl TransactionalProducer {
    /// Creates the producer and registers `id` with the transaction
    /// coordinator (fencing an older producer with the same id).
    ///
    /// # Errors
    /// When librdkafka rejects the configuration or the coordinator does not
    /// answer.
    pub async fn new(
        sink: &Config,
        dead_letter_topic: &str,
        id: String,
    ) -> Result<Self, SinkError> {
        let producer = create(client_config(sink).set("transactional.id", &id))
            .map_err(|e| SinkError::Broker(format!("kafka transactional producer: {e}")))?;
        let p = producer.clone();
        blocking(
            move || p.init_transactions(TXN_TIMEOUT),
            "init transactions",
        )
        .await?;
        Ok(TransactionalProducer {
            producer,
            topic: sink.topic.clone(),
            dead_letter_topic: dead_letter_topic.to_string(),
            id,
        })
    }

    /// Opens a transaction.
    ///
    /// # Errors
    /// When a transaction is already open or the producer failed.
    pub fn begin(&self) -> Result<(), SinkError> {
        self.producer
            .begin_transaction()
            .map_err(|e| SinkError::Broker(format!("kafka begin transaction: {e}")))
    }

    /// Produces events to the sink topic (or a stage's override) inside the
    /// open transaction.
    ///
    /// # Errors
    /// When librdkafka refuses an event.
    pub async fn events(&self, events: &[Event]) -> Result<Confirmation, SinkError> {
        produce(&self.producer, &self.topic, events).await
    }

    /// Produces dead letters to the dead-letter topic inside the open
    /// transaction.
    ///
    /// # Errors
    /// When librdkafka refuses a record.
    pub async fn dead_letters(&self, records: &[Event]) -> Result<Confirmation, SinkError> {
        produce(&self.producer, &self.dead_letter_topic, records).await
    }

    /// Produces keyed-state changes to `partition` of the changelog `topic`
    /// inside the open transaction: each record key with its value, or no
    /// value for a removed key, marked with the source `position` of the
    /// batch they belong to.
    ///
    /// # Errors
    /// When librdkafka refuses a record.
    pub async fn changelog(
        &self,
        topic: &str,
        partition: i32,
        position: u64,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<Confirmation, SinkError> {
        let ack = BatchAck::new();
        let position = position.to_string();
        for (key, value) in records {
            let headers = crate::checkpoint::changelog::position_headers(&position);
            ack.expect_one();
            let record = BaseRecord::<[u8], [u8], _> {
                topic,
                partition: Some(partition),
                payload: value.as_deref(),
                key: Some(key),
                timestamp: None,
                headers: Some(headers),
                delivery_opaque: ack.clone(),
            };
            send(&self.producer, record).await?;
        }
        ack.handed_over();
        Ok(Box::pin(async move { ack.confirmed().await }))
    }

    /// Adds the consumed offsets to the open transaction and commits it.
    ///
    /// # Errors
    /// When the broker refuses either step; the caller then aborts.
    pub async fn commit(
        &self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<(), SinkError> {
        let p = self.producer.clone();
        blocking(
            move || {
                if offsets.count() > 0 {
                    p.send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
                }
                p.commit_transaction(TXN_TIMEOUT)
            },
            "commit transaction",
        )
        .await
    }

    /// Aborts the open transaction: its events and offsets are discarded.
    ///
    /// # Errors
    /// When the abort itself fails (the producer is then unusable).
    pub async fn abort(&self) -> Result<(), SinkError> {
        let p = self.producer.clone();
        blocking(
            move || p.abort_transaction(TXN_TIMEOUT),
            "abort transaction",
        )
        .await
    }
}

async fn blocking(
    f: impl FnOnce() -> rdkafka::error::KafkaResult<()> + Send + 'static,
    what: &str,
) -> Result<(), SinkError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SinkError::Broker(format!("kafka {what}: {e}"))),
        Err(e) => Err(SinkError::Broker(format!("kafka {what}: {e}"))),
    }
}
