//! Reading a JetStream pull consumer ahead of the pipeline.
//!
//! weir asks the server only for messages it has room for, and takes each
//! one from the client as soon as it arrives: from then on it holds the
//! message (see [`Pending`]) and reports it in progress while it waits. So
//! no message waits unread in the client, where weir could not report it,
//! for longer than `ack_wait`, however slow the pipeline behind it is.

use super::super::{headers, shard};
use super::copies::Copy;
use super::pending::Pending;
use crate::config::JetStreamSource as JsConfig;
use crate::nats::MSG_ID;
use crate::source::{Refusal, SourceEvent};
use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::Message;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use weir_abi::{Event, Header};

/// How long a pull request lasts on the server. The client ends a pull
/// five seconds after that on its own, so a request the server lost (in a
/// restart, say) holds the read up for at most that long.
const PULL_EXPIRES: Duration = Duration::from_secs(3);

/// How long a failed pull request waits before the next one.
const PULL_RETRY: Duration = Duration::from_millis(250);

/// Turns deliveries into events, in order, and holds them.
pub struct ReadAhead {
    consumer: Consumer<pull::Config>,
    config: JsConfig,
    pending: Arc<Pending>,
    /// Deliveries per shard: the positions.
    delivered: HashMap<u32, u64>,
}

impl ReadAhead {
    /// A reader of `consumer` configured by `config`, holding what it reads
    /// in `pending`.
    pub fn new(consumer: Consumer<pull::Config>, config: &JsConfig, pending: Arc<Pending>) -> Self {
        ReadAhead {
            consumer,
            config: config.clone(),
            pending,
            delivered: HashMap::new(),
        }
    }

    /// Reads until `out` is closed: at most `pull_batch` events wait in
    /// `out`, and a pull asks for half of that once there is room for it.
    pub async fn run(mut self, out: mpsc::Sender<SourceEvent>) {
        let pull = self.config.pull_batch.div_ceil(2).max(1);
        loop {
            let Ok(mut room) = out.reserve_many(pull).await else {
                return;
            };
            let pulled = self
                .consumer
                .batch()
                .max_messages(pull)
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut messages = match pulled {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!("jetstream pull: {e}");
                    tokio::time::sleep(PULL_RETRY).await;
                    continue;
                }
            };
            while let Some(m) = messages.next().await {
                match m {
                    Ok(m) => {
                        if let Some(event) = self.event_of(m) {
                            // One permit per message asked for: never empty.
                            if let Some(permit) = room.next() {
                                permit.send(event);
                            }
                        }
                    }
                    Err(e) => tracing::warn!("jetstream: {e}"),
                }
            }
        }
    }

    /// The event of a delivery, held until it is committed; `None` for a
    /// second copy of a message weir has (its first copy settles it) and for
    /// what is not a JetStream delivery.
    fn event_of(&mut self, m: Message) -> Option<SourceEvent> {
        let c = &self.config;
        let info = match m.info() {
            Ok(info) => info,
            Err(e) => {
                // Without its sequence it cannot be tracked; the server
                // redelivers it after ack_wait if it was a delivery.
                tracing::warn!(subject = %m.subject, "jetstream: a message without delivery info is skipped: {e}");
                return None;
            }
        };
        let (seq, delivered, stream_name) = (
            info.stream_sequence,
            info.delivered,
            info.stream.to_string(),
        );
        match self.pending.copy_of(seq) {
            Some(Copy::Held) => {
                tracing::debug!(
                    seq,
                    delivered,
                    "jetstream: a second copy of a message weir holds is dropped"
                );
                return None;
            }
            Some(Copy::Done) => {
                tracing::debug!(
                    seq,
                    delivered,
                    "jetstream: a second copy of a message weir acknowledged is acknowledged again"
                );
                self.pending.ack_again(m.split().1);
                return None;
            }
            None => {}
        }
        let timestamp = Some((info.published.unix_timestamp_nanos() / 1_000_000) as i64);
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
        // The server will not deliver it again: this is its last chance,
        // so it goes to the dead-letter sink.
        let refused = (delivered >= c.max_deliver).then(|| Refusal {
            kind: "max_deliver",
            reason: format!(
                "delivered {delivered} times without an acknowledgement (max_deliver {})",
                c.max_deliver
            ),
        });
        // Positions count deliveries per shard. Stream sequences would not
        // do: a redelivered message arrives after newer ones, and
        // acknowledging "everything up to" a newer sequence would
        // acknowledge it before it is processed.
        let position = {
            let n = self.delivered.entry(partition).or_insert(0);
            *n += 1;
            *n
        };
        if let Some(reply) = reply {
            self.pending.hold(partition, position, seq, acker, reply);
        }
        Some(SourceEvent {
            partition,
            position,
            event,
            refused,
        })
    }
}
