//! `weir run` re-reads its pipeline files on SIGHUP and swaps a changed
//! stage between two batches, carrying its state.

use crate::support::{free_port, root, run_with_stdin, scrape, wait_until};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn pipeline_text(port: u16, plugin: &str) -> String {
    format!(
        "name = \"hup\"\nsource = {{ type = \"stdin\", shards = 2 }}\n\
         sink = {{ type = \"file\", path = \"out.jsonl\" }}\n\
         batch = {{ max_events = 10, linger = \"5ms\" }}\n\
         metrics = {{ listen = \"127.0.0.1:{port}\" }}\n\
         [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
        root().join("plugins/dist").join(plugin).display()
    )
}

fn wait_for_metric(port: u16, what: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(port).unwrap_or_default();
        if m.lines().any(&what) {
            return;
        }
        assert!(Instant::now() < deadline, "metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_swaps_a_changed_stage_and_the_state_carries_over() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, pipeline_text(port, "counter.wasm")).unwrap();
    let mut child = run_with_stdin(&p);
    let mut stdin = child.child.stdin.take().unwrap();
    let mut send = |from: usize, to: usize| {
        for i in from..to {
            writeln!(stdin, "{{\"key\": \"k{}\", \"value\": {i}}}", i % 3).unwrap();
        }
        stdin.flush().unwrap();
    };
    send(0, 90);
    wait_for_metric(port, |l| l == "weir_events_out_total{pipeline=\"hup\"} 90");

    // A broken file changes nothing; a good one swaps the stage.
    std::fs::write(&p, "name = \"hup\"\n[[stage]]\nfuel = -1\n").unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&p, pipeline_text(port, "counter.core.wasm")).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(child.child.id() as i32, libc::SIGHUP) };
    wait_for_metric(port, |l| {
        l.starts_with("weir_stage_swaps_total{") && l.contains("kind=\"swap\"") && l.ends_with(" 1")
    });

    send(90, 180);
    wait_for_metric(port, |l| l == "weir_events_out_total{pipeline=\"hup\"} 180");

    // A stage added in front: the counter keeps its state.
    let two = pipeline_text(port, "counter.core.wasm").replace(
        "[[stage]]\nname = \"count\"",
        &format!(
            "[[stage]]\nname = \"tag\"\nplugin = \"{}\"\n[[stage]]\nname = \"count\"",
            root().join("plugins/dist/identity.wasm").display()
        ),
    );
    std::fs::write(&p, two).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(child.child.id() as i32, libc::SIGHUP) };
    // Once every worker thread runs both stages (on a busy machine the new
    // stage's compile may wait seconds for a core).
    wait_until("the new stage list", 30, || {
        child.log().contains("SIGHUP: stages now")
    });
    send(180, 270);
    wait_for_metric(port, |l| {
        l.starts_with("weir_stage_events_in_total{pipeline=\"hup\",stage=\"tag\"}")
            && !l.ends_with(" 0")
    });
    drop(stdin);
    let (status, log) = child.wait();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("the file has problems; nothing changed"),
        "{log}"
    );
    assert!(log.contains("SIGHUP: stage swapped"), "{log}");
    assert!(log.contains("SIGHUP: stages now"), "{log}");

    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = v["key"].as_str().unwrap().to_string();
        let count = v["headers"][0][1].as_str().unwrap().parse().unwrap();
        counts.entry(key).or_default().push(count);
    }
    assert_eq!(counts.len(), 3);
    for (key, c) in counts {
        assert_eq!(
            c,
            (1..=90).collect::<Vec<u64>>(),
            "{key} counts on across the swap"
        );
    }
}
