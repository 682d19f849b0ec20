//! NATS and JetStream against a real nats-server 2.15 per test.

use crate::support::brokers::NatsServer;
use crate::support::*;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use weir::pipeline::{prepare_stages, run, Endpoints, RunCounters, RunReport};

pub(crate) async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

pub(crate) async fn create_streams(url: &str, streams: &[(&str, &str)]) {
    let js = js(url).await;
    for (name, subject) in streams {
        js.create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// A nats-server with the streams `IN` (`in.>`), `OUT` (`out.>`) and `DLQ`
/// (`dlq`), its URL, and a runtime to drive clients.
pub(crate) fn server_with_streams() -> (NatsServer, String, tokio::runtime::Runtime) {
    let nats = NatsServer::start();
    let url = nats.url();
    let rt = tokio_rt();
    rt.block_on(create_streams(
        &url,
        &[("IN", "in.>"), ("OUT", "out.>"), ("DLQ", "dlq")],
    ));
    (nats, url, rt)
}

/// The source and sinks `p` names.
pub(crate) async fn endpoints(p: &weir::config::Pipeline) -> Endpoints {
    Endpoints {
        source: weir::source::build(&p.source).await.unwrap(),
        sink: weir::sink::build(&p.sink).await.unwrap(),
        dead_letter: weir::sink::build(&p.dead_letter).await.unwrap(),
    }
}

pub(crate) async fn publish(url: &str, values: impl IntoIterator<Item = (String, String)>) {
    let js = js(url).await;
    for (subject, value) in values {
        js.publish(subject, value.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Every message currently in `stream`: (value, headers as text).
pub(crate) async fn read_stream(url: &str, name: &str) -> Vec<(String, Vec<(String, String)>)> {
    let js = js(url).await;
    let mut s = js.get_stream(name).await.unwrap();
    let n = s.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    for seq in 1..=n {
        if let Ok(m) = s.get_raw_message(seq).await {
            let headers = m
                .headers
                .iter()
                .flat_map(|(k, vs)| {
                    vs.iter()
                        .map(move |v| (k.to_string(), v.as_str().to_string()))
                })
                .collect();
            out.push((String::from_utf8_lossy(&m.payload).into_owned(), headers));
        }
    }
    out
}

pub(crate) async fn count(url: &str, name: &str) -> u64 {
    js(url)
        .await
        .get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

/// The state of the durable consumer `weir` on the stream `IN`.
pub(crate) async fn consumer_info(url: &str) -> jetstream::consumer::Info {
    js(url)
        .await
        .get_stream("IN")
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>("weir")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone()
}

/// Runs `p` in this process until every `(stream, n)` holds at least `n`
/// messages, lets the last acks go out, then stops it gracefully.
pub(crate) fn run_until_counts(
    rt: &tokio::runtime::Runtime,
    p: &weir::config::Pipeline,
    url: &str,
    want: &'static [(&'static str, u64)],
) -> RunReport {
    let stages = prepare_stages(&runtime(), p).unwrap();
    rt.block_on(async {
        let endpoints = endpoints(p).await;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let url = url.to_string();
        tokio::spawn(async move {
            loop {
                let mut reached = true;
                for (stream, n) in want {
                    reached &= count(&url, stream).await >= *n;
                }
                if reached {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = stop_tx.send(true);
        });
        run(
            runtime(),
            p,
            stages,
            endpoints,
            stop,
            Arc::new(RunCounters::default()),
        )
        .await
        .unwrap()
    })
}

pub(crate) fn js_pipeline_toml(url: &str, stage: &str) -> String {
    format!(
        r#"
        name = "js"
        [source]
        type = "jetstream"
        url = "{url}"
        stream = "IN"
        consumer = "weir"
        ack_wait = "2s"
        max_deliver = 3
        [batch]
        max_events = 20
        linger = "5ms"
        [[stage]]
        name = "s"
        plugin = "{{dist}}/{stage}"
        [sink]
        type = "jetstream"
        url = "{url}"
        subject = "out.all"
        [dead_letter]
        type = "jetstream"
        url = "{url}"
        subject = "dlq"
        "#
    )
}

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
    let stages = prepare_stages(&runtime(), &p).unwrap();
    let rt = tokio_rt();
    let got = rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut sub = client.subscribe("enriched").await.unwrap();
        let endpoints = endpoints(&p).await;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let running = tokio::spawn({
            let p = p.clone();
            async move {
                run(
                    runtime(),
                    &p,
                    stages,
                    endpoints,
                    stop,
                    Arc::new(RunCounters::default()),
                )
                .await
            }
        });
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
        let _ = stop_tx.send(true);
        running.await.unwrap().unwrap();
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
