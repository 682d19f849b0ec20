//! Linear memory never shrinks, and the JavaScript and Python toolchains
//! keep the memory each batch was handed in. A long stream of large events
//! through such a stage at the default limits never fails for memory: an
//! instance past half its limit is replaced between batches, no call is
//! split, and a stateful stage's counts carry over to the fresh instance.

use crate::support::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use weir::Event;

const KEYS: usize = 16;

/// Event `i`: 1 KiB of JSON under one of [`KEYS`] keys.
fn big(i: usize) -> Event {
    let mut v = format!(
        r#"{{"id":{i},"amount":{}.{:02},"note":""#,
        i % 1000,
        i % 100
    );
    while v.len() < 1022 {
        v.push('x');
    }
    v.push_str("\"}");
    let mut e = Event::from_value(v.into_bytes());
    e.key = Some(format!("k{}", i % KEYS).into_bytes());
    e
}

/// Runs 150 default batches of [`big`] events through the `language`'s
/// enrich and counter on one thread and checks that every event came out
/// once, counted in turn, with no call ever retried in pieces.
fn counts_on_through(language: &str) {
    const N: usize = 512 * 150;
    let name = format!("recycle-{language}");
    let p = pipeline(&format!(
        r#"
        name = "{name}"
        source = {{ type = "stdin" }}
        sink = {{ type = "stdout" }}
        workers = {{ threads = 1 }}
        [[stage]]
        name = "enrich"
        plugin = "{{dist}}/{language}/enrich.wasm"
        [[stage]]
        name = "counter"
        plugin = "{{dist}}/{language}/counter.wasm"
        "#
    ));
    let ran = run_memory(&p, (0..N).map(|i| (0, big(i))).collect());
    assert!(ran.dead.is_empty(), "{:?}", ran.dead.first());
    assert_eq!(ran.out.len(), N);
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    for e in &ran.out {
        let n = seen.entry(e.key.clone().unwrap()).or_insert(0);
        *n += 1;
        assert_eq!(
            header(e, "count"),
            n.to_string(),
            "{language}: counts go on"
        );
    }
    for stage in ["enrich", "counter"] {
        let tally = weir::metrics::stage_tally(&name, stage);
        assert_eq!(
            tally.events_in.load(Ordering::Relaxed),
            N as u64,
            "{language} {stage}: no call failed and was retried in pieces"
        );
    }
}

#[test]
fn a_javascript_stream_of_large_events_never_runs_out_of_memory() {
    let mut s = instance(&load("js/enrich.wasm"), &settings(&[]));
    let fresh = s.memory();
    for _ in 0..10 {
        s.process(&mut (0..512).map(big).collect()).unwrap();
    }
    eprintln!(
        "js enrich: {} MiB fresh, {} MiB after ten batches of 512 KiB",
        fresh >> 20,
        s.memory() >> 20
    );
    counts_on_through("js");
}

#[test]
fn a_python_stream_of_large_events_never_runs_out_of_memory() {
    counts_on_through("python");
}

#[test]
fn a_go_stream_of_large_events_never_runs_out_of_memory() {
    counts_on_through("go");
}

#[test]
fn a_rust_instance_holds_little_and_keeps_it() {
    let mut s = instance(&load("counter.wasm"), &settings(&[]));
    for _ in 0..10 {
        s.process(&mut (0..512).map(big).collect()).unwrap();
    }
    assert!(
        s.memory() < 8 << 20,
        "the Rust counter frees what it is handed: {} bytes",
        s.memory()
    );
}
