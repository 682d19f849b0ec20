//! A JetStream message that weir holds longer than `ack_wait` (behind a
//! slow stage here) is reported in progress, so the server does not deliver
//! it again while weir still works on it, and so is every message weir read
//! ahead of the pipeline; and a graceful stop acknowledges every message
//! weir finished before it exits.

use crate::support::nats::spin_pipeline;
use crate::support::nats::{consumer_info, count, js, publish, server_with_streams};
use crate::support::*;
use std::time::{Duration, Instant};

/// A JetStream source with `source_keys`, and JetStream sinks.
fn jetstream_endpoints(url: &str, source_keys: &str) -> String {
    format!(
        r#"
        source = {{ type = "jetstream", url = "{url}", stream = "IN", consumer = "weir", {source_keys} }}
        sink = {{ type = "jetstream", url = "{url}", subject = "out.all" }}
        dead_letter = {{ type = "jetstream", url = "{url}", subject = "dlq" }}
        "#
    )
}

/// A nats-server with the test streams, `n` events of `size` bytes in `IN`
/// over three subjects, and a pipeline file (in the returned directory)
/// that reads them through the spin stage with `source_keys` and
/// `stage_keys`.
fn slow_jetstream(
    n: usize,
    size: usize,
    source_keys: &str,
    stage_keys: &str,
) -> (
    crate::support::brokers::NatsServer,
    String,
    tokio::runtime::Runtime,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let (nats, url, rt) = server_with_streams();
    let value = "x".repeat(size);
    rt.block_on(publish(
        &url,
        (0..n).map(|i| (format!("in.{}", i % 3), value.clone())),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = spin_pipeline(
        dir.path(),
        &jetstream_endpoints(&url, source_keys),
        stage_keys,
    );
    (nats, url, rt, dir, file)
}

/// weir's durable consumer, once it exists.
fn weirs_consumer(
    rt: &tokio::runtime::Runtime,
    url: &str,
) -> Option<async_nats::jetstream::consumer::Info> {
    rt.block_on(async {
        let stream = js(url).await.get_stream("IN").await.unwrap();
        stream.consumer_info("weir").await.ok()
    })
}

/// Runs `n` events of `size` bytes through the spin stage with
/// `source_keys` and `stage_keys` until the server has every one
/// acknowledged, stops weir, and checks that the server delivered each
/// exactly once (a second delivery would be the last one, `max_deliver =
/// 2`, which goes to the dead-letter stream) and that the run outlasted
/// `ack_wait` several times over.
fn assert_each_delivered_once(n: usize, size: usize, source_keys: &str, stage_keys: &str) {
    let (_nats, url, rt, _dir, file) = slow_jetstream(n, size, source_keys, stage_keys);
    let started = Instant::now();
    let mut w = spawn_weir(&file);
    wait_until("weir's consumer", 30, || {
        weirs_consumer(&rt, &url).is_some()
    });
    wait_until("every message acknowledged", 120, || {
        let info = rt.block_on(consumer_info(&url));
        info.num_pending == 0 && info.num_ack_pending == 0
    });
    let took = started.elapsed();
    w.signal(libc::SIGTERM);
    let (status, log) = w.wait();
    assert!(status.success(), "{log}");
    assert_eq!(
        rt.block_on(count(&url, "DLQ")),
        0,
        "no message was delivered a second time:\n{log}"
    );
    let info = rt.block_on(consumer_info(&url));
    assert_eq!(info.delivered.stream_sequence, n as u64);
    assert_eq!(
        info.delivered.consumer_sequence, n as u64,
        "one delivery per message"
    );
    assert!(
        took > Duration::from_secs(3),
        "the run outlasted ack_wait several times over (took {took:?}), or it proves nothing"
    );
}

#[test]
fn messages_held_longer_than_ack_wait_are_not_redelivered() {
    // Each event (16 kB) makes the stage spin about sixteen million times
    // (some 8 to 15 ms), one event per batch on one thread: the last events
    // wait in weir for many times ack_wait.
    assert_each_delivered_once(
        600,
        16_000,
        r#"ack_wait = "1s", max_deliver = 2"#,
        "fuel_per_event = 1000000000\ntimeout = \"5s\"",
    );
}

#[test]
fn messages_read_ahead_are_kept_in_progress_however_many_there_are() {
    // About 2 ms per event, one event per batch, 1000 messages read ahead:
    // two seconds of work waiting behind the pipeline. When the client
    // pulled them and weir read them only as the pipeline took them, they
    // waited unread (and so unreported) for longer than ack_wait, and some
    // 200 of the 3000 went to the dead-letter stream.
    assert_each_delivered_once(
        3000,
        2000,
        r#"ack_wait = "1s", max_deliver = 2, pull_batch = 1000"#,
        "fuel_per_event = 1000000000",
    );
}

#[test]
fn a_graceful_stop_acknowledges_everything_it_finished() {
    const N: usize = 3000;
    let (_nats, url, rt, _dir, file) = slow_jetstream(
        N,
        1000,
        r#"ack_wait = "30s""#,
        "fuel_per_event = 1000000000",
    );
    let mut w = spawn_weir(&file);
    wait_until("the first acknowledgements", 60, || {
        weirs_consumer(&rt, &url).is_some_and(|info| info.ack_floor.stream_sequence >= 100)
    });
    w.signal(libc::SIGTERM);
    let (status, log) = w.wait();
    assert!(status.success(), "{log}");
    // weir read the first `read` messages of the stream, in order, and
    // finished every one of them before it exited.
    let read: u64 = log
        .lines()
        .find_map(|l| l.split("events_in=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .map(|v| {
            v.trim_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .unwrap()
        })
        .expect("the run's summary");
    assert!(read < N as u64, "stopped mid-stream");
    // The server takes in acks as they come.
    wait_until("every finished message to be acknowledged", 10, || {
        rt.block_on(consumer_info(&url)).ack_floor.stream_sequence >= read
    });
    assert_eq!(
        rt.block_on(consumer_info(&url)).ack_floor.stream_sequence,
        read,
        "every message weir finished is acknowledged, and no other"
    );
}
