//! The pipeline engine end to end, with memory endpoints.

use crate::support::*;
use weir::Event;

fn keyed(partition: u32, i: usize) -> (u32, Event) {
    let value = format!("{{\"p\":{partition},\"i\":{i}}}");
    (
        partition,
        Event {
            key: Some(format!("k{partition}").into_bytes()),
            ..Event::from_value(value)
        },
    )
}

/// `per` events of each of `partitions` partitions, taking turns.
fn interleaved(partitions: u32, per: usize) -> Vec<(u32, Event)> {
    (0..per)
        .flat_map(|i| (0..partitions).map(move |p| keyed(p, i)))
        .collect()
}

/// The `i` of each output of `partition`, in output order; `check` sees
/// each output and its JSON value.
fn sequence(out: &[Event], partition: u32, check: impl Fn(&Event, &serde_json::Value)) -> Vec<u64> {
    out.iter()
        .filter(|e| e.key.as_deref() == Some(format!("k{partition}").as_bytes()))
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.value).unwrap();
            check(e, &v);
            v["i"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn partitions_keep_their_order_across_worker_threads() {
    let p = pipeline(
        r#"
        name = "order"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        batch = { max_events = 7, linger = "1ms" }
        workers = { threads = 3 }
        [[stage]]
        name = "identity"
        plugin = "{dist}/identity.wasm"
        [[stage]]
        name = "count"
        plugin = "{dist}/counter.core.wasm"
        "#,
    );
    let ran = run_memory(&p, interleaved(5, 300));
    assert_eq!(ran.report.events_in, 1500);
    assert_eq!(ran.out.len(), 1500, "every event comes out");
    assert!(ran.dead.is_empty());
    for partition in 0..5u32 {
        let seq = sequence(&ran.out, partition, |e, v| {
            assert_eq!(
                header(e, "count"),
                (v["i"].as_u64().unwrap() + 1).to_string(),
                "state is per partition, counted once"
            );
        });
        assert_eq!(
            seq,
            (0..300).collect::<Vec<u64>>(),
            "partition {partition} in order"
        );
        assert_eq!(
            ran.commits[&partition], 300,
            "partition {partition} committed to its last position"
        );
    }
}

/// Every stage stateless: a partition's batches may run on any thread,
/// one at a time, and still come out in order.
#[test]
fn stateless_partitions_move_between_threads_and_keep_their_order() {
    let p = pipeline(
        r#"
        name = "moving"
        source = { type = "stdin" }
        sink = { type = "stdout" }
        batch = { max_events = 5, linger = "1ms" }
        workers = { threads = 2 }
        [[stage]]
        name = "identity"
        plugin = "{dist}/identity.wasm"
        stateless = true
        [[stage]]
        name = "enrich"
        plugin = "{dist}/enrich.core.wasm"
        stateless = true
        "#,
    );
    let ran = run_memory(&p, interleaved(3, 400));
    assert_eq!(ran.out.len(), 1200, "every event comes out");
    assert!(ran.dead.is_empty());
    for partition in 0..3u32 {
        let seq = sequence(&ran.out, partition, |_, v| {
            assert_eq!(v["currency"], "EUR", "through both stages");
        });
        assert_eq!(
            seq,
            (0..400).collect::<Vec<u64>>(),
            "partition {partition} in order"
        );
        assert_eq!(ran.commits[&partition], 400);
    }
}

#[test]
fn poison_events_are_isolated_and_dead_lettered_with_the_reason() {
    for plugin in ["poison.wasm", "poison.core.wasm"] {
        let p = pipeline(&format!(
            r#"
            name = "poison"
            source = {{ type = "stdin" }}
            sink = {{ type = "stdout" }}
            batch = {{ max_events = 16, linger = "1ms" }}
            workers = {{ threads = 2 }}
            [[stage]]
            name = "poison"
            plugin = "{{dist}}/fixtures/{plugin}"
            fuel_per_event = 250_000
            "#
        ));
        let input: Vec<String> = (0..40)
            .map(|i| match i {
                5 => "poison".into(),
                17 => "reject".into(),
                30 => "spin".into(),
                i => format!("ok-{i}"),
            })
            .collect();
        let ran = run_memory(
            &p,
            input
                .iter()
                .map(|v| (0, Event::from_value(v.clone())))
                .collect(),
        );

        let out = values(&ran.out);
        let expected: Vec<String> = input
            .iter()
            .filter(|v| v.starts_with("ok"))
            .cloned()
            .collect();
        assert_eq!(out, expected, "{plugin}: every good event once, in order");
        // The trap restored the last checkpoint: the count of events seen
        // continues without gaps or repeats.
        let seen: Vec<String> = ran.out.iter().map(|e| header(e, "seen")).collect();
        let one_to_n: Vec<String> = (1..=expected.len()).map(|n| n.to_string()).collect();
        assert_eq!(seen, one_to_n, "{plugin}");

        let dead: Vec<(String, String, String)> = ran
            .dead
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.value).into_owned(),
                    header(e, "weir-error-kind"),
                    header(e, "weir-source-position"),
                )
            })
            .collect();
        assert_eq!(
            dead,
            [
                ("poison".into(), "trap".into(), "6".into()),
                ("reject".into(), "rejected".into(), "18".into()),
                ("spin".into(), "out_of_fuel".into(), "31".into())
            ],
            "{plugin}"
        );
        assert!(
            header(&ran.dead[0], "weir-reason").contains("poisoned event at index"),
            "{plugin}"
        );
        assert_eq!(header(&ran.dead[1], "weir-reason"), "rejected by poison");
        assert_eq!(header(&ran.dead[0], "weir-stage"), "poison");
        assert_eq!(header(&ran.dead[0], "weir-pipeline"), "poison");
        assert_eq!(
            ran.commits[&0], 40,
            "{plugin}: committed past the dead letters"
        );
    }
}

