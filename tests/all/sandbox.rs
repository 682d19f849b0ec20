//! WASI is deny-by-default: a plugin sees no environment and no files
//! unless its stage grants them, and then exactly those.

use crate::support::*;
use std::collections::BTreeMap;
use weir::runtime::{Grants, InstanceSettings};

fn probe(file: &str, grants: Grants) -> String {
    let plugin = load(file);
    let settings = InstanceSettings {
        grants,
        ..settings(&[("env", "WEIR_PROBE_SECRET"), ("file", "/ref/secret.txt")])
    };
    let mut s = instance(&plugin, &settings);
    let out = s.process(&mut events(&["x"])).unwrap();
    values(&out.events).remove(0)
}

#[test]
fn env_and_files_are_denied_unless_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "granted contents").unwrap();
    // SAFETY: set before any thread of this test reads it; the name is ours.
    unsafe { std::env::set_var("WEIR_PROBE_SECRET", "s3cret") };
    for file in ["probe.wasm", "probe.core.wasm"] {
        let denied = probe(file, Grants::default());
        assert!(
            denied.contains("env=Err(\"environment variable not found\")"),
            "{file}: {denied}"
        );
        assert!(
            !denied.contains("s3cret") && !denied.contains("granted contents"),
            "{file}: {denied}"
        );
        assert!(denied.contains("file=Err("), "{file}: {denied}");

        let granted = probe(
            file,
            Grants {
                env: vec!["WEIR_PROBE_SECRET".into()],
                read_dirs: BTreeMap::from([("/ref".to_string(), dir.path().to_owned())]),
            },
        );
        assert!(granted.contains("env=Ok(\"s3cret\")"), "{file}: {granted}");
        assert!(
            granted.contains("file=Ok(\"granted contents\")"),
            "{file}: {granted}"
        );
    }
}

#[test]
fn nothing_outside_a_granted_directory_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "x").unwrap();
    let grants = Grants {
        env: vec![],
        read_dirs: BTreeMap::from([("/ref".to_string(), dir.path().to_owned())]),
    };
    for file in ["probe.wasm", "probe.core.wasm"] {
        let plugin = load(file);
        let escape = InstanceSettings {
            grants: grants.clone(),
            ..settings(&[("file", "/ref/../../etc/passwd")])
        };
        let out = instance(&plugin, &escape)
            .process(&mut events(&["x"]))
            .unwrap();
        let answer = values(&out.events).remove(0);
        assert!(
            answer.contains("file=Err("),
            "{file}: escaping the granted directory must fail: {answer}"
        );
    }
}

/// What WASI hands wasi-libc (freed with libc's `free`) and what the host
/// hands Rust code (freed by the SDK's allocator) come from different
/// allocators in a Rust component. One instance doing both, batch after
/// batch, with events small and large, answers the same every time.
#[test]
fn wasi_calls_and_batches_share_one_instance_for_many_calls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "granted contents").unwrap();
    // SAFETY: set before any thread of this test reads it; the name is ours.
    unsafe { std::env::set_var("WEIR_PROBE_SECRET", "s3cret") };
    let settings = InstanceSettings {
        grants: Grants {
            env: vec!["WEIR_PROBE_SECRET".into()],
            read_dirs: BTreeMap::from([("/ref".to_string(), dir.path().to_owned())]),
        },
        ..settings(&[("env", "WEIR_PROBE_SECRET"), ("file", "/ref/secret.txt")])
    };
    for file in ["probe.wasm", "probe.core.wasm"] {
        let plugin = load(file);
        let mut s = instance(&plugin, &settings);
        for round in 0..200usize {
            let large = "x".repeat(1 + round * 97 % 5000);
            let batch: Vec<&str> = (0..1 + round % 7)
                .map(|i| if i % 2 == 0 { "x" } else { large.as_str() })
                .collect();
            let out = s.process(&mut events(&batch)).unwrap();
            assert_eq!(out.events.len(), batch.len(), "{file}, round {round}");
            for answer in values(&out.events) {
                assert!(
                    answer.contains("env=Ok(\"s3cret\")")
                        && answer.contains("file=Ok(\"granted contents\")"),
                    "{file}, round {round}: {}",
                    &answer[..answer.len().min(200)]
                );
            }
        }
    }
}
