//! NATS sinks. Core NATS: a batch is confirmed once the server answered a
//! flush (it has every message; core NATS itself promises no more). JetStream:
//! a batch is confirmed once every publish was acknowledged by the stream;
//! `Nats-Msg-Id` headers (set by the JetStream source) let the server drop
//! what a crash made weir publish twice.

use super::{Confirmation, Sink, SinkError};
use crate::config::NatsSink as Config;
use crate::source::nats::{connect, MSG_ID};
use async_nats::jetstream;
use async_trait::async_trait;
use std::collections::HashMap;
use weir_abi::Event;

fn header_map(e: &Event, seen: &mut HashMap<Vec<u8>, u32>) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for x in &e.headers {
        let value = String::from_utf8_lossy(&x.value);
        if x.key == MSG_ID {
            // A stage that emits several events for one input: number them,
            // so that each is kept and each is deduplicated on replay.
            let n = seen.entry(x.value.clone()).or_insert(0);
            let id = if *n == 0 {
                value.into_owned()
            } else {
                format!("{value}:{n}")
            };
            *n += 1;
            h.insert(MSG_ID, id.as_str());
        } else {
            h.append(x.key.as_str(), value.as_ref());
        }
    }
    h
}

/// Core NATS publishing.
pub struct NatsSink {
    client: async_nats::Client,
    subject: String,
}

impl NatsSink {
    /// Connects.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self, SinkError> {
        let client = connect(&config.connection)
            .await
            .map_err(SinkError::Broker)?;
        Ok(NatsSink {
            client,
            subject: config.subject.clone(),
        })
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        let mut seen = HashMap::new();
        for e in events {
            let subject = e.topic.clone().unwrap_or_else(|| self.subject.clone());
            let headers = header_map(&e, &mut seen);
            self.client
                .publish_with_headers(subject, headers, e.value.into())
                .await
                .map_err(|err| SinkError::Broker(format!("nats publish: {err}")))?;
        }
        self.client
            .flush()
            .await
            .map_err(|e| SinkError::Broker(format!("nats flush: {e}")))
    }
}

/// Publish acknowledgements awaited together, by one task.
const ACKS_IN_FLIGHT: usize = 1024;

async fn await_ack(ack: jetstream::context::PublishAckFuture) -> Result<(), SinkError> {
    ack.await
        .map(|_| ())
        .map_err(|e| SinkError::Broker(format!("jetstream publish not acknowledged: {e}")))
}

/// JetStream publishing with acknowledgements.
pub struct JetStreamSink {
    js: jetstream::Context,
    subject: String,
}

impl JetStreamSink {
    /// Connects.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self, SinkError> {
        let client = connect(&config.connection)
            .await
            .map_err(SinkError::Broker)?;
        Ok(JetStreamSink {
            js: jetstream::new(client),
            subject: config.subject.clone(),
        })
    }
}

#[async_trait]
impl Sink for JetStreamSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.enqueue(events).await?.await
    }

    /// Publishes the batch and returns the wait for its publish acks. The
    /// acks are awaited by tasks of their own, a group of
    /// [`ACKS_IN_FLIGHT`] each: async-nats lets a publish wait for an ack
    /// permit, and awaiting an ack is what returns the permit, so the
    /// awaiting must not depend on the caller polling the confirmation.
    async fn enqueue(&mut self, events: Vec<Event>) -> Result<Confirmation, SinkError> {
        let mut seen = HashMap::new();
        let mut groups = Vec::new();
        let mut acks = Vec::with_capacity(events.len().min(ACKS_IN_FLIGHT));
        for e in events {
            let subject = e.topic.clone().unwrap_or_else(|| self.subject.clone());
            let headers = header_map(&e, &mut seen);
            let ack = self
                .js
                .publish_with_headers(subject, headers, e.value.into())
                .await
                .map_err(|err| SinkError::Broker(format!("jetstream publish: {err}")))?;
            acks.push(ack);
            if acks.len() == ACKS_IN_FLIGHT {
                groups.push(tokio::spawn(await_all(std::mem::take(&mut acks))));
            }
        }
        if !acks.is_empty() {
            groups.push(tokio::spawn(await_all(acks)));
        }
        Ok(Box::pin(async move {
            for group in groups {
                group
                    .await
                    .map_err(|e| SinkError::Broker(format!("jetstream publish acks: {e}")))??;
            }
            Ok(())
        }))
    }
}

async fn await_all(acks: Vec<jetstream::context::PublishAckFuture>) -> Result<(), SinkError> {
    for ack in acks {
        await_ack(ack).await?;
    }
    Ok(())
}
