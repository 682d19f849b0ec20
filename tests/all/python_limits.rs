//! A Python stage under weir's limits and sandbox: at the default batch size
//! and limits it runs without fuel failures; an endless loop, runaway
//! allocation and an exception each cost one event, not the stage; files
//! and environment stay closed unless granted.

use crate::support::*;
use std::time::Duration;
use weir::runtime::{CallError, Grants, InstanceSettings, StageLimits, DEFAULT_FUEL_PER_EVENT};
use weir::Event;

fn order(i: usize) -> Event {
    // About 256 bytes, like the orders of the performance issue.
    Event::from_value(format!(
        r#"{{"order":{i},"customer":"customer-{i:06}","channel":"online","sku":"SKU-{:05}","amount":{}.{:02},"note":"{}"}}"#,
        i % 977,
        i % 500,
        i % 100,
        "x".repeat(140)
    ))
}

#[test]
fn a_python_enrich_at_the_default_batch_and_limits_never_runs_out_of_fuel() {
    let plugin = load("python/enrich.wasm");
    let mut s = instance(&plugin, &settings(&[("currency", "USD")]));
    let mut batch: Vec<Event> = (0..512).map(order).collect();
    let out = s.process(&mut batch).unwrap();
    assert_eq!(out.events.len(), 512);
    let per_event = s.last_fuel() / 512;
    eprintln!("python enrich: {per_event} fuel per event");
    assert!(
        per_event * 4 < DEFAULT_FUEL_PER_EVENT,
        "the default leaves room to spare: {per_event} per event"
    );

    // A stream through the pipeline, default batch and limits.
    let p = pipeline(
        r#"
        name = "py"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        workers = { threads = 1 }
        [[stage]]
        name = "enrich"
        plugin = "{dist}/python/enrich.wasm"
        "#,
    );
    assert_eq!(p.batch.max_events, 512, "the default batch size");
    assert_eq!(p.stages[0].limits, StageLimits::default());
    let ran = run_memory(&p, (0..3000).map(|i| (0, order(i))).collect());
    assert!(ran.dead.is_empty(), "{:?}", ran.dead.first());
    assert_eq!(ran.out.len(), 3000);
    let seventh = String::from_utf8_lossy(&ran.out[7].value).into_owned();
    assert!(seventh.contains(r#""currency":"EUR""#), "{seventh}");
    assert!(seventh.contains(r#""amount_cents":707"#), "{seventh}");
}

fn misbehave(limits: StageLimits, grants: Grants) -> weir::runtime::StageInstance {
    instance(
        &load("python/misbehave.wasm"),
        &InstanceSettings {
            limits,
            grants,
            ..settings(&[])
        },
    )
}

#[test]
fn a_python_endless_loop_is_stopped_by_fuel_and_by_the_deadline() {
    let mut s = misbehave(
        StageLimits {
            fuel_per_event: 1_000_000,
            ..StageLimits::default()
        },
        Grants::default(),
    );
    assert!(s.process(&mut events(&["ok"])).is_ok());
    let err = s.process(&mut events(&["loop"])).unwrap_err();
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err}");

    let mut s = misbehave(
        StageLimits {
            fuel_per_event: u64::MAX / 100_000,
            timeout: Duration::from_millis(200),
            ..StageLimits::default()
        },
        Grants::default(),
    );
    let err = s.process(&mut events(&["loop"])).unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
}

#[test]
fn python_runaway_allocation_hits_the_memory_limit() {
    let mut s = misbehave(
        StageLimits {
            memory: 48 << 20,
            ..StageLimits::default()
        },
        Grants::default(),
    );
    let err = s.process(&mut events(&["grow"])).unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit { .. }), "{err}");
}

#[test]
fn a_python_exception_dead_letters_its_event_with_the_message_and_the_stage_goes_on() {
    let p = pipeline(
        r#"
        name = "py"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        workers = { threads = 1 }
        [[stage]]
        name = "misbehave"
        plugin = "{dist}/python/misbehave.wasm"
        "#,
    );
    let input = ["a", "b", "raise", "c"];
    let ran = run_memory(
        &p,
        input.iter().map(|v| (0, Event::from_value(*v))).collect(),
    );
    assert_eq!(values(&ran.out), ["a", "b", "c"]);
    assert_eq!(ran.dead.len(), 1);
    let reason = header(&ran.dead[0], "weir-reason");
    assert!(
        reason.contains("ValueError: the event said raise"),
        "{reason}"
    );
}

#[test]
fn python_files_and_environment_are_closed_unless_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "granted file").unwrap();
    // SAFETY: set before any instance reads it; tests read, never write, it.
    unsafe { std::env::set_var("WEIR_TEST_PY_SECRET", "granted env") };
    let ask = || events(&["env:WEIR_TEST_PY_SECRET", "file:/data/secret.txt"]);

    let mut closed = misbehave(StageLimits::default(), Grants::default());
    let out = closed.process(&mut ask()).unwrap();
    assert_eq!(values(&out.events)[0], "<unset>");
    assert!(
        values(&out.events)[1].starts_with("denied: "),
        "{:?}",
        values(&out.events)
    );

    let grants = Grants {
        env: vec!["WEIR_TEST_PY_SECRET".into()],
        read_dirs: [("/data".to_string(), dir.path().to_path_buf())].into(),
    };
    let mut open = misbehave(StageLimits::default(), grants);
    let out = open.process(&mut ask()).unwrap();
    assert_eq!(values(&out.events), ["granted env", "granted file"]);
}
