//! Keyed state: a counter per key over a file of events, with persistent
//! checkpoints to the directory store, for 10, 10,000 and 1,000,000
//! distinct keys, measured in one run. The counter that exports its whole
//! state after every batch (`counter.wasm`) against the one whose counts
//! the host holds (`keyed_counter.wasm`): events/s until the last output
//! and until the run stopped (its last checkpoint saved), each with its
//! ratio to the same plugin's 10-key run, and checkpoint bytes written per
//! second; then how long the directory store takes to restore the
//! 1,000,000-key state.
//!
//! `cargo bench --bench keyed_state` (needs `plugins/build.sh` first);
//! `WEIR_BENCH_EVENTS` changes the 1,000,000 events, `WEIR_BENCH_KEYS`
//! (e.g. `1000000`, or `10,1000000`) runs only those key counts (for a
//! profile of one). `WEIR_BENCH_ROUNDS=N` runs the sizes N times, one
//! after the other in each round, and prints medians: each ratio is taken
//! against the same round's 10-key run, so a machine that slows down for
//! a while moves both sides of it. Prints a markdown table; BENCHMARKS.md
//! records a run.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
#[path = "common/brokers.rs"]
mod common;
use common::{dist, median, Bench};
use weir::checkpoint::{CheckpointStore, DirStore};
use weir::config::Pipeline;
use weir::pipeline::{Endpoints, StartOptions};
use weir::sink::MemorySink;
use weir::source::FileSource;

const SHARDS: u32 = 4;

/// The positive number the environment variable `name` holds, else
/// `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn rounds() -> usize {
    env_count("WEIR_BENCH_ROUNDS", 1)
}

fn events() -> usize {
    env_count("WEIR_BENCH_EVENTS", 1_000_000)
}

/// Whether `WEIR_BENCH_KEYS` (a comma-separated list; every size when
/// unset) names `keys`.
fn chosen(keys: usize) -> bool {
    std::env::var("WEIR_BENCH_KEYS")
        .map_or(true, |v| v.split(',').any(|k| k.trim().parse() == Ok(keys)))
}

