//! JavaScript plugins (componentize-js): at the default batch size and
//! limits a JS stage runs without fuel failures; the JS counter counts like
//! the Rust one and their checkpoints interchange; an endless loop, runaway
//! allocation and an exception each cost one event, not the stage; files
//! and environment variables are closed unless granted.

use crate::support::*;
use std::time::Duration;
use weir::runtime::{CallError, Grants, InstanceSettings, StageLimits, DEFAULT_FUEL_PER_EVENT};
use weir::Event;

fn order(i: usize) -> Event {
    Event::from_value(format!(
        r#"{{"order":{i},"customer":"customer-{i:06}","channel":"online","sku":"SKU-{:05}","amount":{}.{:02},"note":"{}"}}"#,
        i % 977,
        i % 500,
        i % 100,
        "x".repeat(140)
    ))
}

#[test]
fn a_js_enrich_at_the_default_batch_and_limits_never_runs_out_of_fuel() {
    let plugin = load("js/enrich.wasm");
    let mut s = instance(&plugin, &settings(&[("currency", "USD")]));
    let mut batch: Vec<Event> = (0..512).map(order).collect();
    let out = s.process(&mut batch).unwrap();
    assert_eq!(out.events.len(), 512);
    let first = s.last_fuel() / 512;
    let out = s.process(&mut (0..512).map(order).collect()).unwrap();
    let steady = s.last_fuel() / 512;
    eprintln!("js enrich: {first} fuel per event in the first call, {steady} after");
    assert!(String::from_utf8_lossy(&out.events[7].value).contains(r#""currency":"USD""#));
    assert!(
        first * 4 < DEFAULT_FUEL_PER_EVENT,
        "the default leaves room to spare: {first} per event"
    );

    let p = pipeline(
        r#"
        name = "js"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        workers = { threads = 1 }
        [[stage]]
        name = "enrich"
        plugin = "{dist}/js/enrich.wasm"
        "#,
    );
    assert_eq!(p.batch.max_events, 512, "the default batch size");
    assert_eq!(p.stages[0].limits, StageLimits::default());
    let ran = run_memory(&p, (0..3000).map(|i| (0, order(i))).collect());
    assert!(ran.dead.is_empty(), "{:?}", ran.dead.first());
    assert_eq!(ran.out.len(), 3000);
    let seventh = String::from_utf8_lossy(&ran.out[7].value).into_owned();
    assert!(seventh.contains(r#""amount_cents":707"#), "{seventh}");
}

fn keyed(keys: &[&str]) -> Vec<Event> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let mut e = Event::from_value(i.to_string());
            e.key = (!k.is_empty()).then(|| k.as_bytes().to_vec());
            e
        })
        .collect()
}

#[test]
fn the_js_counter_counts_like_the_rust_one_and_their_checkpoints_interchange() {
    let (js, rust) = (load("js/counter.wasm"), load("counter.wasm"));
    let mut j = instance(&js, &settings(&[]));
    let mut r = instance(&rust, &settings(&[]));
    let first = keyed(&["a", "b", "a", "", "a", "c"]);
    let (out_j, out_r) = (
        j.process(&mut first.clone()).unwrap(),
        r.process(&mut first.clone()).unwrap(),
    );
    assert_eq!(out_j, out_r, "the same events, counts and headers");
    let state = r.checkpoint_export().unwrap();
    assert_eq!(j.checkpoint_export().unwrap(), state, "one state format");
    let mut j2 = instance(&js, &settings(&[]));
    j2.checkpoint_import(&state).unwrap();
    let second = keyed(&["c", "a", "d"]);
    let (out_j, out_r) = (
        j2.process(&mut second.clone()).unwrap(),
        r.process(&mut second.clone()).unwrap(),
    );
    assert_eq!(out_j, out_r);
    assert_eq!(header(&out_j.events[1], "count"), "4");
    let err = instance(&js, &settings(&[]))
        .checkpoint_import(&[9, 0, 0, 0, b'a'])
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

fn misbehave(limits: StageLimits) -> weir::runtime::StageInstance {
    misbehave_with(limits, Grants::default())
}

fn misbehave_with(limits: StageLimits, grants: Grants) -> weir::runtime::StageInstance {
    instance(
        &load("js/misbehave.wasm"),
        &InstanceSettings {
            limits,
            grants,
            ..settings(&[])
        },
    )
}

#[test]
fn js_files_and_environment_are_closed_unless_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "granted file").unwrap();
    // SAFETY: set before any instance reads it; tests read, never write, it.
    unsafe { std::env::set_var("WEIR_TEST_JS_SECRET", "granted env") };
    let ask = || events(&["env:WEIR_TEST_JS_SECRET", "file:/data/secret.txt"]);

    let mut closed = misbehave(StageLimits::default());
    let out = closed.process(&mut ask()).unwrap();
    assert_eq!(values(&out.events)[0], "<unset>");
    assert!(
        values(&out.events)[1].starts_with("denied: "),
        "{:?}",
        values(&out.events)
    );

    let grants = Grants {
        env: vec!["WEIR_TEST_JS_SECRET".into()],
        read_dirs: [("/data".to_string(), dir.path().to_path_buf())].into(),
    };
    let mut open = misbehave_with(StageLimits::default(), grants);
    let out = open.process(&mut ask()).unwrap();
    assert_eq!(values(&out.events), ["granted env", "granted file"]);
}

