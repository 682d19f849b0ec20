//! NATS keys of pipeline files.
//!
//! ```toml
//! [source]
//! type = "jetstream"             # or "nats" for core subjects (at-most-once)
//! url = "nats://127.0.0.1:4222"
//! stream = "ORDERS"              # jetstream: the stream to consume
//! consumer = "orders-enrich"     # jetstream: durable consumer name
//! subject = "orders.>"           # nats: subject to subscribe; jetstream: optional filter
//! queue = "orders-enrich"        # nats: queue group (default: the pipeline name)
//! max_pending = 65536            # nats: messages the client buffers before it drops
//! ack_wait = "30s"               # jetstream
//! max_deliver = 5                # jetstream: the last delivery goes to the dead-letter sink
//! max_ack_pending = 20000        # jetstream: delivered, not yet acknowledged messages
//! pull_batch = 1000              # jetstream: messages read ahead, pulled half at a time (default: 2 × batch.max_events, 100–1000)
//! token = "${NATS_TOKEN}"        # or user + password, or credentials = "file.creds"
//! ```

use super::pipeline::resolve;
use super::problems::{join, Walker};
use super::units::parse_positive_duration;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to authenticate; secret values may come from `${ENV}`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NatsAuth {
    /// A token.
    pub token: Option<String>,
    /// User and password.
    pub user_password: Option<(String, String)>,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user_password.as_ref().map(|(u, _)| u))
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// A NATS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConnection {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Authentication.
    pub auth: NatsAuth,
}

/// A core NATS subscription in a queue group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSource {
    /// Connection.
    pub connection: NatsConnection,
    /// Subject (wildcards allowed).
    pub subject: String,
    /// Queue group shared by the workers of this pipeline.
    pub queue: String,
    /// Messages the client buffers for the subscription; past that it drops
    /// what the server sends (and logs it): core NATS does not redeliver.
    pub max_pending: usize,
    /// Subject-hash shards standing in for partitions.
    pub shards: u32,
}

/// The default `max_pending`: async-nats' own subscription capacity.
pub const MAX_PENDING: usize = 65_536;

/// A JetStream durable pull consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamSource {
    /// Connection.
    pub connection: NatsConnection,
    /// The stream.
    pub stream: String,
    /// The durable consumer's name, shared by the workers of this pipeline.
    pub consumer: String,
    /// Optional filter subject.
    pub subject: Option<String>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Deliveries before a message goes to the dead-letter sink.
    pub max_deliver: i64,
    /// Messages the server delivers before it waits for acknowledgements.
    pub max_ack_pending: i64,
    /// Messages read ahead of the pipeline (held, and reported in progress
    /// while they wait); a pull request asks for half of that.
    pub pull_batch: usize,
    /// Subject-hash shards standing in for partitions.
    pub shards: u32,
}

/// The default `pull_batch` for batches of `max_events`: two batches, at
/// least 100 messages (fewer would cost a round trip per few messages) and
/// at most 1000 (what is read ahead is held in memory).
pub fn default_pull_batch(max_events: usize) -> usize {
    max_events.saturating_mul(2).clamp(100, 1000)
}

/// The default `max_ack_pending`: room for the batches weir keeps in flight
/// (the server's own default, 1000, holds two batches of 512 and stalls the
/// pipeline behind them).
pub const MAX_ACK_PENDING: i64 = 20_000;

/// A NATS or JetStream sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSink {
    /// Connection.
    pub connection: NatsConnection,
    /// Subject events go to unless a stage set one.
    pub subject: String,
}

const AUTH_KEYS: &[&str] = &["token", "user", "password", "credentials"];

fn secret(w: &mut Walker, path: &str, t: &toml::Table, key: &str) -> Option<String> {
    let v = w.string(path, t, key)?;
    match v.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(name) => match std::env::var(name) {
            Ok(v) => Some(v),
            Err(_) => {
                w.problem(
                    &join(path, key),
                    format!("environment variable {name} is not set"),
                    format!("export {name} before starting weir"),
                );
                None
            }
        },
        None => Some(v),
    }
}

