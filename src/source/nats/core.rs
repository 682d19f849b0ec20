//! Core NATS: a queue-group subscription. At-most-once by nature: a message
//! is gone once the server delivered it.

use super::{headers, shard};
use crate::config::NatsSource as CoreConfig;
use crate::nats::connect_buffered;
use crate::source::chunker::{Chunker, Next};
use crate::source::{Chunk, Committer, Source, SourceError, SourceEvent};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use weir_abi::Event;

/// Core NATS: subscribe in a queue group.
pub struct NatsSource {
    config: CoreConfig,
}

impl NatsSource {
    /// A source for `config`; connects when run.
    pub fn new(config: &CoreConfig) -> Self {
        NatsSource {
            config: config.clone(),
        }
    }
}

/// Core NATS has nothing to acknowledge.
struct NoCommits;

impl Committer for NoCommits {
    fn commit(&self, _: u32, _: u64) {}
}

#[async_trait]
impl Source for NatsSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let client = connect_buffered(&self.config.connection, self.config.max_pending)
            .await
            .map_err(SourceError::Broker)?;
        let mut sub = client
            .queue_subscribe(self.config.subject.clone(), self.config.queue.clone())
            .await
            .map_err(|e| SourceError::Broker(format!("nats subscribe: {e}")))?;
        let mut positions: HashMap<u32, u64> = HashMap::new();
        let mut chunker = Chunker::default();
        loop {
            let msg = match chunker.next(&mut sub, &mut stop).await {
                Next::Stop => break,
                Next::Idle => None,
                Next::Item(m) => Some(m),
            };
            let full = match msg {
                Some(m) => {
                    let partition = shard(m.subject.as_str(), self.config.shards);
                    let pos = positions.entry(partition).or_insert(0);
                    *pos += 1;
                    let event = Event {
                        key: None,
                        value: m.payload.to_vec(),
                        headers: headers(m.headers.as_ref()),
                        timestamp: None,
                        topic: Some(m.subject.to_string()),
                    };
                    chunker.push(SourceEvent {
                        partition,
                        position: *pos,
                        event,
                        refused: None,
                    })
                }
                None => Some(chunker.take()),
            };
            if !Chunker::forward(&out, full).await {
                return Ok(());
            }
        }
        chunker.finish(&out).await;
        let _ = sub.unsubscribe().await;
        Ok(())
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(NoCommits)
    }
}
