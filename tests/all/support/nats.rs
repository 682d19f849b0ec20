//! NATS helpers: a server with the test streams, publishing, reading and
//! counting streams, consumer state, and the pipelines the NATS tests run.

use super::brokers::NatsServer;
use super::*;
use async_nats::jetstream::{self, stream};
use std::time::Duration;
use weir::pipeline::{RunReport, StartOptions};

pub async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

pub async fn create_streams(url: &str, streams: &[(&str, &str)]) {
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
pub fn server_with_streams() -> (NatsServer, String, tokio::runtime::Runtime) {
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
pub async fn publish(url: &str, values: impl IntoIterator<Item = (String, String)>) {
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
pub async fn read_stream(url: &str, name: &str) -> Vec<(String, Vec<(String, String)>)> {
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

pub async fn count(url: &str, name: &str) -> u64 {
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
pub async fn consumer_info(url: &str) -> jetstream::consumer::Info {
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
pub fn run_until_counts(
    rt: &tokio::runtime::Runtime,
    p: &weir::config::Pipeline,
    url: &str,
    want: &'static [(&'static str, u64)],
) -> RunReport {
    rt.block_on(async {
        let run = harness::start(p, StartOptions::default()).await;
        harness::stop_when(run, async {
            loop {
                let mut reached = true;
                for (stream, n) in want {
                    reached &= count(url, stream).await >= *n;
                }
                if reached {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // The last acks go out.
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await
        .unwrap()
    })
}

pub fn js_pipeline_toml(url: &str, stage: &str) -> String {
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

pub fn spin_pipeline(
    dir: &std::path::Path,
    endpoints: &str,
    stage_keys: &str,
) -> std::path::PathBuf {
    let spin = dir.join("spin.wasm");
    std::fs::write(
        &spin,
        wat::parse_file(root().join("tests/fixtures/spin.wat")).unwrap(),
    )
    .unwrap();
    let file = dir.join("slow.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"slow\"\n{endpoints}\nbatch = {{ max_events = 1, linger = \"1ms\" }}\n\
             workers = {{ threads = 1 }}\n[[stage]]\nname = \"spin\"\nplugin = \"{}\"\n{stage_keys}\n",
            spin.display()
        ),
    )
    .unwrap();
    file
}
