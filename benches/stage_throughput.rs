//! Stage throughput: the same transform as native Rust compiled into the
//! host, as a component and as a core module, measured in one run.
//!
//! `cargo bench --bench stage_throughput` (needs `plugins/build.sh` first).
//! Prints markdown tables; BENCHMARKS.md records a run and how to read it.

#[path = "../plugins/sdk/rust/src/json.rs"]
mod json;
#[path = "../plugins/examples/rust/enrich/src/transform.rs"]
mod transform;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
#[path = "common/brokers.rs"]
mod common;
use common::{dist, Bench};
use weir::config::Pipeline;
use weir::pipeline::{prepare_stages, Endpoints, StartOptions};
use weir::runtime::{InstanceSettings, Runtime, RuntimeOptions, StageInstance};
use weir::sink::MemorySink;
use weir::source::MemorySource;
use weir::{Event, EventError, Output};

const BATCH: usize = 512;

/// A transform compiled into the host.
type Native = fn(Vec<Event>) -> Output;
/// Each measurement runs at least this long; the best of `ROUNDS` counts.
const MEASURE: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 3;

fn identity_batch() -> Vec<Event> {
    (0..BATCH)
        .map(|i| Event {
            key: Some(format!("key-{i}").into_bytes()),
            value: vec![b'a' + (i % 26) as u8; 256],
            ..Event::default()
        })
        .collect()
}

fn enrich_batch() -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            let mut v = format!(
                r#"{{"id":{i},"amount":{}.{:02},"customer":"customer-{}","items":[{{"sku":"A-1","qty":2}},{{"sku":"B-7","qty":1}}],"note":""#,
                i * 7 % 1000,
                i % 100,
                i % 97
            );
            while v.len() < 1024 - 2 {
                v.push('x');
            }
            v.push_str("\"}");
            Event::from_value(v.into_bytes())
        })
        .collect()
}

fn native_identity(batch: Vec<Event>) -> Output {
    Output {
        events: batch,
        errors: vec![],
    }
}

fn native_enrich(batch: Vec<Event>) -> Output {
    let mut out = Output {
        events: Vec::with_capacity(batch.len()),
        errors: vec![],
    };
    for (i, mut e) in batch.into_iter().enumerate() {
        match transform::enrich(&e.value, "EUR") {
            Ok(v) => {
                e.value = v;
                out.events.push(e);
            }
            Err(message) => out.errors.push(EventError {
                index: i as u32,
                message,
            }),
        }
    }
    out
}

/// Best-of-rounds nanoseconds per event for `f` over copies of `template`.
fn per_event(template: &[Event], mut f: impl FnMut(Vec<Event>) -> usize) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        f(template.to_vec());
    }
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let (start, mut events) = (Instant::now(), 0usize);
        while start.elapsed() < MEASURE {
            let n = f(template.to_vec());
            assert_eq!(n, template.len(), "every event comes out");
            events += n;
        }
        best = best.min(start.elapsed().as_nanos() as f64 / events as f64);
    }
    best
}

fn wasm(rt: &Runtime, file: &str, template: &[Event], form: Option<&str>) -> f64 {
    let core = file.ends_with(".core.wasm");
    if form.is_some_and(|f| (f == "core") != core) {
        return f64::NAN;
    }
    let plugin = rt.load(&dist(file)).unwrap();
    let settings = InstanceSettings {
        config: vec![("currency".into(), "EUR".into())],
        limits: weir::runtime::StageLimits {
            fuel_per_event: u64::MAX / 100_000,
            ..Default::default()
        },
        ..InstanceSettings::default()
    };
    let mut inst = StageInstance::new(rt, &plugin, &settings).unwrap();
    per_event(template, |mut b| inst.process(&mut b).unwrap().events.len())
}

