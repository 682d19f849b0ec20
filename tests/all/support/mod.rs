//! The tests' one support kit; topic modules import from here and never
//! from each other. Here: one runtime per test process, paths to the plugins
//! that `plugins/build.sh` built, WAT fixtures and in-memory runs. Child
//! processes and free ports: `process`; broker processes: `brokers`; Kafka
//! and NATS helpers: `kafka`, `nats`; starting a pipeline in this process
//! and running it until a condition holds: `harness`; a source whose worker
//! gives a partition up: `revocable`; a `weir run` worker writing to its
//! stdout: `stdout_worker`; the counting pipeline under load: `counting`.

pub mod brokers;
pub mod counting;
pub mod harness;
pub mod kafka;
pub mod nats;
pub mod process;
pub mod revocable;
pub mod stdout_worker;

pub use process::{free_port, spawn_weir, spawn_weir_with, weir, Process};

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use weir::runtime::{
    CompiledPlugin, InstanceSettings, LogTag, Runtime, RuntimeOptions, StageInstance,
};
use weir::Event;

/// The process-wide runtime (one engine, as in production).
pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        // WEIR_TEST_LOG=debug shows weir's logs while debugging a test.
        if let Ok(filter) = std::env::var("WEIR_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        Runtime::new(RuntimeOptions {
            cache_dir: Runtime::default_cache_dir(),
        })
        .expect("runtime")
    })
    .clone()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A built plugin: `plugins/dist/<name>` (examples) or
/// `plugins/dist/fixtures/<name>`. Missing artifacts fail the test: the
/// README's test command builds them first.
pub fn plugin_path(name: &str) -> PathBuf {
    let dist = root().join("plugins/dist");
    let p = [dist.join(name), dist.join("fixtures").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "plugin {name} is not built: run plugins/build.sh (the README's test command does)"
            )
        });
    p
}

/// Loads a built plugin.
pub fn load(name: &str) -> CompiledPlugin {
    runtime()
        .load(&plugin_path(name))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Loads a WAT fixture from `tests/fixtures/<name>.wat`.
pub fn load_wat(name: &str) -> CompiledPlugin {
    let path = root().join("tests/fixtures").join(format!("{name}.wat"));
    let wasm = wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    runtime()
        .load_bytes(&path, &wasm)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Settings with defaults and the given config pairs.
pub fn settings(config: &[(&str, &str)]) -> InstanceSettings {
    InstanceSettings {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tag: Arc::new(LogTag {
            pipeline: "test".into(),
            stage: "stage".into(),
        }),
        ..InstanceSettings::default()
    }
}

/// A fresh instance of `plugin`.
pub fn instance(plugin: &CompiledPlugin, settings: &InstanceSettings) -> StageInstance {
    StageInstance::new(&runtime(), plugin, settings).unwrap_or_else(|e| panic!("{e}"))
}

/// Events with these values.
pub fn events(values: &[&str]) -> Vec<Event> {
    values
        .iter()
        .map(|v| Event::from_value(v.as_bytes().to_vec()))
        .collect()
}

/// The values of events, as strings.
pub fn values(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.value).into_owned())
        .collect()
}

/// What a pipeline run through memory endpoints produced.
pub struct Ran {
    pub out: Vec<Event>,
    pub dead: Vec<Event>,
    pub commits: std::collections::BTreeMap<u32, u64>,
    pub report: weir::pipeline::RunReport,
}

/// A pipeline from TOML text; `{dist}` stands for `plugins/dist`.
pub fn pipeline(toml: &str) -> weir::config::Pipeline {
    let dist = root().join("plugins/dist");
    let text = toml.replace("{dist}", &dist.display().to_string());
    weir::config::Pipeline::parse(&root().join("tests/inline.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `pipeline` over `events` (partition, event) with memory endpoints.
pub fn run_memory(pipeline: &weir::config::Pipeline, events: Vec<(u32, Event)>) -> Ran {
    let source = weir::source::MemorySource::from_events(events);
    let commits = source.commits();
    let (endpoints, out, dead) = harness::memory(source);
    let report = tokio_rt()
        .block_on(async {
            let run = harness::start(pipeline, harness::with_endpoints(endpoints)).await;
            run.finished().await
        })
        .unwrap_or_else(|e| panic!("{e}"));
    Ran {
        out: out.events(),
        dead: dead.events(),
        commits: commits.snapshot(),
        report,
    }
}

/// A header's value as a string.
pub fn header(e: &Event, name: &str) -> String {
    String::from_utf8_lossy(
        e.header(name)
            .unwrap_or_else(|| panic!("no header {name} on {e:?}")),
    )
    .into_owned()
}

/// A tokio runtime for tests that drive the async side themselves.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `f` every 50 ms until it holds; fails the test after `secs`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `weir run <p>` with stdin piped, killed when the test ends.
pub fn run_with_stdin(p: &std::path::Path) -> Process {
    let mut c = weir();
    c.args(["run", p.to_str().unwrap()])
        .stdin(std::process::Stdio::piped());
    Process::spawn(c)
}

/// The Prometheus text a worker serves on loopback `port`, if it answers.
pub fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}
