//! Child processes for tests and benches: one wrapper for a `weir` worker and
//! a broker alike, killed when it drops (and, through PR_SET_PDEATHSIG, when
//! the test binary dies), its stderr collected as it comes; free loopback
//! ports. Self-contained, so the benches include it by path.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the child binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 10 s until something listens on loopback `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `weir` binary, run from the repository root.
pub fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Starts `weir run` on `pipeline_file`, its standard output discarded.
pub fn spawn_weir(pipeline_file: &std::path::Path) -> Process {
    spawn_weir_with(pipeline_file, Stdio::null())
}

/// Starts `weir run` on `pipeline_file` with `stdout`.
pub fn spawn_weir_with(pipeline_file: &std::path::Path, stdout: Stdio) -> Process {
    let mut cmd = weir();
    cmd.args(["run", pipeline_file.to_str().unwrap()])
        .stdout(stdout);
    Process::spawn(cmd)
}

/// A child process, killed when dropped; its stderr is collected line by
/// line as it comes (unless the command sets stderr itself).
pub struct Process {
    /// The child, for its pipes and its id.
    pub child: Child,
    log: Log,
}

impl Process {
    /// Starts `cmd`: stdin empty unless the command pipes it, stderr
    /// collected.
    pub fn spawn(mut cmd: Command) -> Process {
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // the child when the test process goes.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("child starts");
        let log = Log::start(child.stderr.take().unwrap());
        Process { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits up to `secs` for `line` in the log.
    pub fn wait_for(&self, line: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.log.text().contains(line) {
            assert!(
                Instant::now() < deadline,
                "no {line:?} within {secs} s; the log:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for it to exit; its exit status and everything it logged.
    pub fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        (status, self.log.finish())
    }

    /// Sends it `signal`.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends it `signal` and waits for it to exit; everything it logged.
    pub fn end_with(&mut self, signal: i32) -> String {
        self.signal(signal);
        self.wait().1
    }

    /// Stops it with SIGTERM and checks that it exited cleanly; its whole
    /// log.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let (status, log) = self.wait();
        assert!(status.success(), "the process stopped cleanly:\n{log}");
        log
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's stderr, collected line by line on a thread of its own.
struct Log {
    text: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Log {
    fn start(stderr: impl std::io::Read + Send + 'static) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let reader = std::thread::spawn({
            let text = text.clone();
            move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut t = text.lock().unwrap();
                    t.push_str(&line);
                    t.push('\n');
                }
            }
        });
        Log {
            text,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything logged, once the process closed its stderr.
    fn finish(&mut self) -> String {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}
