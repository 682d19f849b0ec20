//! The `weir` binary: replay against a golden file, check, inspect, and a
//! graceful stop on SIGTERM that loses nothing in flight.

use crate::support::{free_port, root, run_with_stdin, scrape, weir, Process};
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Output {
    weir().args(args).output().expect("weir runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn replay_of_the_demo_matches_its_golden_output() {
    let out = run(&[
        "replay",
        "pipelines/demo.toml",
        "--input",
        "pipelines/data/orders.jsonl",
        "--expect",
        "pipelines/data/demo.expected.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let golden =
        std::fs::read_to_string(root().join("pipelines/data/demo.expected.jsonl")).unwrap();
    assert_eq!(text(&out.stdout), golden);
    assert!(
        text(&out.stderr).contains("16 events"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("11 out, 3 dead letters"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_polyglot_pipeline_gives_the_demo_output_byte_for_byte() {
    let out = run(&[
        "replay",
        "pipelines/polyglot.toml",
        "--input",
        "pipelines/data/orders.jsonl",
        "--expect",
        "pipelines/data/polyglot.expected.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let golden =
        std::fs::read_to_string(root().join("pipelines/data/polyglot.expected.jsonl")).unwrap();
    assert_eq!(text(&out.stdout), golden);
    // A Go filter, a JavaScript enrich and a Python router write what the
    // Rust ones write: only the pipeline's name in the dead letters differs.
    let demo = std::fs::read_to_string(root().join("pipelines/data/demo.expected.jsonl")).unwrap();
    assert_eq!(
        golden.replace(
            r#"["weir-pipeline","polyglot"]"#,
            r#"["weir-pipeline","demo"]"#
        ),
        demo
    );
}

#[test]
fn replay_reports_a_mismatch_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let golden =
        std::fs::read_to_string(root().join("pipelines/data/demo.expected.jsonl")).unwrap();
    let wrong = golden.replacen("\"count\",\"2\"", "\"count\",\"7\"", 1);
    let expect = dir.path().join("wrong.jsonl");
    std::fs::write(&expect, wrong).unwrap();
    let out = run(&[
        "replay",
        "pipelines/demo.toml",
        "--input",
        "pipelines/data/orders.jsonl",
        "--expect",
        expect.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("output differs") && err.contains("line 3:"),
        "{err}"
    );
}

#[test]
fn check_accepts_the_demo_and_reports_every_problem_of_a_bad_file() {
    let out = run(&["check", "pipelines/demo.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: pipelines/demo.toml (pipeline demo, 4 stages)"));

    let out = run(&[
        "check",
        "pipelines/demo.toml",
        "tests/fixtures/pipelines/many_problems.toml",
        "tests/fixtures/pipelines/no_source.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("many_problems.toml: 15 problems"), "{err}");
    assert!(err.contains("no_source.toml: 1 problem"), "{err}");
}

#[test]
fn check_says_core_nats_is_at_most_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("core.toml");
    std::fs::write(&p, "name = \"c\"\nsource = { type = \"nats\", url = \"nats://127.0.0.1:4222\", subject = \"a.>\" }\nsink = { type = \"stdout\" }\n").unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("delivery: at-most-once"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_refuses_a_plugin_without_the_abi_and_one_whose_init_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_file(root().join("tests/fixtures/no_process.wat")).unwrap();
    std::fs::write(dir.path().join("bad.wasm"), wasm).unwrap();
    let poison = root().join("plugins/dist/fixtures/poison.wasm");
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"p\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
             [[stage]]\nname = \"bad\"\nplugin = \"bad.wasm\"\n\
             [[stage]]\nname = \"refuses\"\nplugin = \"{}\"\nconfig = {{ fail_init = true }}\n",
            poison.display()
        ),
    )
    .unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("stage bad:") && err.contains("missing export `weir_process`"),
        "{err}"
    );
    assert!(
        err.contains("stage refuses: the plugin does not start: refused init: refusing to start"),
        "{err}"
    );
}

#[test]
fn inspect_shows_form_abi_and_exports() {
    let out = run(&["inspect", "plugins/dist/counter.core.wasm"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "form:    core module",
        "weir core-module ABI version 1: ok",
        "weir_process",
        "wasi_snapshot_preview1.",
        "sha256:  ",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    let out = run(&["inspect", "plugins/dist/counter.wasm"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("form:    component")
            && s.contains("weir:plugin/stage@1.1.0 (component form): ok"),
        "{s}"
    );
    assert!(s.contains("weir:plugin/transform@1.1.0"), "{s}");
}

#[test]
fn sigterm_finishes_the_lingering_batch_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("out.jsonl");
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"graceful\"\nsource = {{ type = \"stdin\", shards = 1 }}\n\
             sink = {{ type = \"file\", path = \"out.jsonl\" }}\n\
             batch = {{ max_events = 1000, linger = \"10m\" }}\n\
             metrics = {{ listen = \"127.0.0.1:{port}\" }}\n\
             [[stage]]\nname = \"id\"\nplugin = \"{}\"\n",
            root().join("plugins/dist/identity.wasm").display()
        ),
    )
    .unwrap();
    let mut child = run_with_stdin(&p);
    let mut stdin = child.child.stdin.take().unwrap();
    for i in 0..50 {
        writeln!(stdin, "{{\"value\": {{\"i\": {i}}}}}").unwrap();
    }
    stdin.flush().unwrap();
    // Wait until all 50 were read: they now sit in a batch that lingers for
    // ten minutes, with stdin still open.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(port).unwrap_or_default();
        if m.contains("weir_events_in_total{pipeline=\"graceful\"} 50") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events were not read; metrics:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::read_to_string(&out).unwrap_or_default().is_empty(),
        "nothing is delivered before the batch closes"
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "weir did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = child.wait().1;
    assert!(status.success(), "{status}: {log}");
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..50)
        .map(|i| format!("{{\"value\":{{\"i\":{i}}}}}"))
        .collect();
    assert_eq!(lines, expected, "every event read was delivered, in order");
    drop(stdin);
}

#[test]
fn metrics_name_pipelines_and_stages() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"m\"\nsource = {{ type = \"stdin\", shards = 1 }}\nsink = {{ type = \"file\", path = \"o.jsonl\" }}\n\
             dead_letter = {{ type = \"file\", path = \"d.jsonl\" }}\n\
             batch = {{ max_events = 1, linger = \"1ms\" }}\nmetrics = {{ listen = \"127.0.0.1:{port}\" }}\n\
             [[stage]]\nname = \"poison\"\nplugin = \"{}\"\n",
            root().join("plugins/dist/fixtures/poison.core.wasm").display()
        ),
    )
    .unwrap();
    let mut child = Process::spawn({
        let mut c = weir();
        c.args(["run", p.to_str().unwrap()]).stdin(Stdio::piped());
        c
    });
    let mut stdin = child.child.stdin.take().unwrap();
    writeln!(
        stdin,
        "{{\"value\": \"a\"}}\n{{\"value\": \"poison\"}}\n{{\"value\": \"reject\"}}"
    )
    .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = scrape(port).unwrap_or_default();
        if m.contains("weir_events_out_total{pipeline=\"m\"} 1") && m.contains("kind=\"rejected\"")
        {
            break m;
        }
        assert!(Instant::now() < deadline, "metrics did not arrive:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for want in [
        "weir_events_in_total{pipeline=\"m\"} 3",
        "weir_dead_letters_total{pipeline=\"m\",stage=\"poison\",kind=\"trap\"} 1",
        "weir_dead_letters_total{pipeline=\"m\",stage=\"poison\",kind=\"rejected\"} 1",
        "weir_stage_traps_total{pipeline=\"m\",stage=\"poison\",kind=\"trap\"} 1",
        "weir_stage_fuel_consumed_bucket{pipeline=\"m\",stage=\"poison\"",
        "weir_batch_duration_seconds_bucket{pipeline=\"m\"",
        "weir_stage_instances_started_total{pipeline=\"m\",stage=\"poison\"} 2",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = run(&["--log-format", "json", "run", "pipelines/demo.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "finished")
        .expect("a finished line");
    assert_eq!(finished["fields"]["pipeline"], "demo");
    assert_eq!(finished["fields"]["events_in"], 16);
    assert_eq!(finished["level"], "INFO");
}

#[test]
fn inspect_names_the_language_an_artifact_was_built_from() {
    for (file, language) in [
        ("plugins/dist/counter.wasm", "Rust"),
        ("plugins/dist/counter.core.wasm", "Rust"),
        ("plugins/dist/go/counter.wasm", "Go"),
        (
            "plugins/dist/js/counter.wasm",
            "JavaScript (componentize-js)",
        ),
        (
            "plugins/dist/python/counter.wasm",
            "Python (componentize-py)",
        ),
    ] {
        let out = run(&["inspect", file]);
        let s = text(&out.stdout);
        assert!(
            s.contains(&format!("built from: {language}\n")),
            "{file}:\n{s}"
        );
    }
}

#[test]
fn check_prints_each_stage_with_its_language_and_limits() {
    let out = run(&["check", "pipelines/demo.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("stage filter (Rust): fuel 2,500,000 per event (60,000,000 for a full batch: 8 events and the 16 every call gets on top), memory 16 MiB, timeout 200ms"),
        "{s}"
    );
}