/// A JSON Lines file of `n` events over `keys` keys.
fn input(dir: &Path, n: usize, keys: usize) -> std::path::PathBuf {
    let path = dir.join(format!("in-{keys}.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(f, "{{\"key\":\"key-{}\",\"value\":\"{i}\"}}", i % keys).unwrap();
    }
    f.flush().unwrap();
    path
}

/// What one run measured.
struct Measured {
    /// Until the sink has the last output.
    events_per_s: f64,
    /// Until the run stopped: the last checkpoint saved too.
    to_stop_per_s: f64,
    checkpoint_bytes_per_s: f64,
}

fn run(b: &Bench, plugin: &str, input: &Path, state: &Path) -> Measured {
    let toml = format!(
        "name = \"keyed\"\nsource = {{ type = \"file\", path = \"{}\", shards = {SHARDS} }}\n\
         sink = {{ type = \"stdout\" }}\n\
         workers = {{ threads = 2 }}\n\
         checkpoint = {{ store = \"dir\", path = \"{}\", interval = \"{}\" }}\n\
         [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
        input.display(),
        state.display(),
        std::env::var("WEIR_BENCH_INTERVAL").unwrap_or_else(|_| "1s".into()),
        dist(plugin).display()
    );
    let p = Pipeline::parse(Path::new("bench.toml"), &toml).unwrap();
    let n = events() as u64;
    b.tokio.block_on(async {
        let sink = MemorySink::counting();
        let endpoints = Endpoints {
            source: Box::new(FileSource::open(input, SHARDS).await.unwrap()),
            sink: Box::new(sink.clone()),
            dead_letter: Box::new(MemorySink::counting()),
        };
        let options = StartOptions {
            endpoints: Some(endpoints),
            ..StartOptions::default()
        };
        let start = Instant::now();
        let run = weir::pipeline::start(b.rt.clone(), &p, options)
            .await
            .unwrap();
        let counters = run.counters().clone();
        let output = sink.clone();
        let last_output = tokio::spawn(async move {
            while output.count() < n {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            start.elapsed().as_secs_f64()
        });
        run.finished().await.unwrap();
        let took = start.elapsed().as_secs_f64();
        assert_eq!(sink.count(), n, "every event counted");
        Measured {
            events_per_s: n as f64 / last_output.await.unwrap(),
            to_stop_per_s: n as f64 / took,
            checkpoint_bytes_per_s: counters.checkpoint_bytes.load(Ordering::Relaxed) as f64 / took,
        }
    })
}

fn main() {
    let Some(b) = Bench::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (n, rounds) = (events(), rounds());
    println!("{n} events, {SHARDS} shards, 2 worker threads, checkpoints every second to the directory store");
    if rounds > 1 {
        println!("medians of {rounds} rounds; each ratio against the same round's 10-key run");
    }
    println!("\n| plugin | keys | events/s | vs 10 keys | events/s to stop (last save included) | vs 10 keys | checkpoint bytes/s |");
    println!("|---|---|---|---|---|---|---|");
    let mut spread = Vec::new();
    // Exporting the whole state per batch makes a million keys take
    // minutes: the exporting counter runs the first two sizes.
    for (plugin, sizes) in [
        ("counter.wasm", &[10, 10_000][..]),
        ("keyed_counter.wasm", &[10, 10_000, 1_000_000][..]),
    ] {
        let sizes: Vec<usize> = sizes.iter().copied().filter(|&k| chosen(k)).collect();
        let files: Vec<_> = sizes.iter().map(|&k| input(dir.path(), n, k)).collect();
        // Per size, per round: the run, and its ratios to the round's first.
        let mut runs: Vec<Vec<(Measured, f64, f64)>> = sizes.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let mut base = None;
            for (i, &keys) in sizes.iter().enumerate() {
                let state = dir.path().join(format!("state-{plugin}-{keys}-{round}"));
                let m = run(&b, plugin, &files[i], &state);
                let (base, base_stop) = *base.get_or_insert((m.events_per_s, m.to_stop_per_s));
                let ratios = (m.events_per_s / base, m.to_stop_per_s / base_stop);
                runs[i].push((m, ratios.0, ratios.1));
            }
        }
        for (i, &keys) in sizes.iter().enumerate() {
            let of =
                |f: &dyn Fn(&(Measured, f64, f64)) -> f64| median(runs[i].iter().map(f).collect());
            println!(
                "| {plugin} | {keys} | {:.0} k | {:.0}% | {:.0} k | {:.0}% | {:.1} MB/s |",
                of(&|r| r.0.events_per_s) / 1e3,
                100.0 * of(&|r| r.1),
                of(&|r| r.0.to_stop_per_s) / 1e3,
                100.0 * of(&|r| r.2),
                of(&|r| r.0.checkpoint_bytes_per_s) / 1e6
            );
            if rounds > 1 {
                let each: Vec<String> = runs[i]
                    .iter()
                    .map(|r| format!("{:.0}% ({:.0} k)", 100.0 * r.1, r.0.events_per_s / 1e3))
                    .collect();
                spread.push(format!(
                    "{plugin}, {keys} keys, vs 10 keys by round: {}",
                    each.join(", ")
                ));
            }
        }
        for file in files {
            std::fs::remove_file(file).unwrap();
        }
    }
    for line in spread {
        println!("\n{line}");
    }
    if !chosen(1_000_000) {
        return;
    }
    // Restore: what a worker that takes the partitions over reads.
    let state = dir.path().join("state-keyed_counter.wasm-1000000-0");
    let (took, bytes) = b.tokio.block_on(async {
        let store = DirStore::open(&state).unwrap();
        let start = Instant::now();
        let mut bytes = 0;
        for shard in 0..SHARDS {
            let stored = store
                .load("keyed", &format!("shard-{shard}"))
                .await
                .unwrap()
                .unwrap();
            bytes += stored
                .keyed
                .values()
                .flatten()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        }
        (start.elapsed().as_secs_f64(), bytes as f64)
    });
    println!(
        "\nrestore from the directory store: {:.1} MB of keys and values in {:.2} s: {:.1} s per 100 MB",
        bytes / 1e6,
        took,
        took * 100e6 / bytes
    );
}
