//! The core NATS sink: a batch is confirmed once the server answered a flush
//! (it has every message; core NATS itself promises no more). The JetStream
//! sink is in `jetstream.rs`.

use super::{Sink, SinkError};
use crate::config::NatsSink as Config;
use crate::nats::{connect, MSG_ID};
use async_trait::async_trait;
use std::collections::HashMap;
use weir_abi::{Event, Header};

/// Numbers the repeated `Nats-Msg-Id`s of a batch in place: a stage that
/// emits several events for one input gets each kept, and each
/// deduplicated on replay (`<id>`, `<id>:1`, `<id>:2`…).
pub(super) fn number_msg_ids(headers: &mut [Header], seen: &mut HashMap<Vec<u8>, u32>) {
    for x in headers.iter_mut().filter(|x| x.key == MSG_ID) {
        let n = seen.entry(x.value.clone()).or_insert(0);
        if *n > 0 {
            x.value = format!("{}:{n}", String::from_utf8_lossy(&x.value)).into_bytes();
        }
        *n += 1;
    }
}

/// The NATS headers of an event (its message id, if any, once).
pub(super) fn header_map(headers: &[Header]) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for x in headers {
        let value = String::from_utf8_lossy(&x.value);
        if x.key == MSG_ID {
            h.insert(MSG_ID, value.as_ref());
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
            let mut headers = e.headers;
            number_msg_ids(&mut headers, &mut seen);
            let headers = header_map(&headers);
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
