//! `weir replay`: a JSONL file through a pipeline, locally. The pipeline's
//! source and sinks are replaced: input from `--input` as one shard (so the
//! output order is the input order), results and dead letters to stdout in
//! the order they are confirmed, batch by batch.

use super::Outcome;
use crate::config::{Pipeline, SourceConfig};
use crate::jsonl::write_event;
use crate::pipeline::{start, Endpoints, RunCounters, RunReport, StartOptions};
use crate::sink::{Sink, SinkError};
use crate::source::FileSource;
use async_trait::async_trait;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_abi::Event;

/// Batches close by size only, so that batch boundaries, and so the
/// interleaving of results and dead letters, do not depend on timing.
const REPLAY_LINGER: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
struct Collected {
    /// Whether lines go to stdout as they are confirmed.
    echo: bool,
    /// Lines kept for comparison.
    lines: Option<Vec<String>>,
}

/// Both sinks of a replay: lines to stdout, kept when comparing.
#[derive(Clone)]
struct ReplaySink(Arc<Mutex<Collected>>);

#[async_trait]
impl Sink for ReplaySink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        for e in &events {
            let line = write_event(e);
            if c.echo {
                writeln!(out, "{line}")?;
            }
            if let Some(lines) = c.lines.as_mut() {
                lines.push(line);
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// What a replay gave.
pub(super) struct Replayed {
    /// The run's counts.
    pub report: RunReport,
    /// Events and dead letters as JSON lines, in the order confirmed (when
    /// kept).
    pub lines: Option<Vec<String>>,
}

/// Runs `input` through `pipeline`'s stages as one shard, batches closing
/// by size only. Lines go to stdout with `echo`, and are kept with `keep`.
pub(super) fn replay_file(
    mut pipeline: Pipeline,
    input: &Path,
    echo: bool,
    keep: bool,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<Replayed> {
    pipeline.source = SourceConfig::File {
        path: input.to_owned(),
        shards: 1,
    };
    pipeline.batch.linger = REPLAY_LINGER;
    // Output is collected here, not produced: no transaction to join.
    pipeline.delivery = crate::config::Delivery::AtLeastOnce;
    let collected = Arc::new(Mutex::new(Collected {
        echo,
        lines: keep.then(Vec::new),
    }));
    let runtime = super::runtime()?;
    let report = super::tokio()?.block_on(async {
        if let Some(addr) = metrics {
            crate::metrics::install_exporter(Some(addr))?;
        }
        let sink = ReplaySink(collected.clone());
        let endpoints = Endpoints {
            source: Box::new(FileSource::open(input, 1).await?),
            sink: Box::new(sink.clone()),
            dead_letter: Box::new(sink),
        };
        let options = StartOptions {
            endpoints: Some(endpoints),
            ..StartOptions::default()
        };
        let run = start(runtime, &pipeline, options).await?;
        let progress = std::io::stderr()
            .is_terminal()
            .then(|| tokio::spawn(show_progress(run.counters().clone())));
        let r = run.finished().await;
        if let Some(p) = progress {
            p.abort();
            eprint!("\r\x1b[2K");
        }
        anyhow::Ok(r?)
    })?;
    let lines = collected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .lines
        .take();
    Ok(Replayed { report, lines })
}

/// Replays `input` through `file`'s stages; compares with `expect` if given.
pub fn replay(
    file: &Path,
    input: &Path,
    expect: Option<&Path>,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<Outcome> {
    let pipeline = Pipeline::load(file)?;
    let expected = match expect {
        Some(p) => {
            Some(std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let started = Instant::now();
    let replayed = replay_file(pipeline, input, true, expected.is_some(), metrics)?;
    let report = replayed.report;
    eprintln!(
        "replayed {} events in {:.2?}: {} out, {} dead letters",
        report.events_in,
        started.elapsed(),
        report.events_out,
        report.dead_letters
    );
    let (Some(expected), Some(expect)) = (expected, expect) else {
        return Ok(Outcome::Success);
    };
    Ok(report_differences(
        expect,
        &compare(&expected, &replayed.lines.unwrap_or_default()),
    ))
}

/// Prints `diffs` against the file `expect`; the outcome they make.
pub(super) fn report_differences(expect: &Path, diffs: &[String]) -> Outcome {
    if diffs.is_empty() {
        eprintln!("output matches {}", expect.display());
        return Outcome::Success;
    }
    eprintln!("output differs from {}:", expect.display());
    for d in diffs.iter().take(10) {
        eprintln!("{d}");
    }
    if diffs.len() > 10 {
        eprintln!("… and {} more differences", diffs.len() - 10);
    }
    Outcome::Problems
}

/// Line-by-line differences, comparing lines as JSON values (so key order
/// and spacing do not matter).
pub(super) fn compare(expected: &str, got: &[String]) -> Vec<String> {
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    let as_json = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    let mut diffs = Vec::new();
    for i in 0..expected.len().max(got.len()) {
        match (expected.get(i), got.get(i)) {
            (Some(e), Some(g)) if as_json(e).is_some() && as_json(e) == as_json(g) => {}
            (Some(e), Some(g)) => diffs.push(format!(
                "  line {}:\n    expected {e}\n    got      {g}",
                i + 1
            )),
            (Some(e), None) => diffs.push(format!("  line {}: expected {e}, got nothing", i + 1)),
            (None, Some(g)) => diffs.push(format!("  line {}: got {g}, expected nothing", i + 1)),
            (None, None) => {}
        }
    }
    diffs
}

/// Events/s and dead letters so far, on one refreshed stderr line.
async fn show_progress(c: Arc<RunCounters>) {
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let out = c.events_out.load(Ordering::Relaxed);
        let dead = c.dead_letters.load(Ordering::Relaxed);
        let rate = (out + dead) as f64 / start.elapsed().as_secs_f64().max(1e-3);
        eprint!("\r\x1b[2K{out} out, {dead} dead letters, {rate:.0} events/s");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compare_ignores_key_order_and_reports_lines() {
        assert!(super::compare("{\"a\":1,\"b\":2}\n", &["{\"b\":2,\"a\":1}".into()]).is_empty());
        let d = super::compare("{\"a\":1}\n{\"a\":2}\n", &["{\"a\":1}".into()]);
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("line 2"));
    }
}
