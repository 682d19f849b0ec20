//! Hot swap while events flow: every event exactly once and in order, the
//! state carried across versions, and bad versions rolled back on their own.

use crate::support::counting::*;
use crate::support::*;
use std::time::{Duration, Instant};
use weir::pipeline::reload::{Artifact, SwapError};

#[test]
fn ten_swaps_under_load_lose_nothing_and_the_counts_continue() {
    let p = counting_pipeline("");
    let (versions_tx, versions) = std::sync::mpsc::channel();
    let (out, dead, fed) = with_running_pipeline(&p, 8000, move |reloader, counters| async move {
        // The same counter built as a core module and as a component: two
        // versions with different digests that share the state format.
        ten_swaps(&reloader, &counters, ["counter.core.wasm", "counter.wasm"]).await;
        versions_tx.send(reloader.status()).unwrap();
    });
    assert!(dead.is_empty(), "no dead letters: {dead:?}");
    assert_exactly_once_with_continuous_counts(&out, fed);
    let status = versions.recv().unwrap();
    assert_eq!(status[0].swaps, 10);
    assert_eq!(status[0].rollbacks, 0);
    assert_eq!(
        status[0].digest,
        load("counter.wasm").sha256,
        "the last version runs"
    );
}

fn wat(name: &str) -> Artifact {
    let path = root().join("tests/fixtures").join(format!("{name}.wat"));
    Artifact::Bytes {
        name: format!("{name}.wasm"),
        bytes: wat::parse_file(&path).unwrap(),
        signature: None,
    }
}

