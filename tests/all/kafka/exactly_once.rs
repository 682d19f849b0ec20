//! Exactly-once mode on a real Kafka-protocol broker: the consumed offsets
//! are committed in the transaction that holds the output, and a
//! transaction that fails before its commit is read and processed again.

use crate::support::brokers::Tansu;
use crate::support::kafka::{
    committed, consume, create_topics, kafka_pipeline, produce, read_until,
};
use crate::support::kafka::{produce_range as group_produce, setup, PARTITIONS};
use crate::support::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use weir::config::Delivery;
use weir::pipeline::reload::Artifact;
use weir::pipeline::{Faults, StartOptions};

/// Every record of `topic` now on the broker: read until none came for two
/// seconds (transaction markers take offsets too, so the watermarks do not
/// count records).
fn everything(brokers: &str, topic: &str, partitions: i32) -> Vec<String> {
    records(brokers, topic, partitions)
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// [`everything`], with the records' headers.
fn records(brokers: &str, topic: &str, partitions: i32) -> Vec<crate::support::kafka::Record> {
    read_until(brokers, topic, partitions, |_, idle| {
        idle > Duration::from_secs(2)
    })
}

/// Runs `p` in exactly-once mode with `faults` until `done` returns, then
/// stops it gracefully; every failure `faults` asked for must have
/// happened.
fn run_until(
    p: &weir::config::Pipeline,
    faults: &Faults,
    done: impl FnOnce() + Send + 'static,
) -> weir::pipeline::RunReport {
    let options = StartOptions {
        faults: faults.clone(),
        ..StartOptions::default()
    };
    let report = tokio_rt()
        .block_on(async {
            let run = harness::start(p, options).await;
            harness::stop_when_done(run, done).await
        })
        .unwrap();
    assert_eq!(
        faults.abort_before_commit.load(Ordering::SeqCst),
        0,
        "every injected failure happened"
    );
    report
}

#[test]
fn transactions_commit_offsets_with_the_output_and_an_aborted_one_is_read_again() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers.clone();
    tokio_rt().block_on(create_topics(
        &brokers,
        &[("in", 3), ("out", 3), ("dlq", 1)],
    ));
    let input: Vec<(i32, String)> = (0..180)
        .map(|i| {
            let p = i % 3;
            let v = if i == 100 {
                "poison".to_string()
            } else {
                format!("e{i}")
            };
            (p, v)
        })
        .collect();
    tokio_rt().block_on(produce(&brokers, "in", &input));

    let p = kafka_pipeline(
        &brokers,
        "fixtures/poison.core.wasm",
        r#"delivery = "exactly-once""#,
    );
    assert_eq!(p.delivery, Delivery::ExactlyOnce);
    // The first two transactions fail just before their commit.
    let faults = Faults::default();
    faults.abort_before_commit.store(2, Ordering::SeqCst);
    let b = brokers.clone();
    let report = run_until(&p, &faults, move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        while committed(&b, "weir", "in", 3) != [60, 60, 60] {
            assert!(Instant::now() < deadline, "offsets never reached the end");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Counted once each, on commit: aborted copies are not counted.
    assert_eq!(report.events_out, 179);
    assert_eq!(report.dead_letters, 1);
    assert!(
        report.events_in > 180,
        "the aborted events were read again: {} reads",
        report.events_in
    );

    // The committed offsets sit at the end of every partition: they were
    // stored by the transactions (this consumer never commits itself).
    assert_eq!(committed(&brokers, "weir", "in", 3), [60, 60, 60]);

    // Nothing lost: every good event is in the output. The broker under
    // test keeps aborted records visible, so copies from the aborted
    // transactions may show up as well; a read_committed consumer of a
    // Kafka broker skips them.
    let out = everything(&brokers, "out", 3);
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for v in &out {
        *copies.entry(v.clone()).or_default() += 1;
    }
    let expected: Vec<String> = input
        .iter()
        .map(|(_, v)| v.clone())
        .filter(|v| v != "poison")
        .collect();
    for v in &expected {
        assert!(copies.contains_key(v), "{v} is missing from the output");
    }
    assert_eq!(copies.len(), expected.len(), "nothing but the input");
    eprintln!(
        "exactly-once: {} records in the output for {} events ({} from aborted transactions)",
        out.len(),
        expected.len(),
        out.len() - expected.len()
    );
    let dlq = consume(&brokers, "dlq", 1, 1);
    assert_eq!(dlq[0].0, "poison");
    assert_eq!(dlq[0].1["weir-error-kind"], "trap");
}

#[test]
fn exactly_once_is_refused_unless_kafka_to_kafka() {
    let err = weir::config::Pipeline::parse(
        std::path::Path::new("eo.toml"),
        r#"
        name = "eo"
        delivery = "exactly-once"
        sink = { type = "stdout" }
        [source]
        type = "kafka"
        brokers = "127.0.0.1:9092"
        group = "g"
        topics = ["t"]
        "#,
    )
    .expect_err("stdout cannot take part in a transaction");
    let p = err
        .problems
        .iter()
        .find(|p| p.key == "delivery")
        .expect("a problem at `delivery`");
    assert!(
        p.message.contains(
            "this pipeline has a kafka source, a stdout sink and a stderr dead-letter sink"
        ),
        "{}",
        p.message
    );
    assert!(p.hint.contains("at-least-once"), "{}", p.hint);

    let err = weir::config::Pipeline::parse(
        std::path::Path::new("eo.toml"),
        r#"
        name = "eo"
        delivery = "at-most-twice"
        sink = { type = "stdout" }
        source = { type = "stdin" }
        "#,
    )
    .expect_err("an unknown mode");
    assert!(err
        .problems
        .iter()
        .any(|p| p.key == "delivery" && p.message.contains("unknown delivery mode")));
}

#[test]
fn after_an_abort_a_stateful_stage_resumes_from_its_last_committed_state() {
    resumes_after_an_abort("counter.wasm");
}

#[test]
fn after_an_abort_keyed_state_resumes_from_its_last_committed_state() {
    resumes_after_an_abort("keyed_counter.wasm");
}

/// A counter (`plugin`) counts on from the state of the last committed
/// transaction after an abort.
fn resumes_after_an_abort(plugin: &str) {
    let tansu = Tansu::start();
    let brokers = tansu.brokers.clone();
    // 4 partitions; event i has the key k<i % 16> and goes to partition
    // i % 4, so the counter stamps it with i / 16 + 1.
    setup(&brokers);
    tokio_rt().block_on(create_topics(&brokers, &[("dlq", 1)]));
    const HALF: usize = 320;
    group_produce(&brokers, 0, HALF);
    let p = kafka_pipeline(&brokers, plugin, r#"delivery = "exactly-once""#);
    let faults = Faults::default();
    let (b, f) = (brokers.clone(), faults.clone());
    run_until(&p, &faults, move || {
        let committed_to = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(90);
            while committed(&b, "weir", "in", PARTITIONS).iter().sum::<i64>() != n as i64 {
                assert!(Instant::now() < deadline, "offsets never reached {n}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        // The first half is committed with the counts it reached; the
        // transaction that holds the first events after it fails.
        committed_to(HALF);
        f.abort_before_commit.store(1, Ordering::SeqCst);
        group_produce(&b, HALF, 2 * HALF);
        committed_to(2 * HALF);
    });

    // The broker under test shows aborted records too; of each event, the
    // copy read last (a key stays in one partition) is the committed one.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (value, headers) in records(&brokers, "out", PARTITIONS) {
        last.insert(value, headers["count"].parse().unwrap());
    }
    assert_eq!(last.len(), 2 * HALF, "every event is in the output");
    for i in 0..2 * HALF {
        assert_eq!(
            last[&format!("e{i}")],
            (i / 16 + 1) as u64,
            "{plugin}: e{i}: the counts go on from the committed state after the abort"
        );
    }
}

#[test]
fn a_version_swapped_in_before_an_abort_still_runs_after_it() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers.clone();
    tokio_rt().block_on(create_topics(
        &brokers,
        &[("in", 3), ("out", 3), ("dlq", 1)],
    ));
    let first: Vec<(i32, String)> = (0..60).map(|i| (i % 3, format!("e{i}"))).collect();
    tokio_rt().block_on(produce(&brokers, "in", &first));
    // The first version dead-letters "poison"; the identity swapped in
    // passes it on.
    let p = kafka_pipeline(
        &brokers,
        "fixtures/poison.core.wasm",
        r#"delivery = "exactly-once""#,
    );
    let faults = Faults::default();
    let options = StartOptions {
        faults: faults.clone(),
        ..StartOptions::default()
    };
    let committed_to = |b: String, n: i64| {
        move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            while committed(&b, "weir", "in", 3) != [n, n, n] {
                assert!(Instant::now() < deadline, "offsets never reached {n}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let report = tokio_rt()
        .block_on(async {
            let run = harness::start(&p, options).await;
            tokio::task::spawn_blocking(committed_to(brokers.clone(), 20))
                .await
                .unwrap();
            run.reloader()
                .deploy("s", Artifact::Path(plugin_path("identity.core.wasm")))
                .await
                .expect("the new version runs");
            // The transaction holding the next events fails; the run starts
            // over with a new worker pool.
            faults.abort_before_commit.store(1, Ordering::SeqCst);
            let second: Vec<(i32, String)> = (60..120)
                .map(|i| {
                    let v = if i % 20 == 0 {
                        "poison".to_string()
                    } else {
                        format!("e{i}")
                    };
                    (i % 3, v)
                })
                .collect();
            produce(&brokers, "in", &second).await;
            harness::stop_when_done(run, committed_to(brokers.clone(), 40)).await
        })
        .unwrap();
    assert_eq!(
        faults.abort_before_commit.load(Ordering::SeqCst),
        0,
        "the abort happened"
    );
    assert_eq!(
        (report.events_out, report.dead_letters),
        (120, 0),
        "after the abort, the version swapped in ran: nothing was dead-lettered"
    );
    let out = everything(&brokers, "out", 3);
    assert!(
        out.iter().filter(|v| *v == "poison").count() >= 3,
        "the poison events were passed on"
    );
}
