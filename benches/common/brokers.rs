//! What the benches share: broker processes, plugins, the stage tables of
//! a pipeline, the start of `main` and the native loops' JetStream reader.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir::runtime::{Runtime, RuntimeOptions};

/// The allocator of the `weir` binary, so host-side costs are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../tests/all/support/process.rs"]
mod process;
// The tests' broker processes (their `super::process` is the one above).
#[path = "../../tests/all/support/brokers.rs"]
mod test_brokers;
pub use test_brokers::{NatsServer, Tansu};

/// A Tansu broker on a free port; returns it and its bootstrap address.
pub fn tansu() -> (Tansu, String) {
    let t = Tansu::start();
    let brokers = t.brokers.clone();
    (t, brokers)
}

/// Creates `topic` with `partitions` partitions on `brokers`.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// A JetStream-enabled nats-server on a free port; returns it and its URL.
pub fn nats() -> (NatsServer, String) {
    let n = NatsServer::start();
    let url = n.url();
    (n, url)
}

/// A plugin in `plugins/dist`, which `plugins/build.sh` must have built.
pub fn dist(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugins/dist")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run plugins/build.sh first",
        p.display()
    );
    p
}

/// `n` stages: the identity core module, then the counter component, then
/// the identity component.
pub fn stages(n: usize) -> String {
    stages_of(&["identity.core.wasm", "counter.wasm", "identity.wasm"][..n])
}

/// The Rust filter (orders of at least 10), enrich and router examples as
/// three stages, in the form whose file names end in `ext` (`wasm` or
/// `core.wasm`).
#[allow(dead_code)] // not every bench that includes this file uses it
pub fn examples_as_stages(ext: &str) -> String {
    [
        ("filter", "{ field = \"amount\", min = 10 }"),
        ("enrich", "{ currency = \"EUR\" }"),
        ("router", "{ field = \"type\" }"),
    ]
    .iter()
    .map(|(name, config)| {
        format!(
            "[[stage]]\nname = \"{name}\"\nplugin = \"{}\"\nconfig = {config}\nstateless = true\n",
            dist(&format!("{name}.{ext}")).display()
        )
    })
    .collect()
}

/// One stage per plugin file of `plugins/dist`; all but counters
/// stateless.
pub fn stages_of(plugins: &[&str]) -> String {
    plugins
        .iter()
        .enumerate()
        .map(|(i, plugin)| {
            // Every stage but a counter keeps no state: marked stateless,
            // as its user would.
            let stateless = !plugin.contains("counter");
            format!(
                "[[stage]]\nname = \"s{i}\"\nplugin = \"{}\"\nstateless = {stateless}\n",
                dist(plugin).display()
            )
        })
        .collect()
}

/// What a bench's `main` works with.
pub struct Bench {
    /// The wasm runtime, with the machine's artifact cache.
    pub rt: Arc<Runtime>,
    /// A tokio runtime of 2 workers.
    pub tokio: tokio::runtime::Runtime,
    /// The arguments after `--`, without cargo's `--bench`.
    pub args: Vec<String>,
}

impl Bench {
    /// `None` under `cargo test --benches`, which only checks that benches
    /// build. Logs go to stderr when `WEIR_BENCH_LOG` holds a filter.
    pub fn start() -> Option<Bench> {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        if args.iter().any(|a| a == "--test" || a == "--list") {
            return None;
        }
        if let Ok(filter) = std::env::var("WEIR_BENCH_LOG") {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
        }
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: Runtime::default_cache_dir(),
        })
        .unwrap();
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Some(Bench { rt, tokio, args })
    }

    /// Whether the first argument, if any, asks for `part`.
    pub fn wants(&self, part: &str) -> bool {
        self.args.first().is_none_or(|a| a == part)
    }
}

/// The messages of a new durable pull consumer `name` on `stream`: what the
/// native JetStream passthroughs read.
pub async fn native_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
    name: &str,
) -> async_nats::jetstream::consumer::pull::Stream {
    js.get_stream(stream)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(name.into()),
            // The consumer and pulls weir's JetStream source uses: the
            // server's default (1000 waiting for acks) and async-nats'
            // pulls (200, expiring after 30 s) would hold the baseline back.
            max_ack_pending: weir::config::JETSTREAM_MAX_ACK_PENDING,
            ..Default::default()
        })
        .await
        .unwrap()
        .stream()
        .max_messages_per_batch(1000)
        .expires(std::time::Duration::from_secs(5))
        .heartbeat(std::time::Duration::from_millis(2500))
        .messages()
        .await
        .unwrap()
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
