//! Broker processes for tests: started on a free loopback port, killed when
//! the guard drops (and, through PR_SET_PDEATHSIG, when the test binary dies).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A free loopback port (bound and released; the broker binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(mut cmd: Command) -> Child {
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the
    // broker when the test process goes.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("broker starts")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Tansu broker (Kafka protocol) with in-memory storage.
pub struct Tansu {
    child: Child,
    /// `127.0.0.1:port`.
    pub brokers: String,
}

impl Tansu {
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
        let child = spawn(cmd);
        wait_for_port(port);
        Tansu {
            child,
            brokers: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
