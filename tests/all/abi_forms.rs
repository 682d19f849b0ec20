//! Both binary forms run the same transform and give the same results.

use crate::support::*;
use weir::{Event, Header};

fn rich_batch() -> Vec<Event> {
    vec![
        Event {
            key: Some(b"k1".to_vec()),
            value: br#"{"amount": 12.5, "type": "order"}"#.to_vec(),
            headers: vec![Header {
                key: "h".into(),
                value: vec![0, 255],
            }],
            timestamp: Some(1_700_000_000_000),
            topic: Some("orders".into()),
        },
        Event::from_value(br#"{"amount": 3}"#.to_vec()),
        Event::from_value(b"not json".to_vec()),
    ]
}

#[test]
fn component_and_core_module_give_identical_outputs() {
    for name in ["identity", "enrich", "filter", "router", "counter"] {
        let component = load(&format!("{name}.wasm"));
        let module = load(&format!("{name}.core.wasm"));
        assert_eq!(component.form, weir::runtime::Form::Component);
        assert_eq!(module.form, weir::runtime::Form::CoreModule);
        let s = settings(&[("currency", "EUR"), ("min", "5")]);
        let mut a = instance(&component, &s);
        let mut b = instance(&module, &s);
        for _ in 0..3 {
            let out_a = a.process(&mut rich_batch()).unwrap();
            let out_b = b.process(&mut rich_batch()).unwrap();
            assert_eq!(out_a, out_b, "{name}: the two forms differ");
        }
    }
}

#[test]
fn enrich_adds_fields_and_reports_bad_events() {
    let mut s = instance(&load("enrich.wasm"), &settings(&[("currency", "CHF")]));
    let out = s.process(&mut rich_batch()).unwrap();
    assert_eq!(out.events.len(), 2);
    let v: serde_json::Value = serde_json::from_slice(&out.events[0].value).unwrap();
    assert_eq!(v["currency"], "CHF");
    assert_eq!(v["amount_cents"], 1250);
    // Key, headers, timestamp and topic pass through untouched.
    assert_eq!(out.events[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(out.events[0].header("h"), Some(&[0u8, 255][..]));
    assert_eq!(out.events[0].timestamp, Some(1_700_000_000_000));
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].index, 2);
    assert!(
        out.errors[0].message.contains("not JSON"),
        "{}",
        out.errors[0].message
    );
    assert!(s.last_fuel() > 0, "fuel use is recorded");
}

#[test]
fn counter_state_survives_checkpoint_export_and_import() {
    for file in ["counter.wasm", "counter.core.wasm"] {
        let plugin = load(file);
        let mut first = instance(&plugin, &settings(&[]));
        let keyed = |k: &str| Event {
            key: Some(k.as_bytes().to_vec()),
            ..Event::from_value(b"x".to_vec())
        };
        first
            .process(&mut vec![keyed("a"), keyed("a"), keyed("b")])
            .unwrap();
        let state = first.checkpoint_export().unwrap();
        drop(first);

        let mut second = instance(&plugin, &settings(&[]));
        second.checkpoint_import(&state).unwrap();
        let out = second
            .process(&mut vec![keyed("a"), keyed("b"), keyed("c")])
            .unwrap();
        let counts: Vec<_> = out
            .events
            .iter()
            .map(|e| String::from_utf8_lossy(e.header("count").unwrap()).into_owned())
            .collect();
        assert_eq!(counts, ["3", "2", "1"], "{file}");

        let err = second.checkpoint_import(b"\x05\x00\x00\x00ab").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{file}: {err}");
    }
}

#[test]
fn init_receives_the_config_and_may_refuse() {
    for file in ["poison.wasm", "poison.core.wasm"] {
        let err = weir::runtime::StageInstance::new(
            &runtime(),
            &load(file),
            &settings(&[("fail_init", "1")]),
        )
        .err()
        .expect("init must fail");
        assert_eq!(err.kind(), "refused", "{file}");
        assert!(
            err.to_string().contains("fail_init is set"),
            "{file}: {err}"
        );
    }
}