fn stage_level(rt: &Runtime, workload: Option<&str>, form: Option<&str>) {
    println!("\n### Stage calls: one batch of {BATCH} events per call, one thread\n");
    println!("| workload | native ns/event | component ns/event | core module ns/event | component overhead | core overhead | component events/s | core events/s | component / native | core / native |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let cases: [(&str, Vec<Event>, Native, &str); 2] = [
        (
            "identity, 256 B",
            identity_batch(),
            native_identity,
            "identity",
        ),
        (
            "JSON enrich, 1 KiB",
            enrich_batch(),
            native_enrich,
            "enrich",
        ),
    ];
    for (label, template, native, plugin) in cases {
        if workload.is_some_and(|w| w != plugin) {
            continue;
        }
        let n = per_event(&template, |b| native(b).events.len());
        let c = wasm(rt, &format!("{plugin}.wasm"), &template, form);
        let m = wasm(rt, &format!("{plugin}.core.wasm"), &template, form);
        println!(
            "| {label} | {n:.0} | {c:.0} | {m:.0} | +{:.0} ns | +{:.0} ns | {:.2} M | {:.2} M | {:.0}% | {:.0}% |",
            c - n,
            m - n,
            1e3 / c,
            1e3 / m,
            100.0 * n / c,
            100.0 * n / m
        );
    }
}

fn pipeline_level(rt: &Arc<Runtime>, tokio: &tokio::runtime::Runtime) {
    const EVENTS: usize = 400_000;
    println!("\n### Whole engine: memory source → batcher → 1 worker thread → memory sink, {EVENTS} events of 256 B\n");
    println!("| stages | events/s | vs. no stage |");
    println!("|---|---|---|");
    let mut baseline = None;
    for (label, stage) in [
        ("none (passthrough)", None),
        ("identity component", Some("identity.wasm")),
        ("identity core module", Some("identity.core.wasm")),
    ] {
        let stage_toml = stage.map_or(String::new(), |s| {
            format!(
                "[[stage]]\nname = \"s\"\nplugin = \"{}\"\nstateless = true\n",
                dist(s).display()
            )
        });
        let toml = format!("name = \"bench\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\nbatch = {{ max_events = {BATCH}, linger = \"1s\" }}\nworkers = {{ threads = 1 }}\n{stage_toml}");
        let p = Pipeline::parse(Path::new("bench.toml"), &toml).unwrap();
        let mut best = 0f64;
        for _ in 0..ROUNDS {
            let stages = prepare_stages(rt, &p).unwrap();
            let template = identity_batch();
            let events: Vec<(u32, Event)> = (0..EVENTS)
                .map(|i| (0, template[i % BATCH].clone()))
                .collect();
            let sink = MemorySink::counting();
            let endpoints = Endpoints {
                source: Box::new(MemorySource::from_events(events)),
                sink: Box::new(sink.clone()),
                dead_letter: Box::new(MemorySink::counting()),
            };
            let options = StartOptions {
                stages: Some(stages),
                endpoints: Some(endpoints),
                ..StartOptions::default()
            };
            let start = Instant::now();
            tokio
                .block_on(async {
                    let run = weir::pipeline::start(rt.clone(), &p, options).await?;
                    run.finished().await
                })
                .unwrap();
            let rate = EVENTS as f64 / start.elapsed().as_secs_f64();
            assert_eq!(sink.count(), EVENTS as u64);
            best = best.max(rate);
        }
        let base = *baseline.get_or_insert(best);
        println!(
            "| {label} | {:.2} M | {:.0}% |",
            best / 1e6,
            100.0 * best / base
        );
    }
}

fn load_times() {
    println!("\n### Loading and starting (enrich example)\n");
    println!("| form | size | cold compile | cached .cwasm load | instantiate + init | first call (1 event) | later call (1 event) |");
    println!("|---|---|---|---|---|---|---|");
    let cache = tempfile::tempdir().unwrap();
    for file in ["enrich.wasm", "enrich.core.wasm"] {
        // A fresh cache directory: the first load compiles, the second loads.
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.path().join(file)),
        })
        .unwrap();
        let cold = rt.load(&dist(file)).unwrap();
        assert!(!cold.from_cache);
        let warm = rt.load(&dist(file)).unwrap();
        assert!(warm.from_cache);
        let settings = InstanceSettings {
            config: vec![("currency".into(), "EUR".into())],
            ..Default::default()
        };
        let t = Instant::now();
        let mut inst = StageInstance::new(&rt, &warm, &settings).unwrap();
        let instantiate = t.elapsed();
        let (mut a, mut b) = (
            vec![enrich_batch().remove(0)],
            vec![enrich_batch().remove(0)],
        );
        let t = Instant::now();
        inst.process(&mut a).unwrap();
        let first = t.elapsed();
        let t = Instant::now();
        inst.process(&mut b).unwrap();
        let later = t.elapsed();
        println!(
            "| {} | {} KiB | {:.1?} | {:.2?} | {:.0?} | {:.0?} | {:.0?} |",
            if file.ends_with(".core.wasm") {
                "core module"
            } else {
                "component"
            },
            cold.size / 1024,
            cold.load_time,
            warm.load_time,
            instantiate,
            first,
            later
        );
    }
}

