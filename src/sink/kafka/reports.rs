//! Delivery reports counted per batch. Each event handed to librdkafka
//! carries its batch's [`BatchAck`]; the producer's polling thread counts
//! the reports down and wakes the batch's waiter once, when the last one
//! came back. (A future per event would cost an allocation and, while the
//! sink loop waits on the oldest batch, a task wake-up per event.)

use crate::sink::SinkError;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The producer of the Kafka sinks.
pub(super) type Producer = ThreadedProducer<Reports>;

/// Routes each delivery report to its batch.
pub(super) struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Arc<BatchAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<BatchAck>) {
        if let Err((e, _)) = result {
            ack.fail(format!("kafka delivery failed: {e}"));
        }
        ack.done_one();
    }
}

/// The delivery reports one batch still waits for.
pub(super) struct BatchAck {
    /// Reports outstanding, plus one while events are still being handed
    /// over.
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    all_back: Notify,
}

impl BatchAck {
    /// A batch whose events are about to be handed over.
    pub fn new() -> Arc<Self> {
        Arc::new(BatchAck {
            remaining: AtomicUsize::new(1),
            failure: Mutex::new(None),
            all_back: Notify::new(),
        })
    }

    /// One more event will report back.
    pub fn expect_one(&self) {
        self.remaining.fetch_add(1, Ordering::Relaxed);
    }

    /// Every event was handed over.
    pub fn handed_over(&self) {
        self.done_one();
    }

    fn done_one(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit when nobody waits yet.
            self.all_back.notify_one();
        }
    }

    fn fail(&self, reason: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(reason);
    }

    /// Waits for every report; the first failure, if any.
    ///
    /// # Errors
    /// [`SinkError::Broker`] when an event was not delivered.
    pub async fn confirmed(&self) -> Result<(), SinkError> {
        if self.remaining.load(Ordering::Acquire) != 0 {
            self.all_back.notified().await;
        }
        match self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(reason) => Err(SinkError::Broker(reason)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_is_confirmed_once_every_report_came_back() {
        let ack = BatchAck::new();
        ack.expect_one();
        ack.expect_one();
        ack.handed_over();
        ack.done_one();
        let waiting = tokio::spawn({
            let ack = ack.clone();
            async move { ack.confirmed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one report is still out");
        ack.fail("lost".into());
        ack.done_one();
        let r = waiting.await.unwrap();
        assert!(matches!(r, Err(SinkError::Broker(m)) if m == "lost"));
    }
}
