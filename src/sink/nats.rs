//! The core NATS sink: a batch is confirmed once the server answered a flush
//! (it has every message; core NATS itself promises no more). The JetStream
//! sink is in `jetstream.rs`.

use super::{Sink, SinkError};
use crate::config::NatsSink as Config;
use crate::source::nats::{connect, MSG_ID};
use async_trait::async_trait;
use std::collections::HashMap;
use weir_abi::Event;

pub(super) fn header_map(e: &Event, seen: &mut HashMap<Vec<u8>, u32>) -> async_nats::HeaderMap {
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