/// The JSON enrich example in every language, on one table.
fn languages() {
    println!("\n### The JSON enrich example per language: 1 KiB events, batches of {BATCH}, one thread\n");
    println!("| language | form | events/s | vs. native Rust | fuel/event | size | cold compile | cached load | instantiate + init | first call ({BATCH}) | steady call ({BATCH}) | memory after one call | calls per fresh instance |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let template = enrich_batch();
    let native = per_event(&template, |b| native_enrich(b).events.len());
    println!(
        "| native Rust | compiled into the host | {:.0} k | 100% | — | — | — | — | — | — | — | — | — |",
        1e6 / native
    );
    let cache = tempfile::tempdir().unwrap();
    for (language, file) in [
        ("Rust", "enrich.wasm"),
        ("Rust", "enrich.core.wasm"),
        ("Go", "go/enrich.wasm"),
        ("JavaScript", "js/enrich.wasm"),
        ("Python", "python/enrich.wasm"),
    ] {
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.path().join(file.replace('/', "-"))),
        })
        .unwrap();
        let cold = rt.load(&dist(file)).unwrap();
        let warm = rt.load(&dist(file)).unwrap();
        let settings = InstanceSettings {
            config: vec![("currency".into(), "EUR".into())],
            ..InstanceSettings::default()
        };
        let t = Instant::now();
        let mut inst = StageInstance::new(&rt, &warm, &settings).unwrap();
        let instantiate = t.elapsed();
        let t = Instant::now();
        inst.process(&mut template.clone()).unwrap();
        let first = t.elapsed();
        let t = Instant::now();
        inst.process(&mut template.clone()).unwrap();
        let steady = t.elapsed();
        let fuel = inst.last_fuel() / BATCH as u64;
        let after_one = inst.memory();
        // As the worker does: an instance past half its memory limit is
        // replaced between calls (its instantiation is part of the time).
        let (mut calls, mut fresh) = (0u64, 0u64);
        let ns = per_event(&template, |mut b| {
            let n = inst.process(&mut b).unwrap().events.len();
            calls += 1;
            if inst.memory() > settings.limits.memory / 2 {
                inst = StageInstance::new(&rt, &warm, &settings).unwrap();
                fresh += 1;
            }
            n
        });
        println!(
            "| {language} | {} | {:.0} k | {:.0}% | {fuel} | {:.1} MiB | {:.1?} | {:.1?} | {:.1?} | {:.1?} | {:.1?} | {:.1} MiB | {} |",
            if file.ends_with(".core.wasm") || file.starts_with("go/") {
                "core module"
            } else {
                "component"
            },
            1e6 / ns,
            100.0 * native / ns,
            cold.size as f64 / (1 << 20) as f64,
            cold.load_time,
            warm.load_time,
            instantiate,
            first,
            steady,
            after_one as f64 / (1 << 20) as f64,
            calls
                .checked_div(fresh)
                .map_or_else(|| format!("none in {calls}"), |n| n.to_string())
        );
    }
}

fn main() {
    let Some(bench) = Bench::start() else {
        return;
    };
    let rt = bench.rt.clone();
    println!(
        "## stage_throughput ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // `cargo bench --bench stage_throughput -- stage` runs one part (stage,
    // engine, load or languages); `-- stage identity core` also picks one workload
    // (identity, enrich) and one form (component, core), e.g. for `perf`.
    let workload = bench.args.get(1).cloned();
    let form = bench.args.get(2).cloned();
    if bench.wants("stage") {
        stage_level(&rt, workload.as_deref(), form.as_deref());
    }
    if bench.wants("engine") {
        pipeline_level(&rt, &bench.tokio);
    }
    if bench.wants("load") {
        load_times();
    }
    if bench.wants("languages") {
        languages();
    }
}
