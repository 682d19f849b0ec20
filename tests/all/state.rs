//! Keyed state held by the host: counts per key that outlive batches,
//! instances and versions; a failed batch leaves no trace; limits refuse
//! with a reason while the worker goes on; a stateless stage has none; a
//! component built against the 1.0.0 contract still runs.

use crate::support::counting::{
    assert_exactly_once_with_continuous_counts, counting_pipeline_of, ten_swaps,
    with_running_pipeline,
};
use crate::support::*;
use std::collections::BTreeMap;
use weir::Event;

/// Events keyed `k<i % keys>`, all in one partition, valued by their index.
fn keyed(n: usize, keys: usize) -> Vec<(u32, Event)> {
    (0..n)
        .map(|i| {
            let mut e = Event::from_value(i.to_string());
            e.key = Some(format!("k{}", i % keys).into_bytes());
            (0, e)
        })
        .collect()
}

fn counts(out: &[Event]) -> Vec<(String, u64)> {
    out.iter()
        .map(|e| {
            (
                String::from_utf8_lossy(e.key.as_deref().unwrap_or_default()).into_owned(),
                header(e, "count").parse().unwrap(),
            )
        })
        .collect()
}

/// Running counts per key, 1, 2, 3… in order.
fn assert_running_counts(out: &[Event]) {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (key, n) in counts(out) {
        let c = seen.entry(key.clone()).or_insert(0);
        *c += 1;
        assert_eq!(n, *c, "the count of {key} runs on");
    }
}

#[test]
fn the_keyed_counter_counts_across_batches_in_both_forms() {
    for plugin in ["keyed_counter.wasm", "keyed_counter.core.wasm"] {
        let p = pipeline(&format!(
            "name = \"keyed\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
             batch = {{ max_events = 7 }}\n\
             [[stage]]\nname = \"count\"\nplugin = \"{{dist}}/{plugin}\"\n"
        ));
        let ran = run_memory(&p, keyed(100, 3));
        assert_eq!(ran.out.len(), 100, "{plugin}");
        assert_running_counts(&ran.out);
        assert_eq!(
            counts(&ran.out).last().unwrap(),
            &("k0".to_string(), 34),
            "{plugin}"
        );
        let tally = weir::metrics::stage_tally("keyed", "count");
        let held = tally.state.lock().unwrap()[&0];
        assert_eq!(held.0, 3, "{plugin}: three keys held");
    }
}

#[test]
fn a_batch_that_traps_leaves_no_trace_in_the_state() {
    let p = pipeline(
        "name = \"keyed-poison\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         batch = { max_events = 16 }\n\
         [[stage]]\nname = \"count\"\nplugin = \"{dist}/fixtures/keyed_poison.wasm\"\n",
    );
    let mut events = keyed(64, 4);
    events[21].1.value = b"poison".to_vec();
    events[50].1.value = b"poison".to_vec();
    let ran = run_memory(&p, events);
    assert_eq!(ran.dead.len(), 2, "the two poison events");
    assert_eq!(ran.out.len(), 62);
    // The batches were split and retried to isolate the poison; every
    // count a failed try wrote was dropped, so each event counts once.
    assert_running_counts(&ran.out);
}

#[test]
fn a_stateless_stage_has_no_keyed_state_and_says_so() {
    let p = pipeline(
        "name = \"keyed-stateless\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         [[stage]]\nname = \"count\"\nplugin = \"{dist}/keyed_counter.wasm\"\nstateless = true\n",
    );
    let ran = run_memory(&p, keyed(5, 2));
    assert!(ran.out.is_empty());
    assert_eq!(ran.dead.len(), 5);
    let reason = header(&ran.dead[0], "weir-reason");
    assert!(
        reason.contains("stateless") && reason.contains("remove `stateless = true`"),
        "{reason}"
    );
}

#[test]
fn past_state_max_bytes_writes_are_refused_with_the_reason_and_the_stage_goes_on() {
    let p = pipeline(
        "name = \"keyed-full\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         batch = { max_events = 10 }\n\
         [[stage]]\nname = \"count\"\nplugin = \"{dist}/keyed_counter.core.wasm\"\n\
         state_max_bytes = \"1KiB\"\n",
    );
    // Ten keys, then 100 new ones (each key and count takes about 16
    // bytes: the state fills up), then the first ten again.
    let mut events = keyed(10, 10);
    events.extend((0..100).map(|i| {
        let mut e = Event::from_value(format!("new {i}"));
        e.key = Some(format!("new-key-{i:03}").into_bytes());
        (0, e)
    }));
    events.extend(keyed(10, 10));
    let ran = run_memory(&p, events);
    assert_eq!(ran.out.len() + ran.dead.len(), 120, "nothing is lost");
    assert!(!ran.dead.is_empty(), "the state filled up");
    let reason = header(&ran.dead[0], "weir-reason");
    assert!(reason.contains("state_max_bytes (1024)"), "{reason}");
    let last: Vec<(String, u64)> = counts(&ran.out[ran.out.len() - 10..]);
    assert!(
        last.iter().all(|(k, n)| k.starts_with('k') && *n == 2),
        "the keys already held count on: {last:?}"
    );
}

