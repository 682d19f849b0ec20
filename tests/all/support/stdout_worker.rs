//! A `weir run` process whose sink is its standard output: one identity
//! stage, JSON lines out. Its output stalls for as long as nobody reads the
//! pipe, which is how the tests stall a pipeline.

use crate::support::{root, spawn_weir_with, Process};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct StdoutWorker {
    weir: Process,
    stdout: Option<ChildStdout>,
}

impl std::ops::Deref for StdoutWorker {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.weir
    }
}

impl StdoutWorker {
    /// Starts the pipeline `name` (its file goes to `dir`) with `endpoints`:
    /// the top-level `source` and `dead_letter` keys.
    pub fn start(dir: &std::path::Path, name: &str, endpoints: &str) -> StdoutWorker {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "name = \"{name}\"\n{endpoints}\nsink = {{ type = \"stdout\" }}\n\
                 [batch]\nmax_events = 50\nlinger = \"5ms\"\n\
                 [[stage]]\nname = \"identity\"\nplugin = \"{}\"\n",
                root().join("plugins/dist/identity.core.wasm").display()
            ),
        )
        .unwrap();
        let mut weir = spawn_weir_with(&file, Stdio::piped());
        let stdout = weir.child.stdout.take();
        StdoutWorker { weir, stdout }
    }

    /// Starts reading the output: each event's value goes to `to`.
    pub fn read_into(&mut self, to: mpsc::Sender<String>) -> std::thread::JoinHandle<()> {
        let stdout = self.stdout.take().expect("read once");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let _ = to.send(v["value"].as_str().unwrap_or_default().to_string());
            }
        })
    }

    /// Stops the worker with SIGTERM and checks that it exited cleanly; its
    /// whole log.
    pub fn stop(self) -> String {
        self.weir.stop()
    }
}

/// Counts values from `lines` until `n` distinct ones came, then two
/// seconds more for late duplicates; `log` says what happened if they do
/// not come within a minute.
pub fn count_until(
    lines: &mpsc::Receiver<String>,
    n: usize,
    log: impl Fn() -> String,
) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settle = None;
    while settle.is_none_or(|s| Instant::now() < s) {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events came out:\n{}",
            seen.len(),
            log()
        );
        if let Ok(v) = lines.recv_timeout(Duration::from_millis(100)) {
            *seen.entry(v).or_default() += 1;
        }
        if seen.len() >= n && settle.is_none() {
            settle = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    seen
}

/// Asserts that each of the `n` events came out, and none twice.
pub fn assert_each_once(seen: &BTreeMap<String, usize>, n: usize) {
    let twice: Vec<_> = seen.iter().filter(|(_, &c)| c > 1).collect();
    assert!(
        twice.is_empty(),
        "came out twice: {} of {n}, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(seen.len(), n, "every event came out");
}
