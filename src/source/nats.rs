//! NATS sources: core subjects in a queue group (at-most-once: a message is
//! gone once delivered), and JetStream durable pull consumers, acknowledged
//! only after both sinks confirmed.

use super::chunker::{Chunker, Next};
use super::jetstream_pending::Pending;
use super::jetstream_reader::ReadAhead;
pub use super::nats_connection::connect;
use super::nats_connection::connect_buffered;
use super::{Chunk, Committer, Source, SourceError, SourceEvent};
use crate::config::{JetStreamSource as JsConfig, NatsSource as CoreConfig};
use async_nats::jetstream;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use weir_abi::{Event, Header};

/// The header carrying JetStream's deduplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";

pub(super) fn shard(subject: &str, shards: u32) -> u32 {
    let h = subject.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (h % shards.max(1) as u64) as u32
}

pub(super) fn headers(h: Option<&async_nats::HeaderMap>) -> Vec<Header> {
    let Some(h) = h else { return Vec::new() };
    let mut out = Vec::new();
    for (k, values) in h.iter() {
        for v in values {
            out.push(Header {
                key: k.to_string(),
                value: v.as_str().as_bytes().to_vec(),
            });
        }
    }
    out
}

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

/// A JetStream durable pull consumer.
pub struct JetStreamSource {
    config: JsConfig,
    pending: Arc<Pending>,
}

impl JetStreamSource {
    /// A source for `config`; connects when run.
    pub fn new(config: &JsConfig) -> Self {
        JetStreamSource {
            config: config.clone(),
            pending: Arc::default(),
        }
    }
}

#[async_trait]
impl Source for JetStreamSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let c = &self.config;
        let client = connect(&c.connection).await.map_err(SourceError::Broker)?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_stream(&c.stream)
            .await
            .map_err(|e| SourceError::Broker(format!("jetstream stream {}: {e}", c.stream)))?;
        let consumer = super::jetstream_consumer::settle(&stream, c).await?;
        // Acks, and in-progress reports for messages held past a third of
        // ack_wait, until the pipeline ends.
        self.pending.start(client, c.ack_wait);
        let (ahead, mut read) = mpsc::channel(c.pull_batch.max(1));
        let reader = tokio::spawn(ReadAhead::new(consumer, c, self.pending.clone()).run(ahead));
        let mut events = futures_util::stream::poll_fn(|cx| read.poll_recv(cx));
        let mut chunker = Chunker::default();
        loop {
            let full = match chunker.next(&mut events, &mut stop).await {
                Next::Stop => break,
                Next::Idle => Some(chunker.take()),
                Next::Item(e) => chunker.push(e),
            };
            if !Chunker::forward(&out, full).await {
                reader.abort();
                return Ok(());
            }
        }
        // What was read ahead is held: it goes through the pipeline too,
        // and is acknowledged with the rest.
        reader.abort();
        let _ = reader.await;
        read.close();
        while let Ok(e) = read.try_recv() {
            let full = chunker.push(e);
            if !Chunker::forward(&out, full).await {
                return Ok(());
            }
        }
        chunker.finish(&out).await;
        Ok(())
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.pending.clone()
    }
}
