//! A Kafka worker whose pipeline has no room for longer than
//! `max.poll.interval.ms` keeps its place in the group, on a real broker
//! process (Tansu): it pauses its partitions, goes on polling (serving
//! rebalances), and resumes where it stopped.

use crate::support::brokers::Tansu;
use crate::support::kafka::committed;
use crate::support::kafka::{produce_range, setup, PARTITIONS};
use crate::support::stdout_worker::{assert_each_once, count_until, StdoutWorker};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const N: usize = 3000;
const GROUP: &str = "weir-stall";

/// A worker reading `in` in the group [`GROUP`], writing to its standard
/// output.
fn worker(dir: &std::path::Path, brokers: &str, name: &str, max_poll_ms: u64) -> StdoutWorker {
    let source = format!(
        "source = {{ type = \"kafka\", brokers = \"{brokers}\", group = \"{GROUP}\", \
         topics = [\"in\"], properties = {{ \"session.timeout.ms\" = \"3000\", \
         \"heartbeat.interval.ms\" = \"500\", \"max.poll.interval.ms\" = \"{max_poll_ms}\" }} }}"
    );
    StdoutWorker::start(dir, name, &source)
}

#[test]
fn a_sink_stalled_past_the_poll_interval_keeps_the_group_and_duplicates_nothing() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    produce_range(&tansu.brokers, 0, N);
    let dir = tempfile::tempdir().unwrap();
    let mut a = worker(dir.path(), &tansu.brokers, "stall", 3000);
    a.wait_for("partitions assigned", 60);

    // Nobody reads the output: the pipe fills up (its 64 KiB hold a few
    // hundred lines), and the pipeline behind it fills up too. Stay stalled
    // for more than three poll intervals.
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        a.log().contains("partitions paused"),
        "the stalled source paused its partitions:\n{}",
        a.log()
    );
    let (tx, lines) = mpsc::channel();
    let reader = a.read_into(tx);
    let seen = count_until(&lines, N, || a.log());
    let log = a.stop();
    reader.join().unwrap();

    assert!(
        !log.contains("maximum poll interval"),
        "the worker left the group while stalled:\n{log}"
    );
    assert_eq!(
        log.matches("partitions assigned").count(),
        1,
        "one assignment, kept throughout:\n{log}"
    );
    assert!(
        log.contains("partitions resumed"),
        "the source resumed once there was room:\n{log}"
    );
    assert_each_once(&seen, N);
    let offsets = committed(&tansu.brokers, GROUP, "in", PARTITIONS);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        N as i64,
        "every offset was committed: {offsets:?}"
    );
}

#[test]
fn a_stalled_worker_hands_partitions_to_a_new_one_without_waiting_for_room() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    produce_range(&tansu.brokers, 0, N);
    let dir = tempfile::tempdir().unwrap();
    // A poll interval far longer than the test's waits: only a source that
    // polls while stalled lets the rebalance go through in time.
    let mut a = worker(dir.path(), &tansu.brokers, "a", 60_000);
    a.wait_for("partitions assigned", 60);
    a.wait_for("partitions paused", 30);

    let (tx, lines) = mpsc::channel();
    let mut b = worker(dir.path(), &tansu.brokers, "b", 60_000);
    let reader_b = b.read_into(tx.clone());
    let joined = Instant::now();
    b.wait_for("partitions assigned", 20);
    eprintln!(
        "the new worker got its partitions {} ms after it started",
        joined.elapsed().as_millis()
    );
    assert!(
        a.log().contains("partitions revoked"),
        "the stalled worker gave partitions up:\n{}",
        a.log()
    );

    let reader_a = a.read_into(tx);
    let seen = count_until(&lines, N, || format!("A:\n{}\nB:\n{}", a.log(), b.log()));
    let (log_a, log_b) = (a.stop(), b.stop());
    reader_a.join().unwrap();
    reader_b.join().unwrap();
    assert!(
        !log_a.contains("maximum poll interval"),
        "the stalled worker left the group:\n{log_a}"
    );
    assert_eq!(
        seen.len(),
        N,
        "every event came out:\nA:\n{log_a}\nB:\n{log_b}"
    );
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("handover from a stalled worker: {duplicates} duplicates of {N} events");
    // The stalled worker abandoned what it held of the partitions it gave
    // up; only the batch caught in the stalled write (50 events at most) may
    // come out twice. Before it abandoned them, 1298 of 3000 did.
    assert!(
        duplicates <= 50,
        "{duplicates} events came out twice:\nA:\n{log_a}\nB:\n{log_b}"
    );
}