#[test]
fn bad_versions_are_rolled_back_and_the_stream_goes_on() {
    let p = counting_pipeline("probation_batches = 5");
    let (status_tx, status) = std::sync::mpsc::channel();
    let (out, dead, fed) = with_running_pipeline(&p, 6000, move |reloader, _| async move {
        let original = reloader.status()[0].digest.clone();
        tokio::time::sleep(Duration::from_millis(50)).await;

        // Traps in init: never reaches the worker threads.
        let e = reloader
            .deploy("count", wat("init_trap"))
            .await
            .unwrap_err();
        assert!(matches!(e, SwapError::RolledBack(_)), "{e}");
        assert!(e.to_string().contains("does not start"), "{e}");

        // Refuses the counter's checkpoint: every thread stays on the old
        // version with its state.
        let e = reloader
            .deploy("count", wat("reject_checkpoint"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unknown state format"), "{e}");
        assert_eq!(reloader.status()[0].digest, original);

        // Takes the state, then fails its first batch: the thread that saw
        // it goes back, re-runs the batch on the old version, and the
        // others follow.
        reloader.deploy("count", wat("trap_process")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reloader.status()[0].rollbacks < 3 {
            assert!(Instant::now() < deadline, "{:?}", reloader.status());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        status_tx.send(reloader.status()).unwrap();
        let _ = original;
    });
    let status = status.recv().unwrap();
    let s = &status[0];
    assert_eq!(s.rollbacks, 3, "{s:?}");
    assert_eq!(
        s.digest,
        load("counter.wasm").sha256,
        "the old version runs"
    );
    assert!(
        s.last_problem
            .as_deref()
            .unwrap_or("")
            .contains("failed 1 of its first"),
        "{s:?}"
    );
    assert!(
        dead.is_empty(),
        "the failing batch ran again on the old version: {dead:?}"
    );
    assert_exactly_once_with_continuous_counts(&out, fed);
}

#[test]
fn a_refused_artifact_changes_nothing() {
    let p = counting_pipeline("");
    let (out, _, fed) = with_running_pipeline(&p, 400, |reloader, _| async move {
        let e = reloader
            .deploy(
                "count",
                Artifact::Bytes {
                    name: "junk.wasm".into(),
                    bytes: b"not wasm at all".to_vec(),
                    signature: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, SwapError::Refused(_)), "{e}");
        let e = reloader
            .deploy(
                "nope",
                Artifact::Path(root().join("plugins/dist/counter.wasm")),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, SwapError::UnknownStage(_)), "{e}");
        let s = &reloader.status()[0];
        assert_eq!((s.swaps, s.rollbacks), (0, 0));
        assert!(
            s.last_problem.as_deref().unwrap().contains("refused"),
            "{s:?}"
        );
    });
    assert_exactly_once_with_continuous_counts(&out, fed);
}

#[test]
fn a_watched_file_swaps_once_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("count.wasm");
    std::fs::copy(root().join("plugins/dist/counter.wasm"), &plugin).unwrap();
    let p = counting_pipeline("watch = true")
        .stages
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.plugin = plugin.clone();
            s
        })
        .collect::<Vec<_>>();
    let p = weir::config::Pipeline {
        stages: p,
        ..counting_pipeline("watch = true")
    };
    let (out, dead, fed) = with_running_pipeline(&p, 12_000, move |reloader, _| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let new = std::fs::read(root().join("plugins/dist/counter.core.wasm")).unwrap();
        // Half a file that then holds still: looked at, refused, not run.
        std::fs::write(&plugin, &new[..new.len() / 2]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reloader.status()[0].last_problem.is_none() {
            assert!(Instant::now() < deadline, "{:?}", reloader.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = &reloader.status()[0];
        assert_eq!(s.swaps, 0, "{s:?}");
        assert!(
            s.last_problem.as_deref().unwrap().starts_with("refused"),
            "{s:?}"
        );
        // The whole file: swapped.
        std::fs::write(&plugin, &new).unwrap();
        while reloader.status()[0].swaps == 0 {
            assert!(Instant::now() < deadline, "{:?}", reloader.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            reloader.status()[0].digest,
            load("counter.core.wasm").sha256
        );
    });
    assert!(dead.is_empty());
    assert_exactly_once_with_continuous_counts(&out, fed);
}

fn smoke_pipeline(compare: &str) -> weir::config::Pipeline {
    let samples = root().join("tests/fixtures/smoke/samples.jsonl");
    counting_pipeline(&format!(
        "smoke = {{ events = \"{}\"{compare} }}",
        samples.display()
    ))
}

#[test]
fn a_smoke_check_refuses_what_fails_or_differs_and_the_stream_goes_on() {
    let p = smoke_pipeline(", compare = \"output\"");
    let (out, dead, fed) = with_running_pipeline(&p, 3000, |reloader, _| async move {
        let original = reloader.status()[0].digest.clone();
        tokio::time::sleep(Duration::from_millis(30)).await;

        // Fails every sample the running version handles.
        let e = reloader
            .deploy("count", wat("trap_process"))
            .await
            .unwrap_err();
        assert!(matches!(e, SwapError::Refused(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains("smoke check: sample 1 of"), "{text}");
        assert!(text.contains("the new one fails"), "{text}");

        // Handles every sample, but without the counter's header.
        let identity = Artifact::Path(root().join("plugins/dist/identity.wasm"));
        let e = reloader.deploy("count", identity).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("output differs from the running version's (output event 1: headers)"),
            "{e}"
        );
        let s = &reloader.status()[0];
        assert_eq!(s.digest, original, "the running version stays");
        assert_eq!((s.swaps, s.rollbacks), (0, 0), "{s:?}");
        assert!(
            s.last_problem.as_deref().unwrap().contains("smoke check"),
            "{s:?}"
        );

        // The same counter as a core module gives the same output.
        let core = Artifact::Path(root().join("plugins/dist/counter.core.wasm"));
        let d = reloader.deploy("count", core).await.unwrap();
        assert!(!d.unchanged);
        assert_eq!(reloader.status()[0].swaps, 1);
    });
    assert!(dead.is_empty(), "{dead:?}");
    assert_exactly_once_with_continuous_counts(&out, fed);
}

#[test]
fn by_default_a_smoke_check_lets_a_changed_output_through() {
    let p = smoke_pipeline("");
    let (out, _, fed) = with_running_pipeline(&p, 1000, |reloader, _| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let e = reloader
            .deploy("count", wat("trap_process"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("smoke check"), "{e}");
        let identity = Artifact::Path(root().join("plugins/dist/identity.wasm"));
        reloader.deploy("count", identity).await.unwrap();
        assert_eq!(reloader.status()[0].digest, load("identity.wasm").sha256);
    });
    assert_eq!(out.len() as u64, fed, "every event once");
}
