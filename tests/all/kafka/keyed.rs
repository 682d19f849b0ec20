//! Keyed state held by the host follows its Kafka partition, on a real
//! broker process (Tansu): two workers count per key in one group, one
//! leaves mid-stream, the other takes its partitions over with their keyed
//! state, and every output's count is the true count at its position.
//! At-least-once mode carries the state in the checkpoint store (the worker
//! is killed with SIGKILL); exactly-once mode in the changelog topic,
//! inside the transactions (the worker stops with SIGTERM, or is killed
//! with SIGKILL and restarted with its stable identity).

use crate::support::brokers::Tansu;
use crate::support::kafka::{committed, create_topics, pipeline_file_with, produce_range};
use crate::support::kafka::{read_records, setup, PARTITIONS};
use crate::support::{spawn_weir, tokio_rt, wait_until, Process};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const N: usize = 1600;

/// Events `e<i>` carry key `k<i % 16>`, and each key stays on one
/// partition: the count of event `i` is `i / 16 + 1`.
fn expected_count(value: &str) -> u64 {
    let i: u64 = value.trim_start_matches('e').parse().unwrap();
    i / 16 + 1
}

/// The group pipeline with the keyed counter, `head` before it and `tail`
/// after it.
fn keyed_file(dir: &std::path::Path, brokers: &str, head: &str, tail: &str) -> std::path::PathBuf {
    let file = pipeline_file_with(dir, brokers, "keyed_counter.wasm");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{head}\n{text}{tail}")).unwrap();
    file
}

/// The keyed counter pipeline exactly-once, its dead letters to `dlq`
/// (created here).
fn exactly_once_file(dir: &std::path::Path, brokers: &str) -> std::path::PathBuf {
    tokio_rt().block_on(create_topics(brokers, &[("dlq", 1)]));
    let dlq =
        format!("[dead_letter]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"dlq\"\n");
    keyed_file(dir, brokers, "delivery = \"exactly-once\"", &dlq)
}

/// The changelog of pipeline `p` for a one-partition topic `orders`
/// (both created here).
async fn orders_changelog(brokers: &str) -> weir::checkpoint::changelog::Changelog {
    create_topics(brokers, &[("orders", 1)]).await;
    let source = weir::config::KafkaSource {
        brokers: brokers.to_string(),
        group: "g".into(),
        topics: vec!["orders".into()],
        properties: Default::default(),
        instance: None,
    };
    let changelog = weir::checkpoint::changelog::Changelog::new(&source, "p");
    changelog.ensure_topics().await.unwrap();
    changelog
}

/// Whether `weir`'s log says it was given at least one partition.
fn got_partitions(weir: &Process) -> bool {
    weir.log()
        .lines()
        .any(|l| l.contains("partitions assigned") && !l.contains("partitions=0"))
}

