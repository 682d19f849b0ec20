//! Swap latency: the worst end-to-end event latency while a stage is
//! swapped, against the worst in a steady window of the same run, at a
//! steady input rate.
//!
//! `cargo bench --bench swap_latency` (needs `plugins/build.sh` first).
//! Three cases: a swap to a Rust artifact the cache already holds, one
//! whose compilation (off the worker threads) overlaps the stream, and a
//! swap to the Python counter (an 18 MB component that compiles for
//! seconds) compiled during the swap.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
#[path = "common/brokers.rs"]
mod common;
use common::dist;
use weir::config::Pipeline;
use weir::pipeline::reload::Artifact;
use weir::pipeline::{prepare_stages, start, Endpoints, StartOptions};
use weir::runtime::{Runtime, RuntimeOptions};
use weir::sink::{Sink, SinkError};
use weir::source::MemorySource;
use weir::Event;

/// Events per millisecond fed to the pipeline.
const RATE_PER_MS: u64 = 20;
/// How long the stream goes on after the swap call returned.
const AFTER: Duration = Duration::from_millis(700);

/// Records, per event, when it was sent (in its value) and when it arrived.
#[derive(Clone)]
struct Stamps {
    base: Instant,
    seen: Arc<Mutex<Vec<(u64, u64)>>>,
}

#[async_trait]
impl Sink for Stamps {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        let now = self.base.elapsed().as_micros() as u64;
        let mut seen = self.seen.lock().unwrap();
        for e in events {
            let sent: u64 = String::from_utf8_lossy(&e.value).parse().unwrap_or(0);
            seen.push((sent, now));
        }
        Ok(())
    }
}

struct Outcome {
    steady_p99_us: u64,
    steady_max_us: u64,
    swap_max_us: u64,
    /// The worst of events sent while the new version compiled (until 50 ms
    /// before the swap call returned), if the call took that long.
    compiling_max_us: Option<u64>,
    swap_took: Duration,
}

/// Swaps the running stage to `artifact` at `swap_at`; the steady window
/// runs from 300 ms to 100 ms before that.
fn measure(runtime: Arc<Runtime>, artifact: PathBuf, swap_at: Duration) -> Outcome {
    let text = format!(
        "name = \"swap\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
         [workers]\nthreads = 2\n[batch]\nmax_events = 64\nlinger = \"1ms\"\n\
         [[stage]]\nname = \"count\"\nplugin = \"{}\"\n",
        dist("counter.wasm").display()
    );
    let p = Pipeline::parse(Path::new("bench.toml"), &text).unwrap();
    let stages = prepare_stages(&runtime, &p).unwrap();
    let base = Instant::now();
    let stamps = Stamps {
        base,
        seen: Arc::default(),
    };
    let (feed, source) = MemorySource::channel(4096);
    let endpoints = Endpoints {
        source: Box::new(source),
        sink: Box::new(stamps.clone()),
        dead_letter: Box::new(weir::sink::MemorySink::new()),
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (swap_start, swap_took) = tokio.block_on(async {
        let options = StartOptions {
            stages: Some(stages),
            endpoints: Some(endpoints),
            ..StartOptions::default()
        };
        let run = start(runtime, &p, options).await.unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let producing = done.clone();
        let producer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut i = 0u64;
            while !producing.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..RATE_PER_MS {
                    let sent = base.elapsed().as_micros() as u64;
                    let mut e = Event::from_value(sent.to_string());
                    e.key = Some(format!("k{}", i % 8).into_bytes());
                    let _ = feed.send((i % 4) as u32, e).await;
                    i += 1;
                }
            }
        });
        tokio::time::sleep(swap_at).await;
        let swap_start = base.elapsed();
        run.reloader()
            .deploy("count", Artifact::Path(artifact))
            .await
            .unwrap();
        let took = base.elapsed() - swap_start;
        tokio::time::sleep(AFTER).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        producer.await.unwrap();
        run.finished().await.unwrap();
        (swap_start, took)
    });
    let seen = stamps.seen.lock().unwrap().clone();
    let latency = |from: Duration, to: Duration| -> Vec<u64> {
        let (from, to) = (from.as_micros() as u64, to.as_micros() as u64);
        let mut v: Vec<u64> = seen
            .iter()
            .filter(|(sent, _)| (from..to).contains(sent))
            .map(|(sent, got)| got - sent)
            .collect();
        v.sort_unstable();
        v
    };
    let steady = latency(
        Duration::from_millis(300),
        swap_at - Duration::from_millis(100),
    );
    let during = latency(
        swap_start - Duration::from_millis(20),
        swap_start + swap_took + Duration::from_millis(50),
    );
    let switch = (swap_start + swap_took).saturating_sub(Duration::from_millis(50));
    let compiling = (switch > swap_start)
        .then(|| latency(swap_start, switch).last().copied())
        .flatten();
    Outcome {
        steady_p99_us: steady[steady.len() * 99 / 100],
        steady_max_us: *steady.last().unwrap(),
        swap_max_us: *during.last().unwrap(),
        compiling_max_us: compiling,
        swap_took,
    }
}

fn main() {
    let cached = Runtime::new(RuntimeOptions {
        cache_dir: Runtime::default_cache_dir(),
    })
    .unwrap();
    // Warm the cache with the new version.
    cached.load(&dist("counter.core.wasm")).unwrap();
    let uncached = Runtime::new(RuntimeOptions { cache_dir: None }).unwrap();

    println!(
        "| case | steady p99 | steady max | max during swap | of which while compiling | added to the worst batch | swap call took |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    // The steady window is about as long as the swap's: a longer window
    // catches more of the machine's own latency spikes.
    let rust = Duration::from_millis(1500);
    let python = Duration::from_secs(9);
    for (name, runtime, to, swap_at) in [
        (
            "Rust counter, new version cached",
            cached,
            "counter.core.wasm",
            rust,
        ),
        (
            "Rust counter, compiled during the swap",
            uncached.clone(),
            "counter.core.wasm",
            rust,
        ),
        (
            "to the Python counter, compiled during the swap",
            uncached,
            "python/counter.wasm",
            python,
        ),
    ] {
        let o = measure(runtime, dist(to), swap_at);
        let added = o.swap_max_us as i64 - o.steady_max_us as i64;
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:+.2} ms | {:.0} ms |",
            o.steady_p99_us as f64 / 1000.0,
            o.steady_max_us as f64 / 1000.0,
            o.swap_max_us as f64 / 1000.0,
            o.compiling_max_us.map_or("–".to_string(), |us| format!(
                "{:.2} ms",
                us as f64 / 1000.0
            )),
            added as f64 / 1000.0,
            o.swap_took.as_secs_f64() * 1000.0
        );
    }
}
