//! Persistent checkpoints with a Kafka source, on a real broker process
//! (Tansu): a stateful stage's state travels with its partition, to a
//! worker that joins the group and to one that takes over from a killed
//! worker, and always resumes together with the position it belongs to.

use crate::support::brokers::Tansu;
use crate::support::kafka::{pipeline_file, produce_range, read_records, setup};
use crate::support::spawn_weir;
use std::collections::BTreeMap;
use std::time::Duration;

/// Events `e<i>` carry key `k<i % 16>`, and each key stays on one partition,
/// so the counter stage stamps event `i` with `i / 16 + 1`: the count of its
/// key up to it. A count that differs means the state did not match the
/// position it resumed from (lost, or restored without moving the source).
fn expected_count(value: &str) -> u64 {
    let i: u64 = value.trim_start_matches('e').parse().unwrap();
    i / 16 + 1
}

const N: usize = 1600;

#[test]
fn stage_state_moves_with_its_kafka_partition_and_resumes_with_its_position() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), &tansu.brokers);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("[checkpoint]\nstore = \"dir\"\npath = \"state\"\ninterval = \"1s\"\n");
    std::fs::write(&file, text).unwrap();

    // A alone, then B joins and takes some of A's partitions.
    let mut a = spawn_weir(&file);
    produce_range(&tansu.brokers, 0, 400);
    read_records(&tansu.brokers, 400);
    // A saves its checkpoint every second: wait for one.
    std::thread::sleep(Duration::from_millis(1500));
    let mut b = spawn_weir(&file);
    std::thread::sleep(Duration::from_secs(3));
    produce_range(&tansu.brokers, 400, 800);
    read_records(&tansu.brokers, 800);

    // A is killed while events flow, so its last checkpoint lags what it
    // committed: its partitions go to B, which resumes them from that
    // checkpoint's state and position.
    let brokers = tansu.brokers.clone();
    let producer = std::thread::spawn(move || {
        for from in (800..N).step_by(50) {
            produce_range(&brokers, from, from + 50);
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    read_records(&tansu.brokers, 1000);
    a.end_with(libc::SIGKILL);
    producer.join().unwrap();
    let records = read_records(&tansu.brokers, N);
    let log_b = b.end_with(libc::SIGTERM);

    let restored = log_b.matches("restored a checkpoint").count();
    assert!(
        restored > 0,
        "B took partitions over from their checkpoints:\n{log_b}"
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (value, count) in &records {
        assert_eq!(
            *count,
            Some(expected_count(value)),
            "{value}: its count continues from the state of its position"
        );
        *seen.entry(value).or_default() += 1;
    }
    assert_eq!(seen.len(), N, "every input event is in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("checkpointed state over a join and a SIGKILL: {restored} partitions restored, {duplicates} re-read events of {N}");
}
