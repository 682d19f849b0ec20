//! The JetStream sink: a batch is confirmed once the stream acknowledged
//! every publish of it. `Nats-Msg-Id` headers (set by the JetStream source)
//! let the server drop what a crash made weir publish twice, and what a
//! publish retried after a lost acknowledgement stored twice.

use super::nats::{header_map, number_msg_ids};
use super::{Confirmation, Sink, SinkError};
use crate::config::NatsSink as Config;
use crate::nats::connect;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::{jetstream, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::join_all;
use std::collections::HashMap;
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use weir_abi::{Event, Header};

/// Publish acknowledgements awaited together, by one task.
const ACKS_IN_FLIGHT: usize = 1024;

/// How long a publish is tried again after its acknowledgement failed to
/// come (the server restarting, the connection lost): well inside the
/// default duplicate window of a stream (2 minutes), so that a retry of a
/// message the stream did store is dropped as a duplicate.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// JetStream publishing with acknowledgements.
pub struct JetStreamSink {
    js: jetstream::Context,
    subject: Subject,
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
            subject: Subject::from(config.subject.as_str()),
        })
    }
}

/// One publish, kept to be made again (its headers as weir's, turned into
/// NATS headers for each try: cheaper than keeping a copy of those).
struct Outgoing {
    subject: Subject,
    headers: Vec<Header>,
    payload: Bytes,
}

#[async_trait]
impl Sink for JetStreamSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.enqueue(events).await?.await
    }

    /// Publishes the batch and returns the wait for its publish acks. The
    /// acks are awaited by tasks of their own, a group of
    /// `ACKS_IN_FLIGHT` each: async-nats lets a publish wait for an ack
    /// permit, and awaiting an ack is what returns the permit, so the
    /// awaiting must not depend on the caller polling the confirmation.
    async fn enqueue(&mut self, events: Vec<Event>) -> Result<Confirmation, SinkError> {
        let mut seen = HashMap::new();
        let mut groups = Vec::new();
        let mut group = Vec::with_capacity(events.len().min(ACKS_IN_FLIGHT));
        for e in events {
            let subject = match e.topic {
                Some(t) => Subject::from(t),
                None => self.subject.clone(),
            };
            let mut headers = e.headers;
            number_msg_ids(&mut headers, &mut seen);
            let payload = Bytes::from(e.value);
            let out = Outgoing {
                subject,
                headers,
                payload,
            };
            let ack = publish(&self.js, &out).await?;
            group.push((out, ack));
            if group.len() == ACKS_IN_FLIGHT {
                let js = self.js.clone();
                groups.push(tokio::spawn(confirm_all(js, std::mem::take(&mut group))));
            }
        }
        if !group.is_empty() {
            groups.push(tokio::spawn(confirm_all(self.js.clone(), group)));
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

async fn publish(js: &jetstream::Context, out: &Outgoing) -> Result<PublishAckFuture, SinkError> {
    js.publish_with_headers(
        out.subject.clone(),
        header_map(&out.headers),
        out.payload.clone(),
    )
    .await
    .map_err(|err| SinkError::Broker(format!("jetstream publish: {err}")))
}

/// Whether a failed acknowledgement may succeed when the publish is made
/// again: it timed out or the connection broke, or the stream did not
/// answer (a restarted server that has not loaded it yet).
fn retryable(kind: PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::StreamNotFound
    )
}

type Acked = Result<jetstream::publish::PublishAck, PublishError>;

/// Splits a group's results into the publishes to make again and the last
/// retryable error; a failure no retry can mend ends the run.
fn retryable_failures(
    outs: Vec<Outgoing>,
    results: Vec<Acked>,
) -> Result<(Vec<Outgoing>, Option<PublishError>), SinkError> {
    let mut failed = Vec::new();
    let mut last = None;
    for (out, result) in outs.into_iter().zip(results) {
        match result {
            Ok(_) => {}
            Err(e) if retryable(e.kind()) => {
                failed.push(out);
                last = Some(e);
            }
            Err(e) => {
                return Err(SinkError::Broker(format!(
                    "jetstream publish to {} refused: {e}",
                    out.subject
                )))
            }
        }
    }
    Ok((failed, last))
}

/// Awaits a group's acks in order. Acks usually come in order and quickly,
/// so awaiting them one by one costs least; once one has failed, the rest
/// are awaited together (each waits up to the client's request timeout, and
/// acks lost to an outage must not time out one after the other). The
/// publishes whose ack failed in a way a retry can mend are made again, in
/// order and with the same headers (so the same `Nats-Msg-Id`), until all
/// are acknowledged or [`RETRY_FOR`] is over.
async fn confirm_all(
    js: jetstream::Context,
    group: Vec<(Outgoing, PublishAckFuture)>,
) -> Result<(), SinkError> {
    let mut group = group.into_iter();
    let mut failed = Vec::new();
    let mut last = None;
    while let Some((out, ack)) = group.next() {
        match ack.await {
            Ok(_) => {}
            Err(e) => {
                let (outs, acks): (Vec<Outgoing>, Vec<PublishAckFuture>) = group.unzip();
                let mut results = vec![Err(e)];
                results.extend(join_all(acks.into_iter().map(IntoFuture::into_future)).await);
                (failed, last) =
                    retryable_failures(std::iter::once(out).chain(outs).collect(), results)?;
                break;
            }
        }
    }
    let deadline = Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(100);
    let mut tries = 1u32;
    while let Some(err) = last {
        if Instant::now() + pause > deadline {
            return Err(SinkError::Broker(format!(
                "{} jetstream publishes not acknowledged after {tries} tries in {}s: {err}",
                failed.len(),
                RETRY_FOR.as_secs()
            )));
        }
        if tries == 1 {
            tracing::warn!(
                publishes = failed.len(),
                "jetstream: publishes not acknowledged ({err}); trying again with the same message ids"
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_BACKOFF);
        tries += 1;
        let mut acks = Vec::with_capacity(failed.len());
        for out in &failed {
            acks.push(publish(&js, out).await?);
        }
        let results = join_all(acks.into_iter().map(IntoFuture::into_future)).await;
        (failed, last) = retryable_failures(failed, results)?;
    }
    if tries > 1 {
        tracing::info!(tries, "jetstream: publishes acknowledged after a retry");
    }
    Ok(())
}