#[test]
fn a_slow_stage_holds_a_fast_producer_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use weir::source::MemorySource;

    let spin = root().join("tests/fixtures/spin.wat");
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("spin.wasm");
    std::fs::write(&wasm, wat::parse_file(&spin).unwrap()).unwrap();
    // One event per batch; each costs the stage about a million iterations.
    let p = pipeline(&format!(
        "name = \"slow\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
         batch = {{ max_events = 1, linger = \"1ms\" }}\nworkers = {{ threads = 1 }}\n\
         [[stage]]\nname = \"spin\"\nplugin = \"{}\"\n",
        wasm.display()
    ));
    const N: usize = 3000;
    let (feed, source) = MemorySource::channel(64);
    let accepted = Arc::new(AtomicUsize::new(0));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = tokio.block_on(async {
        let producer = {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                for _ in 0..N {
                    feed.send(0, weir::Event::from_value(vec![b'x'; 1000]))
                        .await
                        .unwrap();
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let (endpoints, _, _) = harness::memory(source);
        let run = harness::start(&p, harness::with_endpoints(endpoints)).await;
        let counters = run.counters().clone();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (taken, done) = (
            accepted.load(Ordering::Relaxed),
            counters.batches.load(Ordering::Relaxed) as usize,
        );
        // Bounded: the source's channel (64), four chunks of at most 256
        // events, and a few batches in the queues; far fewer than N.
        assert!(
            taken < done + 64 + 4 * 256 + 16,
            "the producer was not held back: {taken} accepted, {done} processed"
        );
        assert!(
            taken < N,
            "all {N} accepted while the stage had processed only {done}"
        );
        producer.await.unwrap();
        run.finished().await.unwrap()
    });
    assert_eq!(report.events_in, N as u64, "then every event is processed");
    assert_eq!(report.batches, N as u64);
}

#[test]
fn batches_of_a_partition_given_up_are_neither_processed_nor_published() {
    use weir::source::MemorySource;

    let p = pipeline(
        "name = \"gave-up\"\nsource = { type = \"stdin\" }\nsink = { type = \"stdout\" }\n\
         batch = { max_events = 10 }\n\
         [[stage]]\nname = \"identity\"\nplugin = \"{dist}/identity.wasm\"\n",
    );
    let events: Vec<_> = (0..100).map(|i| keyed(i as u32 % 2, i)).collect();
    let source = MemorySource::from_events(events);
    let commits = source.commits();
    // The worker gave partition 1 up before its batches were processed,
    // as after a Kafka revocation.
    let gave_up = crate::support::revocable::Revocable {
        source,
        holds_one: std::sync::Arc::default(),
    };
    let (endpoints, out, dead) = harness::memory(gave_up);
    let report = tokio_rt()
        .block_on(async {
            let run = harness::start(&p, harness::with_endpoints(endpoints)).await;
            run.finished().await
        })
        .unwrap();
    let values = values(&out.events());
    assert_eq!(values.len(), 50, "partition 0's events, and only those");
    assert!(
        values.iter().all(|v| v.starts_with("{\"p\":0,")),
        "only partition 0 came out: {values:?}"
    );
    assert!(dead.events().is_empty());
    assert_eq!(report.events_in, 100, "every event was read");
    assert_eq!(report.events_out, 50);
    let counted = weir::metrics::stage_tally("gave-up", "identity");
    assert_eq!(
        counted.events_in.load(std::sync::atomic::Ordering::Relaxed),
        50,
        "the stage saw none of partition 1's events"
    );
    assert_eq!(
        commits.snapshot().into_iter().collect::<Vec<_>>(),
        [(0, 50), (1, 50)],
        "abandoned batches still complete in order; the source drops the commits of a \
         partition it gave up (the memory source does not)"
    );
}
