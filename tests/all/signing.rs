//! Signed artifacts: weir and the reference `minisign` tool verify each
//! other's signatures, and `require_signature` keeps anything unsigned,
//! tampered or signed by a stranger from running.

use crate::support::counting::with_running_pipeline;
use crate::support::weir;
use crate::support::*;
use std::path::Path;
use std::process::Command;
use weir::pipeline::reload::{Artifact, SwapError};

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn weir_and_minisign_verify_each_other() {
    assert!(
        Command::new("minisign").arg("-v").output().is_ok(),
        "the minisign tool is missing: scripts/setup.sh installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.wasm");
    std::fs::copy(root().join("plugins/dist/identity.wasm"), &a).unwrap();

    // weir signs, minisign verifies.
    ok(weir().args(["keygen", "--name"]).arg(d.join("w")));
    ok(weir().arg("sign").arg(&a).arg("--key").arg(d.join("w.key")));
    ok(Command::new("minisign")
        .arg("-Vm")
        .arg(&a)
        .arg("-p")
        .arg(d.join("w.pub")));

    // minisign signs, weir verifies.
    let b = d.join("b.wasm");
    std::fs::copy(&a, &b).unwrap();
    ok(Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(d.join("m.pub"))
        .arg("-s")
        .arg(d.join("m.key")));
    ok(Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(d.join("m.key"))
        .arg("-m")
        .arg(&b));
    let s = ok(weir()
        .arg("verify")
        .arg(&b)
        .arg("--key")
        .arg(d.join("m.pub")));
    assert!(s.contains("is signed by trusted key"), "{s}");

    // The wrong key, and a changed artifact, are refused.
    let out = weir()
        .arg("verify")
        .arg(&b)
        .arg("--key")
        .arg(d.join("w.pub"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not trusted"));
    std::fs::write(&b, b"changed").unwrap();
    let out = weir()
        .arg("verify")
        .arg(&b)
        .arg("--key")
        .arg(d.join("m.pub"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

fn signed_copy(dir: &Path, plugin: &str, key: &Path) -> std::path::PathBuf {
    let to = dir.join(plugin);
    std::fs::copy(root().join("plugins/dist").join(plugin), &to).unwrap();
    weir::signing::sign(&to, key, None).unwrap();
    to
}

#[test]
fn require_signature_refuses_unsigned_tampered_and_untrusted_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    weir::signing::keygen(&d.join("trusted"), None).unwrap();
    weir::signing::keygen(&d.join("stranger"), None).unwrap();
    let plugin = signed_copy(&d, "counter.wasm", &d.join("trusted.key"));
    let mut p = crate::support::counting::counting_pipeline("");
    p.stages[0].plugin = plugin;
    p.trust = weir::signing::Trust {
        keys: vec![weir::signing::TrustedKey::parse("trusted.pub", &d).unwrap()],
        require_signature: true,
    };
    let running = load("counter.wasm").sha256;
    let (out, _, fed) = with_running_pipeline(&p, 2000, move |reloader, _| async move {
        let new = std::fs::read(root().join("plugins/dist/counter.core.wasm")).unwrap();
        let deploy = |bytes: Vec<u8>, signature: Option<String>| {
            let r = reloader.clone();
            async move {
                r.deploy(
                    "count",
                    Artifact::Bytes {
                        name: "counter.core.wasm".into(),
                        bytes,
                        signature,
                    },
                )
                .await
            }
        };
        let refused = |r: Result<_, SwapError>, why: &str| match r {
            Err(SwapError::Refused(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected a refusal ({why}), got {other:?}"),
        };
        refused(deploy(new.clone(), None).await, "is not signed");

        let good = signed_copy(&d, "counter.core.wasm", &d.join("trusted.key"));
        let sig = std::fs::read_to_string(weir::signing::signature_path(&good)).unwrap();
        let mut tampered = new.clone();
        *tampered.last_mut().unwrap() ^= 1;
        refused(deploy(tampered, Some(sig.clone())).await, "does not match");

        let other = d.join("other");
        std::fs::create_dir(&other).unwrap();
        let strange = signed_copy(&other, "counter.core.wasm", &d.join("stranger.key"));
        let strange_sig = std::fs::read_to_string(weir::signing::signature_path(&strange)).unwrap();
        refused(deploy(new.clone(), Some(strange_sig)).await, "not trusted");

        let s = &reloader.status()[0];
        assert_eq!(
            (s.swaps, s.digest.as_str()),
            (0, running.as_str()),
            "untouched"
        );

        // Signed by the trusted key: it runs.
        deploy(new, Some(sig)).await.unwrap();
        assert_eq!(reloader.status()[0].swaps, 1);
    });
    assert_eq!(out.len() as u64, fed);
}

#[test]
fn an_unsigned_plugin_does_not_start_when_signatures_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    weir::signing::keygen(&d.join("k"), None).unwrap();
    let p = d.join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"signed\"\ntrusted_keys = [\"k.pub\"]\nrequire_signature = true\n\
             source = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
             [[stage]]\nname = \"id\"\nplugin = \"{}\"\n",
            root().join("plugins/dist/identity.wasm").display()
        ),
    )
    .unwrap();
    let out = weir().arg("check").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage id: refused") && err.contains("is not signed"),
        "{err}"
    );
}
