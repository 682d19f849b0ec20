//! NATS and JetStream against a real nats-server 2.15 per test.

mod consumer;
mod in_progress;
mod recovery;
mod stall;

use crate::support::brokers::NatsServer;
use crate::support::nats::*;
use crate::support::*;
use async_nats::jetstream::{self};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use weir::pipeline::StartOptions;

#[test]
fn jetstream_to_jetstream_with_a_dead_letter_and_everything_acked() {
    let (_nats, url, rt) = server_with_streams();
    let values: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("in.{}", i % 4),
                if i == 42 {
                    "poison".into()
                } else {
                    format!("v{i}")
                },
            )
        })
        .collect();
    rt.block_on(publish(&url, values.clone()));

    let p = pipeline(&js_pipeline_toml(&url, "fixtures/poison.wasm"));
    let report = run_until_counts(&rt, &p, &url, &[("OUT", 99), ("DLQ", 1)]);
    assert_eq!((report.events_out, report.dead_letters), (99, 1));
    let out: BTreeSet<String> = rt
        .block_on(read_stream(&url, "OUT"))
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let expected: BTreeSet<String> = values
        .iter()
        .map(|(_, v)| v.clone())
        .filter(|v| v != "poison")
        .collect();
    assert_eq!(out, expected);
    let dlq = rt.block_on(read_stream(&url, "DLQ"));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].0, "poison");
    let header = |k: &str| {
        dlq[0]
            .1
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("weir-error-kind"), "trap");
    assert_eq!(
        header("Nats-Msg-Id"),
        "IN:43",
        "the stream and sequence of the poison event"
    );
    assert_eq!(header("weir-source-topic"), "in.2");

    let info = rt.block_on(consumer_info(&url));
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (0, 0),
        "every message acknowledged"
    );
}

#[test]
fn core_nats_queue_group_to_nats() {
    let nats = NatsServer::start();
    let url = nats.url();
    let p = pipeline(&format!(
        r#"
        name = "core"
        source = {{ type = "nats", url = "{url}", subject = "orders.>", shards = 2 }}
        sink = {{ type = "nats", url = "{url}", subject = "enriched" }}
        batch = {{ max_events = 10, linger = "2ms" }}
        [[stage]]
        name = "enrich"
        plugin = "{{dist}}/enrich.core.wasm"
        "#
    ));
    let rt = tokio_rt();
    let got = rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut sub = client.subscribe("enriched").await.unwrap();
        let run = harness::start(&p, StartOptions::default()).await;
        // Core NATS delivers only to current subscribers: wait for weir's.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..20 {
            client
                .publish(
                    format!("orders.{}", i % 2),
                    format!("{{\"amount\": {i}}}").into(),
                )
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 20 {
            let m = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("output arrives")
                .unwrap();
            got.push(serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap());
        }
        run.stop_and_wait().await.unwrap();
        got
    });
    let mut cents: Vec<i64> = got
        .iter()
        .map(|v| v["amount_cents"].as_i64().unwrap())
        .collect();
    cents.sort();
    assert_eq!(cents, (0..20).map(|i| i * 100).collect::<Vec<_>>());
    assert!(got.iter().all(|v| v["currency"] == "EUR"));
}

#[test]
fn the_last_allowed_delivery_goes_to_the_dead_letter_stream() {
    let (_nats, url, rt) = server_with_streams();
    rt.block_on(publish(
        &url,
        (0..5).map(|i| ("in.a".to_string(), format!("m{i}"))),
    ));
    // Another client takes the first delivery of every message and never
    // acknowledges it: weir then sees each message's second and last one.
    rt.block_on(async {
        let stream = js(&url).await.get_stream("IN").await.unwrap();
        let consumer = stream
            .get_or_create_consumer(
                "weir",
                jetstream::consumer::pull::Config {
                    durable_name: Some("weir".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(1),
                    max_deliver: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut batch = consumer.fetch().max_messages(5).messages().await.unwrap();
        let mut n = 0;
        while let Some(m) = batch.next().await {
            m.unwrap();
            n += 1;
        }
        assert_eq!(n, 5);
    });
    std::thread::sleep(Duration::from_millis(1200));
    let p = pipeline(
        &js_pipeline_toml(&url, "identity.wasm")
            .replace("ack_wait = \"2s\"", "ack_wait = \"1s\"")
            .replace("max_deliver = 3", "max_deliver = 2"),
    );
    let report = run_until_counts(&rt, &p, &url, &[("DLQ", 5)]);
    assert_eq!((report.events_out, report.dead_letters), (0, 5));
    let dlq = rt.block_on(read_stream(&url, "DLQ"));
    let reason = dlq[0]
        .1
        .iter()
        .find(|(k, _)| k == "weir-reason")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        reason.contains("delivered 2 times without an acknowledgement (max_deliver 2)"),
        "{reason}"
    );
    let kind = dlq[0]
        .1
        .iter()
        .find(|(k, _)| k == "weir-error-kind")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(kind, "max_deliver");
    let info = rt.block_on(consumer_info(&url));
    assert_eq!(
        info.num_ack_pending, 0,
        "dead-lettered messages are acknowledged"
    );
}
