//! JetStream through crashes and broker restarts: a weir process killed
//! with SIGKILL mid-stream, a nats-server stopped and started again, and a
//! core NATS subscription that falls behind.

use crate::support::nats::*;
use crate::support::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A pipeline file in `dir` through the spin fixture (it spins a thousand
/// times per byte of its batch and outputs nothing), one event per batch on
/// one thread: `endpoints` holds the `source`, `sink` and other top-level
/// keys, `stage_keys` more keys of the stage.
/// `OUT` holds each of the `n` input events exactly once (`Nats-Msg-Id`
/// dropped every replay) and nothing went to the dead-letter stream.
fn assert_every_event_once(rt: &tokio::runtime::Runtime, url: &str, n: usize) {
    let out: Vec<String> = rt
        .block_on(read_stream(url, "OUT"))
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let distinct: BTreeSet<&String> = out.iter().collect();
    assert_eq!(distinct.len(), n, "every input event is in OUT");
    assert_eq!(
        out.len(),
        n,
        "no duplicates: Nats-Msg-Id deduplicated the replays"
    );
    assert_eq!(rt.block_on(count(url, "DLQ")), 0);
}

#[test]
fn jetstream_crash_with_sigkill_loses_nothing_and_dedup_drops_the_replays() {
    let (_nats, url, rt) = server_with_streams();
    const N: usize = 3000;
    rt.block_on(publish(
        &url,
        (0..N).map(|i| (format!("in.{}", i % 3), format!("e{i}"))),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("js.toml");
    let dist = root().join("plugins/dist");
    // Two kills can interrupt a delivery twice: allow more than that, so
    // nothing reaches max_deliver and goes to the dead-letter stream.
    let toml =
        js_pipeline_toml(&url, "identity.wasm").replace("max_deliver = 3", "max_deliver = 10");
    std::fs::write(&file, toml.replace("{dist}", &dist.display().to_string())).unwrap();

    // Kill it twice mid-stream, at different points.
    for kill_at in [600, 1800] {
        let mut w = spawn_weir(&file);
        wait_until("output to reach the kill point", 60, || {
            rt.block_on(count(&url, "OUT")) >= kill_at
        });
        w.signal(libc::SIGKILL);
        let _ = w.wait();
    }
    let mut w = spawn_weir(&file);
    let deadline = Instant::now() + Duration::from_secs(90);
    while rt.block_on(count(&url, "OUT")) < N as u64 {
        if Instant::now() > deadline {
            let info = rt.block_on(consumer_info(&url));
            w.signal(libc::SIGKILL);
            let (_, log) = w.wait();
            panic!(
                "OUT has {} of {N}, DLQ {}; consumer: ack pending {}, pending {}, redelivered {}\n{}",
                rt.block_on(count(&url, "OUT")),
                rt.block_on(count(&url, "DLQ")),
                info.num_ack_pending,
                info.num_pending,
                info.num_redelivered,
                log.lines().rev().take(15).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3)); // redeliveries after ack_wait
    w.signal(libc::SIGTERM);
    let (status, log) = w.wait();
    assert!(status.success(), "{log}");

    assert_every_event_once(&rt, &url, N);
}

#[test]
fn jetstream_broker_restart_mid_stream_loses_nothing_and_weir_keeps_running() {
    const BEFORE: usize = 5000;
    const AFTER: usize = 500;
    let (mut nats, url, rt) = server_with_streams();
    rt.block_on(publish(
        &url,
        (0..BEFORE).map(|i| ("in.a".to_string(), format!("a{i}"))),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("js.toml");
    let dist = root().join("plugins/dist");
    std::fs::write(
        &file,
        js_pipeline_toml(&url, "identity.wasm").replace("{dist}", &dist.display().to_string()),
    )
    .unwrap();
    let mut w = spawn_weir(&file);
    wait_until("the first events", 60, || {
        rt.block_on(count(&url, "OUT")) >= 200
    });
    // While events flow: publishes and acks in flight are cut off.
    let at_restart = rt.block_on(count(&url, "OUT"));
    nats.restart();
    rt.block_on(publish(
        &url,
        (0..AFTER).map(|i| ("in.b".to_string(), format!("b{i}"))),
    ));
    wait_until("every event in OUT", 90, || {
        assert!(
            w.child.try_wait().unwrap().is_none(),
            "weir stopped:\n{}",
            w.log()
        );
        rt.block_on(count(&url, "OUT")) >= (BEFORE + AFTER) as u64
    });
    std::thread::sleep(Duration::from_secs(3)); // redeliveries after ack_wait
    let log = w.log();
    assert!(
        at_restart < BEFORE as u64,
        "the restart came mid-stream ({at_restart} of {BEFORE} were out)"
    );
    let lost = log
        .find("nats: disconnected")
        .expect("the lost server is logged");
    assert!(
        log[lost..].contains("nats: connected"),
        "so is its return:\n{log}"
    );
    assert_every_event_once(&rt, &url, BEFORE + AFTER);
}

#[test]
fn a_core_nats_subscription_that_falls_behind_logs_its_drops_and_keeps_serving() {
    let nats = crate::support::brokers::NatsServer::start();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    // A stage that spins about a million iterations per event, one event per
    // batch, behind a client buffer of 16 messages.
    let file = spin_pipeline(
        dir.path(),
        &format!(
            r#"
            source = {{ type = "nats", url = "{url}", subject = "in.>", max_pending = 16 }}
            sink = {{ type = "nats", url = "{url}", subject = "out" }}
            "#
        ),
        "",
    );
    let w = spawn_weir(&file);
    wait_until("weir to subscribe", 30, || {
        w.log().contains("nats: connected")
    });
    std::thread::sleep(Duration::from_millis(500));
    let rt = tokio_rt();
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let value = "x".repeat(1000);
        for i in 0..2000 {
            client
                .publish(format!("in.{}", i % 3), value.clone().into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    });
    wait_until("the slow consumer report", 30, || {
        w.log().contains("nats: slow consumer")
    });
    let log = w.log();
    let line = log
        .lines()
        .find(|l| l.contains("nats: slow consumer"))
        .unwrap();
    assert!(
        line.contains("max_pending") && line.contains("dropped"),
        "the report says what happened and what to do: {line}"
    );
    assert_eq!(
        log.matches("slow consumer").count(),
        1,
        "reports are spaced out, not one per dropped message:\n{log}"
    );
    let mut w = w;
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "weir keeps serving:\n{log}"
    );
}