/// Waits until the group committed all `N` events (`worker`'s log shown
/// if it does not within 90 s).
fn all_committed(brokers: &str, worker: &Process) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while committed(brokers, "weir-group", "in", PARTITIONS)
        .iter()
        .sum::<i64>()
        != N as i64
    {
        assert!(
            Instant::now() < deadline,
            "the group stopped short of {N}: {:?}\n{}",
            committed(brokers, "weir-group", "in", PARTITIONS),
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The keyed counter pipeline at-least-once, saving checkpoints to a
/// directory every `interval`.
fn checkpointed(dir: &std::path::Path, brokers: &str, interval: &str) -> std::path::PathBuf {
    keyed_file(
        dir,
        brokers,
        "",
        &format!("[checkpoint]\nstore = \"dir\"\npath = \"state\"\ninterval = \"{interval}\"\n"),
    )
}

/// A and B count; events keep coming while A ends with `signal`; B
/// finishes. Returns every output record and B's log.
fn one_of_two_ends(
    brokers: &str,
    (file_a, file_b): (&std::path::Path, &std::path::Path),
    signal: i32,
    restart_a: bool,
) -> (Vec<(String, Option<u64>)>, String) {
    let mut a = spawn_weir(file_a);
    wait_until("A's partitions", 60, || got_partitions(&a));
    produce_range(brokers, 0, 400);
    read_records(brokers, 400);
    let mut b = spawn_weir(file_b);
    wait_until("B's partitions", 60, || got_partitions(&b));
    std::thread::sleep(Duration::from_secs(2));
    produce_range(brokers, 400, 800);
    read_records(brokers, 800);
    // A is killed while events flow: its partitions move to B with the
    // keyed state of their last save (or committed transaction).
    let producing = brokers.to_string();
    let producer = std::thread::spawn(move || {
        for from in (800..N).step_by(50) {
            produce_range(&producing, from, from + 50);
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    read_records(brokers, 1000);
    a.end_with(signal);
    let again = restart_a.then(|| spawn_weir(file_a));
    producer.join().unwrap();
    all_committed(brokers, &b);
    let records = read_records(brokers, N);
    if let Some(mut again) = again {
        again.end_with(libc::SIGTERM);
    }
    let log_b = b.end_with(libc::SIGTERM);
    (records, log_b)
}

/// Of each event, the copy read last (a key stays in one partition) is the
/// committed one (this broker shows aborted records too): its count must
/// be exact.
fn committed_counts_are_exact(records: Vec<(String, Option<u64>)>) {
    let mut last: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for (value, count) in records {
        last.insert(value, count);
    }
    assert_eq!(last.len(), N, "every input event is in the output");
    for (value, count) in &last {
        assert_eq!(*count, Some(expected_count(value)), "{value}");
    }
}

/// A copy of the pipeline `file` whose worker has the stable name
/// `instance` (`source.instance`).
fn with_instance(file: &std::path::Path, instance: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    let from = "group = \"weir-group\"\n";
    assert!(text.contains(from), "{text}");
    let to = format!("{from}instance = \"{instance}\"\n");
    let copy = file.with_file_name(format!("group-{instance}.toml"));
    std::fs::write(&copy, text.replace(from, &to)).unwrap();
    copy
}

#[test]
fn at_least_once_keyed_state_moves_with_its_partition_through_the_checkpoint_store() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = checkpointed(dir.path(), &tansu.brokers, "500ms");
    let (records, log_b) = one_of_two_ends(&tansu.brokers, (&file, &file), libc::SIGKILL, false);
    assert!(
        log_b.contains("restored a checkpoint"),
        "B took partitions over from their checkpoints:\n{log_b}"
    );
    // Events after A's last save are read again; each copy's count is
    // still the count at its position.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (value, count) in &records {
        assert_eq!(*count, Some(expected_count(value)), "{value}");
        *seen.entry(value).or_default() += 1;
    }
    assert_eq!(seen.len(), N, "every input event is in the output");
}

#[test]
fn exactly_once_keyed_state_moves_with_its_partition_through_the_changelog() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = exactly_once_file(dir.path(), &tansu.brokers);
    // A stops (SIGTERM): the transaction it has open commits first.
    let (records, log_b) = one_of_two_ends(&tansu.brokers, (&file, &file), libc::SIGTERM, false);
    assert!(
        log_b
            .lines()
            .any(|l| l.contains("rebuilt the keyed state from the changelog")
                && !l.contains("keys=0")),
        "B rebuilt the partitions it took over from their changelog:\n{log_b}"
    );
    committed_counts_are_exact(records);
}

#[test]
fn exactly_once_a_worker_killed_mid_transaction_and_restarted_leaves_every_count_exact() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    let file = exactly_once_file(dir.path(), &tansu.brokers);
    // A is killed (SIGKILL) with a transaction open, and comes back with
    // the same instance name, so the same transactional.id: starting,
    // it aborts the transaction it left open (a broker that never times
    // transactions out, like this one, would hold the group back for
    // good otherwise).
    let (a, b) = (with_instance(&file, "a"), with_instance(&file, "b"));
    let (records, log_b) = one_of_two_ends(&tansu.brokers, (&a, &b), libc::SIGKILL, true);
    assert!(
        log_b.contains("transactional_id=weir-group-weir-group-b"),
        "B's transactional id is stable:\n{log_b}"
    );
    committed_counts_are_exact(records);
}

#[test]
fn at_least_once_a_revoked_partition_is_saved_before_it_goes() {
    let tansu = Tansu::start();
    setup(&tansu.brokers);
    let dir = tempfile::tempdir().unwrap();
    // No save comes from the interval during the test: what B restores
    // was saved by A when the rebalance took the partitions away.
    let file = checkpointed(dir.path(), &tansu.brokers, "1h");
    let mut a = spawn_weir(&file);
    wait_until("A's partitions", 60, || got_partitions(&a));
    produce_range(&tansu.brokers, 0, 800);
    read_records(&tansu.brokers, 800);
    let mut b = spawn_weir(&file);
    wait_until("B's partitions", 60, || got_partitions(&b));
    produce_range(&tansu.brokers, 800, N);
    all_committed(&tansu.brokers, &b);
    let records = read_records(&tansu.brokers, N);
    let log_b = b.end_with(libc::SIGTERM);
    a.end_with(libc::SIGTERM);
    assert!(
        log_b.contains("restored a checkpoint"),
        "B took its partitions over from the checkpoints A saved on revoke:\n{log_b}"
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (value, count) in &records {
        assert_eq!(
            *count,
            Some(expected_count(value)),
            "{value}: B went on from A's counts\n{log_b}"
        );
        *seen.entry(value).or_default() += 1;
    }
    assert_eq!(seen.len(), N, "every input event is in the output");
}

/// A changelog written in many produce batches is read to its last record,
/// even where the broker lists an end short of it (Tansu does, by one
/// record per batch).
#[test]
fn a_changelog_written_in_many_batches_is_restored_to_its_last_record() {
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    use weir::checkpoint::changelog::{position_headers, record_key};
    let tansu = Tansu::start();
    tokio_rt().block_on(async {
        let changelog = orders_changelog(&tansu.brokers).await;
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &tansu.brokers)
            .create()
            .unwrap();
        let topic = changelog.topic("orders");
        // 20 batches of 100 records; the last batch sets every key again.
        for batch in 0..20u32 {
            let mut sent = Vec::new();
            for i in 0..100u32 {
                let k = if batch == 19 { i } else { batch * 100 + i };
                let key = record_key("count", format!("k{k}").as_bytes());
                let value = format!("{batch}");
                let headers = position_headers(&value);
                let record = FutureRecord::to(&topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value)
                    .headers(headers);
                sent.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
            }
            producer.flush(Duration::from_secs(10)).unwrap();
            for s in sent {
                s.await.unwrap().unwrap();
            }
        }
        let restored = changelog.restore("orders", 0, u64::MAX).await.unwrap();
        let got: BTreeMap<_, _> = restored["count"].iter().cloned().collect();
        assert_eq!(got.len(), 1900, "every key of the changelog");
        for k in 0..100 {
            let key = format!("k{k}").into_bytes();
            assert_eq!(got[&key], b"19".to_vec(), "the last value of k{k}");
        }
        assert_eq!(got[&b"k1899".to_vec()], b"18".to_vec());
        // Records of a position the partition resumes from are not read.
        let before = changelog.restore("orders", 0, 19).await.unwrap();
        let got: BTreeMap<_, _> = before["count"].iter().cloned().collect();
        assert_eq!(got[&b"k0".to_vec()], b"0".to_vec());
    });
}

#[test]
fn a_changelog_with_a_transaction_left_open_is_restored_to_its_committed_records() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use weir::checkpoint::changelog::{position_headers, record_key};
    let tansu = Tansu::start();
    tokio_rt().block_on(async {
        let changelog = orders_changelog(&tansu.brokers).await;
        let topic = changelog.topic("orders");
        let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &tansu.brokers)
            .set("transactional.id", "a-worker-killed-mid-way")
            .create()
            .unwrap();
        let wait = Duration::from_secs(10);
        producer.init_transactions(wait).unwrap();
        // A committed batch at position 9 sets k0..k9 to 1; the next, at
        // position 10, sets k0..k4 to 2 in a transaction never finished
        // (its worker was killed), and the partition resumes from 10.
        for (position, keys, commit) in [("9", 0..10, true), ("10", 0..5, false)] {
            producer.begin_transaction().unwrap();
            for k in keys {
                let key = record_key("count", format!("k{k}").as_bytes());
                let value = if commit { "1" } else { "2" };
                let record = BaseRecord::to(&topic)
                    .partition(0)
                    .key(&key)
                    .payload(value)
                    .headers(position_headers(position));
                producer.send(record).map_err(|(e, _)| e).unwrap();
            }
            producer.flush(wait).unwrap();
            if commit {
                producer.commit_transaction(wait).unwrap();
            }
        }
        let restored = changelog.restore("orders", 0, 10).await.unwrap();
        let got: BTreeMap<_, _> = restored["count"].iter().cloned().collect();
        assert_eq!(got.len(), 10, "every committed key: {got:?}");
        assert!(got.values().all(|v| v == b"1"), "{got:?}");
        drop(producer);
    });
}
