//! Limits come in pairs: obeyed, then violated, each with a WAT fixture whose
//! work grows with the size of the batch.

use crate::support::*;
use std::time::Duration;
use weir::runtime::{CallError, StageInstance, StageLimits};
use weir::Event;

fn small() -> Vec<Event> {
    events(&["x"])
}

fn big(bytes: usize) -> Vec<Event> {
    vec![Event::from_value(vec![b'x'; bytes])]
}

fn with_limits(limits: StageLimits) -> weir::runtime::InstanceSettings {
    weir::runtime::InstanceSettings {
        limits,
        ..settings(&[])
    }
}

#[test]
fn fuel_obeyed_and_violated() {
    let plugin = load_wat("spin");
    let mut s = instance(
        &plugin,
        &with_limits(StageLimits {
            fuel_per_event: 60_000,
            ..StageLimits::default()
        }),
    );
    assert!(s.process(&mut small()).is_ok());
    assert!(s.last_fuel() > 18_000, "used {}", s.last_fuel());
    let err = s.process(&mut big(2_000)).unwrap_err();
    // One event gets its own fuel and the call's allowance of 16 more.
    assert_eq!(
        err,
        CallError::OutOfFuel {
            budget: 60_000 * 17,
            events: Some(1)
        }
    );
}

#[test]
fn timeout_obeyed_and_violated() {
    let plugin = load_wat("spin");
    let limits = StageLimits {
        fuel_per_event: u64::MAX / 100_000,
        timeout: Duration::from_millis(50),
        ..StageLimits::default()
    };
    let mut s = instance(&plugin, &with_limits(limits));
    assert!(s.process(&mut small()).is_ok());
    let err = s.process(&mut big(1_000_000)).unwrap_err();
    assert_eq!(
        err,
        CallError::Deadline {
            timeout: Duration::from_millis(50)
        }
    );
}

#[test]
fn memory_obeyed_and_violated() {
    let plugin = load_wat("grow");
    let mut s = instance(&plugin, &settings(&[]));
    assert!(s.process(&mut small()).is_ok(), "18 pages fit in 64 MiB");
    let err = s.process(&mut big(2_000)).unwrap_err();
    assert_eq!(err, CallError::MemoryLimit { limit: 64 << 20 });
}

#[test]
fn stack_obeyed_and_violated() {
    let plugin = load_wat("recurse");
    let mut s = instance(&plugin, &settings(&[]));
    assert!(s.process(&mut small()).is_ok());
    let err = s.process(&mut big(1_000_000)).unwrap_err();
    assert_eq!(err, CallError::StackOverflow);
}

#[test]
fn trap_in_init_is_a_typed_error() {
    let err = StageInstance::new(&runtime(), &load_wat("init_trap"), &settings(&[]))
        .err()
        .unwrap();
    assert_eq!(err.kind(), "trap", "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[test]
fn output_that_is_not_cbor_or_not_the_schema_is_refused() {
    let plugin = load_wat("bad_output");
    let mut s = instance(&plugin, &settings(&[]));
    assert!(
        s.process(&mut small()).unwrap().events.is_empty(),
        "valid empty output"
    );
    let err = s.process(&mut big(100)).unwrap_err();
    assert_eq!(err.kind(), "bad_output");
    assert!(err.to_string().contains("at byte 0"), "{err}");
    let err = s.process(&mut big(1_000)).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected an output map, found an unsigned integer"),
        "{err}"
    );

    let mut s = instance(&load_wat("out_of_bounds"), &settings(&[]));
    let err = s.process(&mut small()).unwrap_err();
    assert!(
        err.to_string().contains("outside the module's memory"),
        "{err}"
    );
}

#[test]
fn a_module_without_the_abi_is_refused_at_load_naming_what_is_missing() {
    let path = root().join("tests/fixtures/no_process.wat");
    let wasm = wat::parse_file(&path).unwrap();
    let err = runtime().load_bytes(&path, &wasm).unwrap_err().to_string();
    assert!(
        err.contains("missing export `weir_process` (i32, i32) -> (i64)"),
        "{err}"
    );
    assert!(err.contains("imports `env.abort`"), "{err}");

    let err = runtime()
        .load_bytes(&path, b"not wasm at all")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not a WebAssembly module or component"),
        "{err}"
    );
}

#[test]
fn a_panicking_rust_plugin_traps_with_its_panic_message() {
    for file in ["poison.wasm", "poison.core.wasm"] {
        let mut s = instance(&load(file), &settings(&[]));
        let err = s.process(&mut events(&["fine", "poison"])).unwrap_err();
        assert_eq!(err.kind(), "trap", "{file}");
        assert!(
            err.to_string().contains("poisoned event at index 1"),
            "{file}: {err}"
        );
    }
}
