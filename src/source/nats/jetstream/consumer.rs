//! The durable JetStream consumer a source reads from: made with the
//! pipeline's settings when it does not exist, and brought to them when it
//! does, so that a changed `ack_wait`, `max_deliver`, `max_ack_pending` or
//! `subject` takes effect on the next start.

use crate::config::JetStreamSource as JsConfig;
use crate::source::SourceError;
use async_nats::jetstream::consumer::{pull, AckPolicy, Consumer, FromConsumer};
use async_nats::jetstream::stream::Stream;

/// The consumer named in `c`, with `c`'s settings.
///
/// # Errors
/// [`SourceError::Broker`] when the server refuses to make or change it,
/// or when an existing consumer does not take explicit acks (weir cannot
/// hold back acknowledgements then, and the server cannot change that).
pub async fn settle(stream: &Stream, c: &JsConfig) -> Result<Consumer<pull::Config>, SourceError> {
    let name = &c.consumer;
    let broker = |what: String| SourceError::Broker(format!("jetstream consumer {name}: {what}"));
    let consumer: Consumer<pull::Config> = stream
        .get_or_create_consumer(name, wanted(c))
        .await
        .map_err(|e| broker(e.to_string()))?;
    let have = &consumer.cached_info().config;
    if have.ack_policy != AckPolicy::Explicit {
        return Err(broker(format!(
            "it exists with ack policy {:?}; weir acknowledges each message after the sinks \
             confirmed it, which needs explicit acks: delete the consumer or name another",
            have.ack_policy
        )));
    }
    let changes = differences(have, c);
    if changes.is_empty() {
        return Ok(consumer);
    }
    let mut config =
        pull::Config::try_from_consumer_config(have.clone()).map_err(|e| broker(e.to_string()))?;
    apply(&mut config, c);
    let consumer = stream.create_consumer(config).await.map_err(|e| {
        broker(format!(
            "cannot bring the existing consumer to the pipeline's {}: {e}",
            changes.join(", ")
        ))
    })?;
    tracing::info!(consumer = %name, "jetstream: consumer updated: {}", changes.join(", "));
    Ok(consumer)
}

/// The settings of a consumer made for `c`.
fn wanted(c: &JsConfig) -> pull::Config {
    let mut config = pull::Config {
        durable_name: Some(c.consumer.clone()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    apply(&mut config, c);
    config
}

/// Sets the settings a pipeline file gives a consumer.
fn apply(config: &mut pull::Config, c: &JsConfig) {
    config.ack_wait = c.ack_wait;
    config.max_deliver = c.max_deliver;
    config.max_ack_pending = c.max_ack_pending;
    config.filter_subject = c.subject.clone().unwrap_or_default();
}

/// The pipeline's settings that `have` does not match, as "key old → new".
fn differences(have: &async_nats::jetstream::consumer::Config, c: &JsConfig) -> Vec<String> {
    let mut changes = Vec::new();
    let mut compare = |key: &str, old: String, new: String| {
        if old != new {
            changes.push(format!("{key} {old} → {new}"));
        }
    };
    compare(
        "ack_wait",
        format!("{:?}", have.ack_wait),
        format!("{:?}", c.ack_wait),
    );
    compare(
        "max_deliver",
        have.max_deliver.to_string(),
        c.max_deliver.to_string(),
    );
    compare(
        "max_ack_pending",
        have.max_ack_pending.to_string(),
        c.max_ack_pending.to_string(),
    );
    compare(
        "subject",
        format!("{:?}", have.filter_subject),
        format!("{:?}", c.subject.clone().unwrap_or_default()),
    );
    changes
}
