//! Connecting to NATS, shared by the NATS sources, sinks and checkpoint
//! store, and saying in the log what happens to the connection: losing and
//! regaining the server, and messages the client dropped because a
//! subscription's buffer was full (a "slow consumer").

use crate::config::NatsConnection;
use async_nats::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header carrying JetStream's deduplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// At most one slow-consumer line per this interval: every dropped message
/// raises the event, and a full buffer drops many.
const SLOW_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Connects with the configured credentials and async-nats' default
/// subscription buffer.
///
/// # Errors
/// When the server cannot be reached or refuses the credentials.
pub async fn connect(c: &NatsConnection) -> Result<async_nats::Client, String> {
    connect_buffered(c, crate::config::NATS_MAX_PENDING).await
}

/// Connects with the configured credentials; each subscription buffers up
/// to `max_pending` messages before the client drops what the server sends.
///
/// # Errors
/// When the server cannot be reached or refuses the credentials.
pub async fn connect_buffered(
    c: &NatsConnection,
    max_pending: usize,
) -> Result<async_nats::Client, String> {
    let events = Arc::new(Events::new(&c.url));
    let mut o = async_nats::ConnectOptions::new()
        .name("weir")
        .subscription_capacity(max_pending)
        .event_callback(move |e| {
            let events = events.clone();
            async move { events.log(e) }
        });
    if let Some(t) = &c.auth.token {
        o = o.token(t.clone());
    }
    if let Some((u, p)) = &c.auth.user_password {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(path) = &c.auth.credentials {
        o = o
            .credentials_file(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    o.connect(c.url.as_str())
        .await
        .map_err(|e| format!("nats {}: {e}", c.url))
}

/// One connection's event log.
struct Events {
    url: String,
    start: Instant,
    /// Slow-consumer events since the last report.
    dropped: AtomicU64,
    /// When the last slow-consumer report went out (ms since `start`, plus
    /// one; 0 = never).
    reported: AtomicU64,
}

impl Events {
    fn new(url: &str) -> Self {
        Events {
            url: url.to_string(),
            start: Instant::now(),
            dropped: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }

    fn log(&self, e: Event) {
        let url = &self.url;
        match e {
            Event::Connected => tracing::info!(nats = %url, "nats: connected"),
            Event::Disconnected => {
                tracing::warn!(nats = %url, "nats: disconnected; reconnecting")
            }
            Event::LameDuckMode => {
                tracing::warn!(nats = %url, "nats: the server is shutting down (lame duck mode)")
            }
            Event::Draining | Event::Closed => tracing::info!(nats = %url, "nats: {e}"),
            Event::ServerError(err) => tracing::warn!(nats = %url, "nats: server error: {err}"),
            Event::ClientError(err) => tracing::warn!(nats = %url, "nats: client error: {err}"),
            Event::SlowConsumer(_) => self.slow_consumer(),
        }
    }

    fn slow_consumer(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.reported.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= SLOW_REPORT_EVERY.as_millis() as u64;
        if !due
            || self
                .reported
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let n = self.dropped.swap(0, Ordering::Relaxed);
        tracing::warn!(
            nats = %self.url,
            dropped = n,
            "nats: slow consumer: a subscription's buffer is full and the client dropped \
             messages the server sent ({n} since the last report). Core NATS does not send \
             them again (JetStream does, after ack_wait). Fix: raise the source's \
             `max_pending`, add worker threads, or make the stages faster"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_consumer_reports_are_spaced_out_and_count_every_drop() {
        let e = Events::new("nats://127.0.0.1:1");
        e.slow_consumer();
        assert_eq!(
            e.dropped.load(Ordering::Relaxed),
            0,
            "the first is reported"
        );
        for _ in 0..1000 {
            e.slow_consumer();
        }
        assert_eq!(
            e.dropped.load(Ordering::Relaxed),
            1000,
            "later ones wait for the next report"
        );
    }
}
