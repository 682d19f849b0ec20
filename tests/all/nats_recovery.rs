//! JetStream through crashes and broker restarts: a weir process killed
//! with SIGKILL mid-stream, and a nats-server stopped and started again.

use crate::nats::*;
use crate::support::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Weir(Child);

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_weir(pipeline_file: &std::path::Path) -> Weir {
    Weir(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", pipeline_file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
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
        // SAFETY: signalling our own child.
        unsafe { libc::kill(w.0.id() as i32, libc::SIGKILL) };
        let _ = w.0.wait();
    }
    let mut w = spawn_weir(&file);
    let deadline = Instant::now() + Duration::from_secs(90);
    while rt.block_on(count(&url, "OUT")) < N as u64 {
        if Instant::now() > deadline {
            let info = rt.block_on(consumer_info(&url));
            let _ = w.0.kill();
            let mut log = String::new();
            w.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
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
                                                // SAFETY: signalling our own child.
    unsafe { libc::kill(w.0.id() as i32, libc::SIGTERM) };
    let status = w.0.wait().unwrap();
    let mut log = String::new();
    w.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(status.success(), "{log}");

    let out: Vec<String> = rt
        .block_on(read_stream(&url, "OUT"))
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let distinct: BTreeSet<&String> = out.iter().collect();
    assert_eq!(distinct.len(), N, "every input event is in OUT");
    assert_eq!(
        out.len(),
        N,
        "no duplicates: Nats-Msg-Id deduplicated the replays"
    );
    assert_eq!(rt.block_on(count(&url, "DLQ")), 0);
}

#[test]
fn jetstream_source_survives_a_broker_restart() {
    let (mut nats, url, rt) = server_with_streams();
    rt.block_on(publish(
        &url,
        (0..500).map(|i| ("in.a".to_string(), format!("a{i}"))),
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
        rt.block_on(count(&url, "OUT")) >= 500
    });

    nats.restart();
    rt.block_on(publish(
        &url,
        (0..500).map(|i| ("in.b".to_string(), format!("b{i}"))),
    ));
    wait_until("events after the restart", 90, || {
        rt.block_on(count(&url, "OUT")) >= 1000
    });
    assert!(
        w.0.try_wait().unwrap().is_none(),
        "weir kept running through the restart"
    );
    let out: BTreeSet<String> = rt
        .block_on(read_stream(&url, "OUT"))
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(out.len(), 1000);
}
