//! Python plugins (componentize-py): the Python counter counts like the Rust
//! one, their checkpoints interchange, and a running stage swaps between
//! the two languages without losing a count.

use crate::support::counting::{
    assert_exactly_once_with_continuous_counts, counting_pipeline, with_running_pipeline,
};
use crate::support::*;
use std::time::Duration;
use weir::pipeline::reload::Artifact;
use weir::Event;

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
fn the_python_counter_counts_like_the_rust_one_and_their_checkpoints_interchange() {
    let (py, rust) = (load("python/counter.wasm"), load("counter.wasm"));
    assert_eq!(py.form, rust.form, "both are components");
    let mut p = instance(&py, &settings(&[]));
    let mut r = instance(&rust, &settings(&[]));
    let first = keyed(&["a", "b", "a", "", "a", "c"]);
    let (out_p, out_r) = (
        p.process(&mut first.clone()).unwrap(),
        r.process(&mut first.clone()).unwrap(),
    );
    assert_eq!(out_p, out_r, "the same events, counts and headers");
    assert_eq!(header(&out_p.events[4], "count"), "3");

    // Rust's state into a fresh Python instance, and on from there.
    let state = r.checkpoint_export().unwrap();
    assert_eq!(p.checkpoint_export().unwrap(), state, "one state format");
    let mut p2 = instance(&py, &settings(&[]));
    p2.checkpoint_import(&state).unwrap();
    let second = keyed(&["c", "a", "d"]);
    let (out_p, out_r) = (
        p2.process(&mut second.clone()).unwrap(),
        r.process(&mut second.clone()).unwrap(),
    );
    assert_eq!(out_p, out_r);
    assert_eq!(header(&out_p.events[1], "count"), "4");

    // A damaged checkpoint is refused with the plugin's reason.
    let err = instance(&py, &settings(&[]))
        .checkpoint_import(&[9, 0, 0, 0, b'a'])
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_running_stage_swaps_from_rust_to_python_and_back_without_losing_a_count() {
    // Compiled (and cached) first: a Python component compiles for
    // seconds, longer than this stream lasts.
    load("python/counter.wasm");
    let p = counting_pipeline("");
    let dist = root().join("plugins/dist");
    let (out, dead, fed) = with_running_pipeline(&p, 4000, move |reloader, _| async move {
        for file in ["python/counter.wasm", "counter.wasm", "python/counter.wasm"] {
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