#[test]
fn a_js_endless_loop_is_stopped_by_fuel_and_by_the_deadline() {
    let mut s = misbehave(StageLimits {
        fuel_per_event: 1_000_000,
        ..StageLimits::default()
    });
    assert!(s.process(&mut events(&["ok"])).is_ok());
    let err = s.process(&mut events(&["loop"])).unwrap_err();
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err}");

    let mut s = misbehave(StageLimits {
        fuel_per_event: u64::MAX / 100_000,
        timeout: Duration::from_millis(200),
        ..StageLimits::default()
    });
    let err = s.process(&mut events(&["loop"])).unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
}

#[test]
fn js_runaway_allocation_hits_the_memory_limit() {
    let mut s = misbehave(StageLimits {
        memory: 48 << 20,
        ..StageLimits::default()
    });
    let err = s.process(&mut events(&["grow"])).unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit { .. }), "{err}");
}

#[test]
fn a_js_exception_dead_letters_its_event_with_the_message_and_the_stage_goes_on() {
    let p = pipeline(
        r#"
        name = "js"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        workers = { threads = 1 }
        [[stage]]
        name = "misbehave"
        plugin = "{dist}/js/misbehave.wasm"
        "#,
    );
    let input = ["a", "b", "throw", "c"];
    let ran = run_memory(
        &p,
        input.iter().map(|v| (0, Event::from_value(*v))).collect(),
    );
    assert_eq!(values(&ran.out), ["a", "b", "c"]);
    assert_eq!(ran.dead.len(), 1);
    let reason = header(&ran.dead[0], "weir-reason");
    assert!(reason.contains("the event said throw"), "{reason}");
}

#[test]
fn a_running_counter_swaps_rust_to_js_to_python_to_rust_and_the_counts_continue() {
    use crate::support::counting::{
        assert_exactly_once_with_continuous_counts, counting_pipeline, with_running_pipeline,
    };
    use weir::pipeline::reload::Artifact;
    // Compiled (and cached) first: an interpreter's component compiles for
    // seconds, longer than this stream lasts.
    load("js/counter.wasm");
    load("python/counter.wasm");
    let p = counting_pipeline("");
    let dist = root().join("plugins/dist");
    let (out, dead, fed) = with_running_pipeline(&p, 4000, move |reloader, _| async move {
        for file in ["js/counter.wasm", "python/counter.wasm", "counter.wasm"] {
            tokio::time::sleep(Duration::from_millis(40)).await;
            reloader
                .deploy("count", Artifact::Path(dist.join(file)))
                .await
                .unwrap_or_else(|e| panic!("swap to {file}: {e}"));
        }
    });
    assert!(dead.is_empty(), "no dead letters: {dead:?}");
    assert_exactly_once_with_continuous_counts(&out, fed);
}
