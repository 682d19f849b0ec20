//! NATS sources: core subjects in a queue group (at-most-once: a message is
//! gone once delivered), and JetStream durable pull consumers, acknowledged
//! only after both sinks confirmed.

use super::chunker::{Chunker, Next};
use super::jetstream_copies::Copy;
use super::jetstream_pending::Pending;
pub use super::nats_connection::connect;
use super::nats_connection::connect_buffered;
use super::{Chunk, Committer, Refusal, Source, SourceError, SourceEvent};
use crate::config::{JetStreamSource as JsConfig, NatsSource as CoreConfig};
use async_nats::jetstream;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use weir_abi::{Event, Header};

/// The header carrying JetStream's deduplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";

fn shard(subject: &str, shards: u32) -> u32 {
    let h = subject.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (h % shards.max(1) as u64) as u32
}

fn headers(h: Option<&async_nats::HeaderMap>) -> Vec<Header> {
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

/// How long a pull request lasts on the server.
const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(5);

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
        // Pulls of `pull_batch` messages (async-nats asks for more when
        // half are read) that expire after PULL_EXPIRES: a pull the client
        // and server disagree about ends that soon rather than after
        // async-nats' default 30 s.
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(c.pull_batch)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_EXPIRES / 2)
            .messages()
            .await
            .map_err(|e| SourceError::Broker(format!("jetstream pull: {e}")))?;
        // Acks, and in-progress reports for messages held past a third of
        // ack_wait, until the pipeline ends.
        self.pending.start(client, c.ack_wait);
        let mut chunker = Chunker::default();
        let mut delivered_count: HashMap<u32, u64> = HashMap::new();
        loop {
            let msg = match chunker.next(&mut messages, &mut stop).await {
                Next::Stop => break,
                Next::Idle => None,
                Next::Item(m) => Some(m),
            };
            let full = match msg {
                Some(Err(e)) => {
                    tracing::warn!("jetstream: {e}");
                    continue;
                }
                Some(Ok(m)) => {
                    let info = match m.info() {
                        Ok(info) => info,
                        Err(e) => {
                            // Not a JetStream delivery: without its sequence
                            // it cannot be tracked; the server redelivers it
                            // after ack_wait if it was one.
                            tracing::warn!(subject = %m.subject, "jetstream: a message without delivery info is skipped: {e}");
                            continue;
                        }
                    };
                    let (seq, delivered, stream_name) = (
                        info.stream_sequence,
                        info.delivered,
                        info.stream.to_string(),
                    );
                    // A second copy of a message weir already has: its
                    // first copy settles it.
                    match self.pending.copy_of(seq) {
                        Some(Copy::Held) => {
                            tracing::debug!(
                                seq,
                                delivered,
                                "jetstream: a second copy of a message weir holds is dropped"
                            );
                            continue;
                        }
                        Some(Copy::Done) => {
                            tracing::debug!(seq, delivered, "jetstream: a second copy of a message weir acknowledged is acknowledged again");
                            self.pending.ack_again(m.split().1);
                            continue;
                        }
                        None => {}
                    }
                    let timestamp =
                        Some((info.published.unix_timestamp_nanos() / 1_000_000) as i64);
                    let partition = shard(m.subject.as_str(), c.shards);
                    let reply = m.reply.clone();
                    let (msg, acker) = m.split();
                    let mut headers = headers(msg.headers.as_ref());
                    headers.retain(|h| h.key != MSG_ID);
                    headers.push(Header {
                        key: MSG_ID.into(),
                        value: format!("{stream_name}:{seq}").into_bytes(),
                    });
                    let event = Event {
                        key: None,
                        value: msg.payload.to_vec(),
                        headers,
                        timestamp,
                        topic: Some(msg.subject.to_string()),
                    };
                    // The server will not deliver it again: this is its
                    // last chance, so it goes to the dead-letter sink.
                    let refused = (delivered >= c.max_deliver).then(|| Refusal {
                        kind: "max_deliver",
                        reason: format!(
                            "delivered {delivered} times without an acknowledgement (max_deliver {})",
                            c.max_deliver
                        ),
                    });
                    // Positions count deliveries per shard. Stream sequences
                    // would not do: a redelivered message arrives after newer
                    // ones, and acknowledging "everything up to" a newer
                    // sequence would acknowledge it before it is processed.
                    let position = {
                        let n = delivered_count.entry(partition).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if let Some(reply) = reply {
                        self.pending.hold(partition, position, seq, acker, reply);
                    }
                    chunker.push(SourceEvent {
                        partition,
                        position,
                        event,
                        refused,
                    })
                }
                None => Some(chunker.take()),
            };
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
