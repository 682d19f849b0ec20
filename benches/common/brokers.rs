//! Broker processes and helpers shared by the broker benches.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The allocator of the `weir` binary, so host-side costs are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A broker process, killed when dropped.
pub struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary that `scripts/brokers.sh` installed.
pub fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(std::env::var("HOME").unwrap())
        .join(".cache/weir/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} missing: run scripts/brokers.sh",
        p.display()
    );
    p
}

/// A free loopback port.
pub fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd` and waits until it listens on `port`.
pub fn start(mut cmd: Command, port: u16) -> Broker {
    let b = Broker(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    b
}

/// A Tansu broker on a free port; returns it and its bootstrap address.
pub fn tansu() -> (Broker, String) {
    let port = port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(bin("tansu"));
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ]);
    (start(cmd, port), format!("127.0.0.1:{port}"))
}

/// A JetStream-enabled nats-server storing in `dir`; returns it and its URL.
pub fn nats(dir: &Path) -> (Broker, String) {
    let port = port();
    let mut cmd = Command::new(bin("nats-server"));
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir);
    (start(cmd, port), format!("nats://127.0.0.1:{port}"))
}

/// A plugin in `plugins/dist`, which `plugins/build.sh` must have built.
pub fn dist(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugins/dist")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run plugins/build.sh first",
        p.display()
    );
    p
}

/// `n` stages: the identity core module, then the counter component, then
/// the identity component.
pub fn stages(n: usize) -> String {
    stages_of(&["identity.core.wasm", "counter.wasm", "identity.wasm"][..n])
}

/// One stage per plugin file of `plugins/dist`.
pub fn stages_of(plugins: &[&str]) -> String {
    plugins
        .iter()
        .enumerate()
        .map(|(i, plugin)| {
            format!(
                "[[stage]]\nname = \"s{i}\"\nplugin = \"{}\"\n",
                dist(plugin).display()
            )
        })
        .collect()
}
