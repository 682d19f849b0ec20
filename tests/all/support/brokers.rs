//! Broker processes: started on a free loopback port, killed when they drop
//! (and, through PR_SET_PDEATHSIG, when the test binary dies). The benches
//! start theirs with this file too.

#![allow(dead_code)]

use super::process::{free_port, wait_for_port, Process};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where `scripts/brokers.sh` installs broker binaries.
fn binary(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let p = PathBuf::from(home).join(".cache/weir/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/brokers.sh (the README's test command does)",
        p.display()
    );
    p
}

/// Starts a broker: stdin and stdout closed, stderr collected.
fn spawn(mut cmd: Command) -> Process {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    Process::spawn(cmd)
}

/// A Tansu broker (Kafka protocol) with in-memory storage.
pub struct Tansu {
    /// The broker runs as long as this lives.
    process: Process,
    /// `127.0.0.1:port`.
    pub brokers: String,
}

impl Tansu {
    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Starts a broker on a free port.
    pub fn start() -> Tansu {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(binary("tansu", "WEIR_TANSU"));
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]);
        let process = spawn(cmd);
        wait_for_port(port);
        Tansu {
            process,
            brokers: format!("127.0.0.1:{port}"),
        }
    }
}

/// A nats-server 2.15 with JetStream, storing under its own directory, so a
/// restart on the same port keeps the streams.
pub struct NatsServer {
    process: Option<Process>,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port.
    pub fn start() -> NatsServer {
        let mut s = NatsServer {
            process: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(binary("nats-server", "WEIR_NATS_SERVER"));
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(self.dir.path());
        self.process = Some(spawn(cmd));
        wait_for_port(self.port);
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |p| p.pid())
    }

    /// `nats://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and
    /// store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn stop(&mut self) {
        // Dropping the process kills it.
        self.process = None;
    }
}
