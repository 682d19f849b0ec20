//! Kafka source and sink: librdkafka's mock cluster for the fast path, a
//! Tansu broker process for commits and restarts.

mod checkpoint;
mod eos_group;
mod exactly_once;
mod group;
mod keyed;
mod outage;
mod stall;

use crate::support::brokers::Tansu;
use crate::support::kafka::*;
use crate::support::*;
use weir::pipeline::{RunReport, StartOptions};

/// Runs the pipeline until `done` says so, then stops it gracefully.
fn run_until(p: &weir::config::Pipeline, done: impl FnOnce() + Send + 'static) -> RunReport {
    tokio_rt()
        .block_on(async {
            let run = harness::start(p, StartOptions::default()).await;
            harness::stop_when_done(run, done).await
        })
        .unwrap()
}

#[test]
fn mock_cluster_kafka_to_kafka_with_dead_letters_and_commits() {
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    let brokers = mock.bootstrap_servers();
    for (t, n) in [("in", 3), ("out", 3), ("dlq", 1)] {
        mock.create_topic(t, n, 1).unwrap();
    }
    let mut input = Vec::new();
    for i in 0..60 {
        for p in 0..3 {
            let v = match (p, i) {
                (1, 10) => "poison".to_string(),
                (2, 20) => "reject".to_string(),
                _ => format!("p{p}-{i}"),
            };
            input.push((p, v));
        }
    }
    tokio_rt().block_on(produce(&brokers, "in", &input));
    let p = kafka_pipeline(&brokers, "fixtures/poison.core.wasm", "");
    let b = brokers.clone();
    let report = run_until(&p, move || {
        consume(&b, "out", 3, 178);
        consume(&b, "dlq", 1, 2);
    });
    assert_eq!(report.events_out, 178);
    assert_eq!(report.dead_letters, 2);

    let mut out: Vec<String> = consume(&brokers, "out", 3, 178)
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    out.sort();
    let mut expected: Vec<String> = input
        .iter()
        .map(|(_, v)| v.clone())
        .filter(|v| v != "poison" && v != "reject")
        .collect();
    expected.sort();
    assert_eq!(out, expected, "every good event once");

    let dlq = consume(&brokers, "dlq", 1, 2);
    let poison = dlq
        .iter()
        .find(|(v, _)| v == "poison")
        .expect("poison dead-lettered");
    assert_eq!(poison.1["weir-error-kind"], "trap");
    assert_eq!(poison.1["weir-stage"], "s");
    assert_eq!(
        poison.1["weir-source-position"], "10",
        "the Kafka offset of the poison event"
    );
    assert!(poison.1["weir-reason"].contains("poisoned event"));
    let reject = dlq
        .iter()
        .find(|(v, _)| v == "reject")
        .expect("reject dead-lettered");
    assert_eq!(reject.1["weir-error-kind"], "rejected");

    assert_eq!(
        committed(&brokers, "weir", "in", 3),
        [60, 60, 60],
        "offsets committed past the dead letters"
    );
}

#[test]
fn tansu_commits_survive_a_restart_and_nothing_is_read_twice() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers.clone();
    tokio_rt().block_on(create_topics(
        &brokers,
        &[("in", 3), ("out", 3), ("dlq", 1)],
    ));
    let first: Vec<(i32, String)> = (0..90).map(|i| (i % 3, format!("first-{i}"))).collect();
    tokio_rt().block_on(produce(&brokers, "in", &first));

    let p = kafka_pipeline(&brokers, "identity.wasm", "");
    let b = brokers.clone();
    let report = run_until(&p, move || {
        consume(&b, "out", 3, 90);
    });
    assert_eq!(report.events_out, 90);
    assert_eq!(committed(&brokers, "weir", "in", 3), [30, 30, 30]);

    // A restarted worker of the same group resumes after the commits.
    let second: Vec<(i32, String)> = (0..30).map(|i| (i % 3, format!("second-{i}"))).collect();
    tokio_rt().block_on(produce(&brokers, "in", &second));
    let b = brokers.clone();
    let report = run_until(&p, move || {
        consume(&b, "out", 3, 120);
    });
    assert_eq!(report.events_in, 30, "only the new events are read");
    let mut out: Vec<String> = consume(&brokers, "out", 3, 120)
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    out.sort();
    out.dedup();
    assert_eq!(out.len(), 120, "no duplicates");
    assert_eq!(committed(&brokers, "weir", "in", 3), [40, 40, 40]);
}

#[test]
fn tls_and_sasl_settings_pass_through_to_librdkafka() {
    // SAFETY: a name no other test uses.
    unsafe { std::env::set_var("WEIR_TEST_KAFKA_PASSWORD", "s3cret") };
    let p = pipeline(
        r#"
        name = "secure"
        sink = { type = "stdout" }
        [source]
        type = "kafka"
        brokers = "127.0.0.1:9093"
        group = "g"
        topics = ["t"]
        properties = { "security.protocol" = "SASL_SSL", "sasl.mechanism" = "SCRAM-SHA-256", "sasl.username" = "weir", "sasl.password" = "${WEIR_TEST_KAFKA_PASSWORD}" }
        "#,
    );
    let weir::config::SourceConfig::Kafka(k) = &p.source else {
        panic!("a kafka source")
    };
    assert!(
        !format!("{p:?}").contains("s3cret"),
        "the secret is not printed"
    );
    // librdkafka validates every property when the client is created.
    let rt = tokio_rt();
    let _in_runtime = rt.enter();
    weir::source::KafkaSource::new(k).unwrap_or_else(|e| panic!("{e}"));
    let mut bad = k.clone();
    bad.properties
        .0
        .push(("security.protocol".into(), "CARRIER_PIGEON".into()));
    let err = weir::source::KafkaSource::new(&bad)
        .err()
        .expect("librdkafka refuses an unknown protocol")
        .to_string();
    assert!(err.contains("security.protocol"), "{err}");
}
