//! Keeping the group while the pipeline has no room.
//!
//! A source that waits for room in the pipeline does not poll its consumer.
//! librdkafka takes a member that has not polled for `max.poll.interval.ms`
//! for stuck: it leaves the group, its commits are refused, and everything
//! it had read but not committed is read again. A rebalance, too, waits for
//! every member to poll. So when a chunk has found no room for a while (a
//! third of the poll interval, at most [`PAUSE_AFTER`]), the source pauses
//! its partitions and goes on polling, which serves rebalances and keeps its
//! place in the group. Once the chunk has gone out, it resumes them. Pausing
//! drops what librdkafka had fetched ahead; a partition resumes at the
//! message after the last one weir read.

use crate::config::Properties;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest a chunk waits for room before the source pauses.
pub const PAUSE_AFTER: Duration = Duration::from_secs(5);

/// librdkafka's default `max.poll.interval.ms`.
const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);

/// How long a chunk waits for room before the source pauses, for the
/// consumer's `properties` (which may set `max.poll.interval.ms`).
pub fn pause_after(properties: &Properties) -> Duration {
    let interval = properties
        .get("max.poll.interval.ms")
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEFAULT_MAX_POLL_INTERVAL, Duration::from_millis);
    (interval / 3).min(PAUSE_AFTER)
}

/// Whether the source holds its partitions paused; shared with the
/// rebalance callback, which pauses partitions assigned meanwhile.
#[derive(Clone, Default)]
pub struct Paused(Arc<AtomicBool>);

impl Paused {
    /// Whether the source is paused now.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Pauses every partition `consumer` holds.
    pub fn pause<C: ConsumerContext>(&self, consumer: &impl Consumer<C>) {
        self.0.store(true, Ordering::Release);
        match consumer.assignment() {
            Ok(tpl) => pause(consumer, &tpl),
            Err(e) => tracing::warn!("kafka: cannot pause (no assignment): {e}"),
        }
    }

    /// Resumes every partition `consumer` holds.
    pub fn resume<C: ConsumerContext>(&self, consumer: &impl Consumer<C>) {
        self.0.store(false, Ordering::Release);
        let resumed = consumer.assignment().and_then(|tpl| consumer.resume(&tpl));
        if let Err(e) = resumed {
            tracing::warn!("kafka: cannot resume the partitions: {e}");
        }
    }
}

/// Pauses the partitions of `tpl`.
pub fn pause<C: ConsumerContext>(consumer: &impl Consumer<C>, tpl: &TopicPartitionList) {
    if tpl.count() > 0 {
        if let Err(e) = consumer.pause(tpl) {
            tracing::warn!("kafka: cannot pause the partitions: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: &str) -> Properties {
        Properties(vec![("max.poll.interval.ms".into(), v.into())])
    }

    #[test]
    fn the_source_pauses_well_within_the_poll_interval() {
        assert_eq!(
            pause_after(&Properties::default()),
            PAUSE_AFTER,
            "librdkafka's default 300 s"
        );
        assert_eq!(pause_after(&props("3000")), Duration::from_secs(1));
        assert_eq!(pause_after(&props("600000")), PAUSE_AFTER);
        assert_eq!(pause_after(&props("junk")), PAUSE_AFTER);
    }
}