#[test]
fn a_component_built_against_the_1_0_0_contract_still_runs() {
    let plugin = load("contract_v1_0.wasm");
    assert_eq!(plugin.abi_version(&runtime()).unwrap(), "1.0.0");
    assert_eq!(
        load("keyed_counter.wasm").abi_version(&runtime()).unwrap(),
        "1.1.0"
    );
    let p = pipeline(
        "name = \"v1-0\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         [[stage]]\nname = \"same\"\nplugin = \"{dist}/fixtures/contract_v1_0.wasm\"\n",
    );
    let ran = run_memory(&p, keyed(20, 2));
    assert_eq!(
        values(&ran.out),
        (0..20).map(|i| i.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn ten_swaps_under_load_keep_the_host_held_counts() {
    let p = counting_pipeline_of("keyed_counter.wasm", "");
    let (out, dead, fed) = with_running_pipeline(&p, 8000, move |reloader, counters| async move {
        // Two versions (core module, component) that export nothing: the
        // counts stay with the host.
        ten_swaps(
            &reloader,
            &counters,
            ["keyed_counter.core.wasm", "keyed_counter.wasm"],
        )
        .await;
        assert_eq!(reloader.status()[0].swaps, 10);
    });
    assert!(dead.is_empty(), "no dead letters: {dead:?}");
    assert_exactly_once_with_continuous_counts(&out, fed);
}

#[test]
fn every_sdk_reaches_the_host_held_state_and_counts_like_the_rust_one() {
    let run = |plugin: &str, stateless: bool| {
        let p = pipeline(&format!(
            "name = \"keyed-sdk\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
             batch = {{ max_events = 16 }}\n\
             [[stage]]\nname = \"count\"\nplugin = \"{{dist}}/{plugin}\"\nstateless = {stateless}\n"
        ));
        run_memory(&p, keyed(120, 7))
    };
    let rust = run("keyed_counter.wasm", false);
    for plugin in ["go/keyed.wasm", "js/keyed.wasm", "python/keyed.wasm"] {
        let ran = run(plugin, false);
        assert!(ran.dead.is_empty(), "{plugin}: {:?}", ran.dead);
        assert_eq!(counts(&ran.out), counts(&rust.out), "{plugin}");
        // Refused (a stateless stage): the SDK hands the host's reason on.
        let refused = run(plugin, true);
        assert_eq!(refused.dead.len(), 120, "{plugin}");
        let reason = header(&refused.dead[0], "weir-reason");
        assert!(reason.contains("is stateless"), "{plugin}: {reason}");
    }
}

#[test]
fn a_partition_the_worker_gave_up_takes_its_keyed_state_with_it() {
    use crate::support::revocable::Revocable;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let p = pipeline(
        "name = \"keyed-revoke\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         batch = { max_events = 1, linger = \"1ms\" }\nworkers = { threads = 1 }\n\
         [[stage]]\nname = \"count\"\nplugin = \"{dist}/keyed_counter.core.wasm\"\n",
    );
    let (feed, source) = weir::source::MemorySource::channel(16);
    let holds_one = std::sync::Arc::new(AtomicBool::new(true));
    let source = Revocable {
        source,
        holds_one: holds_one.clone(),
    };
    let (endpoints, out, _) = harness::memory(source);
    let held = || {
        weir::metrics::stage_tally("keyed-revoke", "count")
            .state
            .lock()
            .unwrap()
            .clone()
    };
    tokio_rt().block_on(async {
        let run = harness::start(&p, harness::with_endpoints(endpoints)).await;
        let send = |partition: u32, i: usize| {
            let mut e = Event::from_value(i.to_string());
            e.key = Some(format!("k{partition}").into_bytes());
            feed.send(partition, e)
        };
        for i in 0..10 {
            send(0, i).await.unwrap();
            send(1, i).await.unwrap();
        }
        while out.events().len() < 20 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(held().contains_key(&1), "partition 1 holds state");
        // The worker gives partition 1 up; batches of partition 0 go on,
        // and within a few hundred of them its slot is dropped.
        holds_one.store(false, Relaxed);
        for i in 0..600 {
            send(0, i).await.unwrap();
        }
        drop(feed);
        run.finished().await.unwrap();
    });
    let state = held();
    assert!(
        !state.contains_key(&1),
        "partition 1's state went: {state:?}"
    );
    assert_eq!(state[&0], (1, 10), "partition 0 keeps its key and count");
}
