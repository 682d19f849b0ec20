//! Kafka consumer groups on a real broker process (Tansu): two `weir`
//! processes split the partitions, take over from each other, and survive
//! SIGKILL without losing an event.

use crate::support::brokers::Tansu;
use crate::support::kafka::*;
use crate::support::spawn_weir;
use std::collections::BTreeMap;

use std::time::Duration;

fn read_out(brokers: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (value, _) in read_records(brokers, n) {
        *seen.entry(value).or_default() += 1;
    }
    seen
}

/// Reads `out` from the start until `n` distinct values arrived (then a
/// little longer, for trailing duplicates); returns every record as its
/// value and its `count` header, in the order read.
fn assigned(log: &str) -> bool {
    log.contains("partitions assigned")
}

#[test]
fn two_workers_split_the_partitions_and_one_takes_over_from_the_other() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), &tansu.brokers);
    let mut a = spawn_weir(&file);
    let mut b = spawn_weir(&file);
    produce_range(&tansu.brokers, 0, 400);
    let seen = read_out(&tansu.brokers, 400);
    assert_eq!(seen.len(), 400, "every event of the first half");

    // Stop one worker: its partitions move to the other.
    let log_a = a.end_with(libc::SIGTERM);
    produce_range(&tansu.brokers, 400, 800);
    let seen = read_out(&tansu.brokers, 800);
    let log_b = b.end_with(libc::SIGTERM);
    assert!(
        assigned(&log_a) && assigned(&log_b),
        "both workers took part:\nA:\n{log_a}\nB:\n{log_b}"
    );
    assert!(
        log_a.contains("finished"),
        "the stopped worker drained and left cleanly:\n{log_a}"
    );
    assert_eq!(seen.len(), 800, "every input event is in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("two workers, one stopped: {duplicates} duplicates of 800 events");
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_duplicates_are_counted() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), &tansu.brokers);
    const N: usize = 2000;
    // Events keep arriving while the workers are killed, so each kill lands
    // with batches in flight and offsets not yet committed.
    let brokers = tansu.brokers.clone();
    let producer = std::thread::spawn(move || {
        for from in (0..N).step_by(50) {
            produce_range(&brokers, from, from + 50);
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    for kill_after in [300, 1200] {
        let mut w = spawn_weir(&file);
        read_out(&tansu.brokers, kill_after);
        w.end_with(libc::SIGKILL);
    }
    let mut w = spawn_weir(&file);
    producer.join().unwrap();
    let seen = read_out(&tansu.brokers, N);
    w.end_with(libc::SIGTERM);
    assert_eq!(seen.len(), N, "every input event is in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("at-least-once after two SIGKILLs: {duplicates} duplicates of {N} events");
}
