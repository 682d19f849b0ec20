//! A Kafka broker that goes away mid-stream and comes back (librdkafka's
//! mock cluster keeps its data while it is down): weir waits, reconnects,
//! goes on with what is produced after, and loses nothing.

use crate::support::kafka::{committed, kafka_pipeline, produce, read_until};
use crate::support::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir::pipeline::StartOptions;

/// How many records the 3 partitions of `topic` hold (their high
/// watermarks; 0 while the broker cannot say).
fn count(brokers: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..3)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(2))
                .map_or(0, |(_, high)| high)
        })
        .sum()
}

#[test]
fn kafka_broker_down_mid_stream_loses_nothing() {
    const N: usize = 3000;
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    let brokers = mock.bootstrap_servers();
    for t in ["in", "out"] {
        mock.create_topic(t, 3, 1).unwrap();
    }
    mock.create_topic("dlq", 1, 1).unwrap();
    let input: Vec<(i32, String)> = (0..N).map(|i| ((i % 3) as i32, format!("e{i}"))).collect();
    // Half before the outage, half after it.
    let (before, after) = input.split_at(N / 2);
    tokio_rt().block_on(produce(&brokers, "in", before));

    // weir runs on a thread of its own until told to stop; the mock cluster
    // stays here, where the broker is taken down and brought back.
    let p = kafka_pipeline(&brokers, "identity.core.wasm", "");
    let stop = Arc::new(AtomicBool::new(false));
    let worker = std::thread::spawn({
        let stop = stop.clone();
        move || {
            tokio_rt().block_on(async {
                let run = harness::start(&p, StartOptions::default()).await;
                harness::stop_when(run, async {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
                .await
            })
        }
    });

    wait_until("the first outputs", 60, || count(&brokers, "out") > 0);
    mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    mock.broker_up(1).unwrap();
    tokio_rt().block_on(produce(&brokers, "in", after));
    wait_until("every offset committed", 60, || {
        committed(&brokers, "weir", "in", 3) == [1000, 1000, 1000]
    });
    stop.store(true, Ordering::Relaxed);
    let report = worker.join().unwrap().expect("weir ran through the outage");

    let out: Vec<String> = read_until(&brokers, "out", 3, |got, quiet| {
        got.len() >= N && quiet > Duration::from_millis(500)
    })
    .into_iter()
    .map(|(v, _)| v)
    .collect();
    let distinct: BTreeSet<&String> = out.iter().collect();
    let expected: Vec<String> = input.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(
        distinct,
        expected.iter().collect::<BTreeSet<_>>(),
        "every input event is in the output"
    );
    eprintln!(
        "broker down for 4 s mid-stream: {} duplicates of {N} events, {} events confirmed by weir",
        out.len() - N,
        report.events_out
    );
}