pub(super) fn connection(
    w: &mut Walker,
    path: &str,
    t: &toml::Table,
    base: &Path,
) -> Option<NatsConnection> {
    let url = w.required_string(path, t, "url", "url = \"nats://127.0.0.1:4222\"");
    let token = secret(w, path, t, "token");
    let user = secret(w, path, t, "user");
    let password = secret(w, path, t, "password");
    if user.is_some() != password.is_some() {
        w.problem(
            &join(path, "user"),
            "user and password go together",
            "set both, or neither",
        );
    }
    let credentials = w.string(path, t, "credentials").map(|c| resolve(base, &c));
    Some(NatsConnection {
        url: url?,
        auth: NatsAuth {
            token,
            user_password: user.zip(password),
            credentials,
        },
    })
}

pub(super) fn keys(extra: &[&'static str]) -> Vec<&'static str> {
    let mut k = vec!["type", "url"];
    k.extend_from_slice(AUTH_KEYS);
    k.extend_from_slice(extra);
    k
}

pub(super) fn nats_source(
    w: &mut Walker,
    t: &toml::Table,
    base: &Path,
    pipeline: &str,
    shards: u32,
) -> Option<NatsSource> {
    w.unknown_keys(
        "source",
        t,
        &keys(&["subject", "queue", "max_pending", "shards"]),
    );
    let connection = connection(w, "source", t, base);
    let subject = w.required_string("source", t, "subject", "subject = \"orders.>\"");
    let queue = w
        .string("source", t, "queue")
        .unwrap_or_else(|| pipeline.to_string());
    let max_pending = w
        .integer("source", t, "max_pending", 1, 16_777_216)
        .map_or(MAX_PENDING, |n| n as usize);
    Some(NatsSource {
        connection: connection?,
        subject: subject?,
        queue,
        max_pending,
        shards,
    })
}

pub(super) fn jetstream_source(
    w: &mut Walker,
    t: &toml::Table,
    base: &Path,
    pipeline: &str,
    shards: u32,
    max_events: usize,
) -> Option<JetStreamSource> {
    w.unknown_keys(
        "source",
        t,
        &keys(&[
            "stream",
            "consumer",
            "subject",
            "ack_wait",
            "max_deliver",
            "max_ack_pending",
            "pull_batch",
            "shards",
        ]),
    );
    let connection = connection(w, "source", t, base);
    let stream = w.required_string(
        "source",
        t,
        "stream",
        "the stream to consume: stream = \"ORDERS\"",
    );
    let consumer = w
        .string("source", t, "consumer")
        .unwrap_or_else(|| pipeline.to_string());
    let subject = w.string("source", t, "subject");
    let ack_wait = w
        .parsed("source", t, "ack_wait", parse_positive_duration, "30s")
        .unwrap_or(Duration::from_secs(30));
    let max_deliver = w
        .integer("source", t, "max_deliver", 1, 1_000_000)
        .map_or(5, |n| n as i64);
    let max_ack_pending = w
        .integer("source", t, "max_ack_pending", 1, 10_000_000)
        .map_or(MAX_ACK_PENDING, |n| n as i64);
    let pull_batch = w
        .integer("source", t, "pull_batch", 1, 100_000)
        .map_or_else(|| default_pull_batch(max_events), |n| n as usize);
    Some(JetStreamSource {
        connection: connection?,
        stream: stream?,
        consumer,
        subject,
        ack_wait,
        max_deliver,
        max_ack_pending,
        pull_batch,
        shards,
    })
}

pub(super) fn nats_sink(
    w: &mut Walker,
    path: &str,
    t: &toml::Table,
    base: &Path,
) -> Option<NatsSink> {
    w.unknown_keys(path, t, &keys(&["subject"]));
    let connection = connection(w, path, t, base);
    let subject = w.required_string(
        path,
        t,
        "subject",
        "the subject events go to unless a stage sets one",
    );
    Some(NatsSink {
        connection: connection?,
        subject: subject?,
    })
}
