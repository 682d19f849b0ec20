//! The admin API of a running `weir run --admin`: status, health, metrics,
//! and state changes that need the bearer token.

use crate::support::root;
use crate::support::{free_port, weir, Process};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-token";

/// One request; returns the status code and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn stage_status(port: u16) -> serde_json::Value {
    let (code, body) = http(port, "GET", "/v1/pipelines", &[], b"");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["pipelines"][0]["stages"][0].clone()
}

/// `weir run` of a pipeline `name` reading stdin, with one stage `count`
/// running `plugin` (of `plugins/dist`), and the admin API on a free port
/// (with the token); the port, the process and the directory it runs in.
fn with_admin(name: &str, plugin: &str) -> (u16, Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"file\", path = \"out.jsonl\" }}\n\
             [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
            root().join("plugins/dist").join(plugin).display()
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let child = Process::spawn({
        let mut c = weir();
        c.args(["run", p.to_str().unwrap(), "--admin", &addr])
            .env("WEIR_ADMIN_TOKEN", TOKEN)
            .stdin(Stdio::piped());
        c
    });
    (port, child, dir)
}

#[test]
fn state_changes_need_the_token_and_bad_uploads_get_a_reason() {
    let (port, mut child, _dir) = with_admin("adm", "counter.wasm");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err()
        || http(port, "GET", "/readyz", &[], b"").0 != 200
    {
        assert!(
            Instant::now() < deadline,
            "the admin API never became ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(port, "GET", "/healthz", &[], b"").0, 200);
    let original = stage_status(port);
    assert_eq!(original["swaps"], 0);

    let wasm = std::fs::read(root().join("plugins/dist/counter.core.wasm")).unwrap();
    let deploy = "/v1/pipelines/adm/stages/count/deploy";
    let bearer = format!("Bearer {TOKEN}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/wasm"),
    ];

    // No token, a wrong token: 401, and nothing changes.
    for headers in [
        vec![("Content-Type", "application/wasm")],
        vec![
            ("Authorization", "Bearer wrong"),
            ("Content-Type", "application/wasm"),
        ],
    ] {
        let (code, body) = http(port, "POST", deploy, &headers, &wasm);
        assert_eq!(code, 401, "{body}");
    }
    for path in [
        "/v1/pipelines/adm/stages/count/rollback",
        "/v1/pipelines/adm/checkpoint",
    ] {
        assert_eq!(http(port, "POST", path, &[], b"").0, 401, "{path}");
    }
    assert_eq!(stage_status(port), original, "nothing changed");

    // Bad uploads: 4xx with a reason.
    let (code, body) = http(port, "POST", deploy, &auth, b"not wasm");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("not a WebAssembly"), "{body}");
    let no_abi = wat::parse_file(root().join("tests/fixtures/no_process.wat")).unwrap();
    let (code, body) = http(port, "POST", deploy, &auth, &no_abi);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("weir_process"), "{body}");
    let huge = vec![0u8; weir::admin::MAX_UPLOAD + 1];
    let (code, body) = http(port, "POST", deploy, &auth, &huge);
    assert_eq!(code, 413, "{body}");
    let (code, body) = http(
        port,
        "POST",
        "/v1/pipelines/adm/stages/nope/deploy",
        &auth,
        &wasm,
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = http(
        port,
        "POST",
        "/v1/pipelines/adm/stages/count/rollback",
        &auth,
        b"",
    );
    assert_eq!(code, 409, "nothing to roll back to: {body}");
    assert_eq!(stage_status(port)["swaps"], 0);

    // `weir deploy` with the token swaps; a rollback goes back.
    let out = weir()
        .args(["deploy", "adm", "count"])
        .arg(root().join("plugins/dist/counter.core.wasm"))
        .args(["--admin", &addr])
        .env("WEIR_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = stage_status(port);
    assert_eq!(now["swaps"], 1);
    assert_ne!(now["digest"], original["digest"]);
    let (code, metrics) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    assert!(metrics.contains("weir_stage_swaps_total"), "{metrics}");
    let (code, body) = http(
        port,
        "POST",
        "/v1/pipelines/adm/stages/count/rollback",
        &auth,
        b"",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(stage_status(port)["digest"], original["digest"]);

    // The status counts what each stage handled.
    let mut stdin = child.child.stdin.take().unwrap();
    for i in 0..3 {
        writeln!(stdin, "{{\"key\": \"k\", \"value\": \"{i}\"}}").unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let s = stage_status(port);
        if s["events_out"] == 3 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (
            &counted["events_in"],
            &counted["events_out"],
            &counted["errors"]
        ),
        (&3.into(), &3.into(), &0.into()),
        "{counted}"
    );

    drop(stdin);
    assert!(child.child.wait().unwrap().success());
}

#[test]
fn the_status_and_the_metrics_show_each_stage_s_keyed_state() {
    let (port, mut child, _dir) = with_admin("keyed", "keyed_counter.wasm");
    let mut stdin = child.child.stdin.take().unwrap();
    for key in ["a", "b", "a"] {
        writeln!(stdin, "{{\"key\": \"{key}\", \"value\": \"x\"}}").unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = |s: &serde_json::Value, what: &str| -> u64 {
        s["state"]
            .as_array()
            .map_or(0, |a| a.iter().map(|p| p[what].as_u64().unwrap()).sum())
    };
    let status = loop {
        let ready = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/readyz", &[], b"").0 == 200;
        if ready {
            let s = stage_status(port);
            if held(&s, "keys") == 2 {
                break s;
            }
        }
        assert!(Instant::now() < deadline, "no keyed state showed up");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Two keys of one byte, each with an 8-byte count.
    assert_eq!(held(&status, "bytes"), 18, "{status}");
    let (code, metrics) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("weir_state_keys{") && metrics.contains("weir_state_bytes{"),
        "{metrics}"
    );
    drop(stdin);
    assert!(child.child.wait().unwrap().success());
}
