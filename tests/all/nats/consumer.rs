//! The durable JetStream consumer weir reads from, when it exists before
//! weir starts: weir brings it to the pipeline's settings, or refuses it.

use crate::support::nats::{
    consumer_info, js, js_pipeline_toml, publish, run_until_counts, server_with_streams,
};
use crate::support::*;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use std::time::Duration;
use weir::pipeline::StartOptions;

/// Makes the durable consumer `weir` on `IN` the way an operator might have.
async fn existing_consumer(url: &str, ack_policy: AckPolicy) {
    js(url)
        .await
        .get_stream("IN")
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("weir".into()),
            ack_policy,
            ack_wait: Duration::from_secs(30),
            max_deliver: 7,
            max_ack_pending: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
}

#[test]
fn an_existing_consumer_takes_the_pipelines_settings() {
    let (_nats, url, rt) = server_with_streams();
    rt.block_on(existing_consumer(&url, AckPolicy::Explicit));
    rt.block_on(publish(
        &url,
        (0..10).map(|i| (format!("in.{i}"), format!("v{i}"))),
    ));

    // ack_wait = "2s" and max_deliver = 3 in the file; max_ack_pending is
    // left to its default.
    let p = pipeline(&js_pipeline_toml(&url, "identity.wasm"));
    let report = run_until_counts(&rt, &p, &url, &[("OUT", 10)]);
    assert_eq!(report.events_out, 10);

    let info = rt.block_on(consumer_info(&url));
    let c = &info.config;
    assert_eq!(
        (c.ack_wait, c.max_deliver, c.max_ack_pending),
        (Duration::from_secs(2), 3, 20_000),
        "the pipeline's settings, not the ones the consumer was made with"
    );
    assert_eq!(info.num_ack_pending, 0, "every message acknowledged");
}

#[test]
fn an_existing_consumer_without_explicit_acks_is_refused() {
    let (_nats, url, rt) = server_with_streams();
    rt.block_on(existing_consumer(&url, AckPolicy::None));

    let p = pipeline(&js_pipeline_toml(&url, "identity.wasm"));
    let err = rt.block_on(async {
        let run = harness::start(&p, StartOptions::default()).await;
        run.finished().await.unwrap_err().to_string()
    });
    assert!(
        err.contains("jetstream consumer weir") && err.contains("explicit acks"),
        "{err}"
    );
}
