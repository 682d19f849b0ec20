//! A counting pipeline under load: the stateful counter fed from memory,
//! and the check that its output holds every event once with counts that go
//! on without a gap (across swaps, rollbacks and languages).

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir::pipeline::reload::Reloader;
use weir::pipeline::RunCounters;
use weir::source::{MemoryFeed, MemorySource};
use weir::Event;

const PARTITIONS: u32 = 4;

pub fn counting_pipeline(extra: &str) -> weir::config::Pipeline {
    counting_pipeline_of("counter.wasm", extra)
}

/// The counting pipeline with another counter plugin of `plugins/dist`.
pub fn counting_pipeline_of(plugin: &str, extra: &str) -> weir::config::Pipeline {
    pipeline(&format!(
        r#"
        name = "swap"
        sink = {{ type = "stdout" }}
        source = {{ type = "stdin" }}
        [workers]
        threads = 2
        [batch]
        max_events = 20
        linger = "2ms"
        [[stage]]
        name = "count"
        plugin = "{{dist}}/{plugin}"
        {extra}
        "#
    ))
}

/// Feeds keyed events (key = partition) at a steady pace, at least `n` and
/// on until `done` is set; returns how many.
async fn feed(feed: MemoryFeed, n: u64, pace: Duration, done: Arc<AtomicBool>) -> u64 {
    let mut i = 0;
    while i < n || !done.load(Ordering::Relaxed) {
        let p = (i % u64::from(PARTITIONS)) as u32;
        let mut e = Event::from_value(i.to_string());
        e.key = Some(format!("k{p}").into_bytes());
        feed.send(p, e).await.unwrap();
        if i % 20 == 19 {
            tokio::time::sleep(pace).await;
        }
        i += 1;
    }
    i
}

/// Every event exactly once, in order per partition, and the counter's
/// totals run 1, 2, 3… per key with no gap or repeat.
pub fn assert_exactly_once_with_continuous_counts(out: &[Event], n: u64) {
    assert_eq!(out.len() as u64, n, "every event once");
    let mut last: BTreeMap<Vec<u8>, (i64, u64)> = BTreeMap::new();
    for e in out {
        let key = e.key.clone().unwrap();
        let value: i64 = String::from_utf8_lossy(&e.value).parse().unwrap();
        let count: u64 = header(e, "count").parse().unwrap();
        let (prev_value, prev_count) = last.get(&key).copied().unwrap_or((-1, 0));
        assert!(
            value > prev_value,
            "order within {key:?}: {value} after {prev_value}"
        );
        assert_eq!(
            count,
            prev_count + 1,
            "the count of {key:?} continues at event {value}"
        );
        last.insert(key, (value, count));
    }
}

/// Runs the counting pipeline while `during` acts on the reloader, over at
/// least `n` events and on until `during` is done (on a busy machine a
/// swap takes longer); returns the sink's and the dead-letter sink's events
/// and how many were fed.
pub fn with_running_pipeline<F, Fut>(
    p: &weir::config::Pipeline,
    n: u64,
    during: F,
) -> (Vec<Event>, Vec<Event>, u64)
where
    F: FnOnce(Reloader, Arc<RunCounters>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (tx, source) = MemorySource::channel(64);
    let (endpoints, out, dead) = harness::memory(source);
    let fed = tokio_rt().block_on(async {
        let run = harness::start(p, harness::with_endpoints(endpoints)).await;
        let done = Arc::new(AtomicBool::new(false));
        let producer = tokio::spawn(feed(tx, n, Duration::from_millis(2), done.clone()));
        during(run.reloader().clone(), run.counters().clone()).await;
        done.store(true, Ordering::Relaxed);
        let fed = producer.await.unwrap();
        run.finished().await.unwrap();
        fed
    });
    (out.events(), dead.events(), fed)
}

/// Waits for events to flow, then swaps the stage `count` ten times,
/// alternating between two plugins of `plugins/dist`, the last one
/// `files[1]`, while events flow.
pub async fn ten_swaps(reloader: &Reloader, counters: &RunCounters, files: [&str; 2]) {
    use weir::pipeline::reload::Artifact;
    let flowed = || counters.events_out.load(Ordering::Relaxed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while flowed() == 0 {
        assert!(std::time::Instant::now() < deadline, "no event came out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_first = flowed();
    let dist = root().join("plugins/dist");
    for k in 0..10 {
        if k == 9 {
            assert!(flowed() > at_first, "events flowed while it swapped");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        let d = reloader
            .deploy("count", Artifact::Path(dist.join(files[k % 2])))
            .await
            .unwrap_or_else(|e| panic!("swap {k}: {e}"));
        assert!(!d.unchanged);
    }
}
