//! Two exactly-once workers in one consumer group, on a real broker process
//! (Tansu): the second joins mid-stream, and the first commits its open
//! transaction before it gives partitions up. The group settles and both
//! workers commit; when the first stops, the second takes over its
//! partitions; each event is in the output once.

use crate::support::brokers::Tansu;
use crate::support::kafka::{committed, create_topics};
use crate::support::kafka::{pipeline_file, produce_range, read_records, setup, PARTITIONS};
use crate::support::stdout_worker::assert_each_once;
use crate::support::{spawn_weir, tokio_rt, wait_until, Process};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const N: usize = 3000;
/// The group of [`pipeline_file`].
const GROUP: &str = "weir-group";

/// Whether `weir`'s log says it was given at least one partition.
fn got_partitions(weir: &Process) -> bool {
    weir.log()
        .lines()
        .any(|l| l.contains("partitions assigned") && !l.contains("partitions=0"))
}

/// The consumer-group tests' pipeline, in exactly-once mode with a Kafka
/// dead-letter topic.
fn exactly_once_file(dir: &std::path::Path, brokers: &str) -> std::path::PathBuf {
    let file = pipeline_file(dir, brokers);
    let text = std::fs::read_to_string(&file).unwrap();
    let text = format!(
        "delivery = \"exactly-once\"\n{text}\
         [dead_letter]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"dlq\"\n"
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Waits until the group's committed offsets of `in` add up to `n`.
fn wait_for_commits(brokers: &str, n: usize, workers: &[&Process]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let offsets = committed(brokers, GROUP, "in", PARTITIONS);
        if offsets.iter().sum::<i64>() == n as i64 {
            return;
        }
        let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
        assert!(
            Instant::now() < deadline,
            "the group stopped short of {n}: {offsets:?}\n{}",
            logs.join("\n----\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_second_exactly_once_worker_joins_mid_stream_and_takes_over_when_the_first_stops() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    tokio_rt().block_on(create_topics(&tansu.brokers, &[("dlq", 1)]));
    let dir = tempfile::tempdir().unwrap();
    let file = exactly_once_file(dir.path(), &tansu.brokers);

    // Events keep arriving for about ten seconds, so the second worker
    // joins while the first has transactions open.
    let brokers = tansu.brokers.clone();
    let producer = std::thread::spawn(move || {
        for from in (0..N).step_by(50) {
            produce_range(&brokers, from, from + 50);
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let a = spawn_weir(&file);
    wait_until("the first worker's partitions", 60, || got_partitions(&a));
    std::thread::sleep(Duration::from_secs(2));
    let b = spawn_weir(&file);
    wait_until("the second worker's partitions", 60, || got_partitions(&b));
    producer.join().unwrap();

    wait_for_commits(&tansu.brokers, N, &[&a, &b]);

    // The first worker stops: its partitions move to the second, which
    // reads them on from where the first committed.
    let log_a = a.stop();
    produce_range(&tansu.brokers, N, 2 * N);
    wait_for_commits(&tansu.brokers, 2 * N, &[&b]);
    let log_b = b.stop();
    for (name, log) in [("A", &log_a), ("B", &log_b)] {
        assert!(
            !log.contains("with a new consumer"),
            "worker {name} kept its consumer (and its place in the group):\n{log}"
        );
        assert!(log.contains("finished"), "worker {name} finished:\n{log}");
    }
    assert!(
        log_a.contains("the open transaction was committed first"),
        "A committed its open transaction before giving partitions to B:\n{log_a}"
    );
    for (name, log) in [("A", &log_a), ("B", &log_b)] {
        assert!(
            !log.contains("transaction aborted"),
            "worker {name} aborted no transaction:\n{log}"
        );
    }

    // No transaction aborted, so even this broker, which shows aborted
    // records as well, holds each event once.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (v, _) in read_records(&tansu.brokers, 2 * N) {
        *seen.entry(v).or_default() += 1;
    }
    assert_each_once(&seen, 2 * N);
}
