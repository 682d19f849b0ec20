//! Running the toolchains' programs: a line when a step starts, a line every
//! fifteen seconds while it runs (with how much it has written so far, for
//! downloads), and the program's own messages on stderr.

use super::AuthoringError;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often a running step says it is still running.
const TICK: Duration = Duration::from_secs(15);

/// A progress line on stderr.
pub(crate) fn say(message: impl std::fmt::Display) {
    eprintln!("weir: {message}");
}

/// What happens to one of a program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Shown on stderr as it comes.
    Show,
    /// Dropped.
    Hide,
    /// Kept for the caller.
    Capture,
}

/// How a program ended, and what was captured.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Whether it exited 0.
    pub success: bool,
    /// Its exit status, readable.
    pub status: String,
    /// Captured stdout (empty unless captured).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty unless captured).
    pub stderr: Vec<u8>,
}

impl Ran {
    /// An error naming `step` unless the program succeeded.
    pub fn check(self, step: &str) -> Result<Ran, AuthoringError> {
        if self.success {
            Ok(self)
        } else {
            Err(AuthoringError::StepFailed {
                step: step.to_owned(),
                status: self.status,
            })
        }
    }
}

fn stdio(s: Stream, shown_on_stderr: bool) -> Stdio {
    match s {
        Stream::Hide => Stdio::null(),
        Stream::Capture => Stdio::piped(),
        Stream::Show if shown_on_stderr => Stdio::inherit(),
        // Our stdout carries results only: a program's chatter goes to
        // stderr.
        Stream::Show => {
            use std::os::fd::AsFd;
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_or_else(|_| Stdio::inherit(), Stdio::from)
        }
    }
}

/// Runs `cmd` as the step `label`. While it runs, a line every fifteen
/// seconds gives the time so far and, with `watch`, the bytes under that
/// directory (a download's progress).
pub(crate) fn run(
    label: &str,
    cmd: &mut Command,
    stdout: Stream,
    stderr: Stream,
    watch: Option<&Path>,
) -> Result<Ran, AuthoringError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdio(stdout, false))
        .stderr(stdio(stderr, true))
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AuthoringError::MissingTool {
                tool: program.clone(),
                hint: format!("it is needed to {label}"),
            },
            _ => AuthoringError::Io {
                path: PathBuf::from(&program),
                source: e,
            },
        })?;
    let (done, ticks) = mpsc::channel::<()>();
    let ticker = {
        let label = label.to_owned();
        let watch = watch.map(Path::to_owned);
        std::thread::spawn(move || {
            let start = Instant::now();
            while let Err(mpsc::RecvTimeoutError::Timeout) = ticks.recv_timeout(TICK) {
                let size = watch
                    .as_deref()
                    .map(|w| format!(", {} so far", megabytes(dir_size(w))))
                    .unwrap_or_default();
                say(format_args!(
                    "… still {label} ({} s{size})",
                    start.elapsed().as_secs()
                ));
            }
        })
    };
    let output = child.wait_with_output();
    let _ = done.send(());
    let _ = ticker.join();
    let output = output.map_err(|e| AuthoringError::Io {
        path: PathBuf::from(&program),
        source: e,
    })?;
    Ok(Ran {
        success: output.status.success(),
        status: output.status.to_string(),
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// Bytes in the files under `dir`.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `n` bytes as megabytes, rounded.
pub(crate) fn megabytes(n: u64) -> String {
    format!("{:.0} MB", n as f64 / 1e6)
}
