//! Broker to broker through weir, against a native passthrough on the same
//! broker in the same run: Kafka (a Tansu process) and NATS JetStream
//! (nats-server 2.15). `scripts/brokers.sh` and `plugins/build.sh` first.
//!
//! `cargo bench --bench broker_throughput`. Each variant moves the same
//! number of 256 B events from an input topic/stream to its own output; the
//! clock runs from the first event consumed to the last one confirmed by the
//! broker, so consumer-group joins are not counted. The native baselines and
//! the weir variants take turns, round after round (`WEIR_BENCH_ROUNDS`,
//! default one round per variant), each reading the whole input with a
//! consumer of its own; each round starts one variant later than the one
//! before, so every variant runs in every place of the order. Each run
//! writes to an output made anew for it, so the broker holds the same data
//! in every run. The table gives medians, and each run is compared with the
//! baselines' runs of its round.
//!
//! Kafka has two baselines: a passthrough whose producer is idempotent, as
//! weir's Kafka sink must be (the like-for-like one), and one with
//! librdkafka's plain producer, which shows what idempotence itself costs.
//!
//! `WEIR_BENCH_EVENTS` sets the events per run (default 600,000);
//! `WEIR_BENCH_VARIANTS=core,3 stages` runs only the weir variants whose
//! label contains one of the words (`enrich` runs the JSON enrich example of
//! each language, which the default run leaves out; `keyed` the keyed
//! counter at-least-once and exactly-once, on Kafka); `WEIR_BENCH_SINK_PROPS` adds a line to
//! the weir Kafka sink's table (e.g. `properties = { "linger.ms" = "5" }`).

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use weir::config::Pipeline;
use weir::pipeline::{start, StartOptions};
use weir::runtime::Runtime;

#[path = "common/brokers.rs"]
mod brokers;
use brokers::{examples_as_stages, native_messages, stages, stages_of, Bench};
#[path = "throughput/report.rs"]
mod report;
// The JSON filter + enrich the transform variants run, the same source
// compiled into the native loops and into the plugins.
#[path = "../plugins/fixtures/rust/transform_typed/src/transform.rs"]
mod transform_typed;
#[path = "../plugins/fixtures/rust/transform_value/src/transform.rs"]
mod transform_value;
// The Rust filter, enrich and router examples' own code, for the native
// loop that does the three stages' steps (`crate::json` is the SDK's
// `weir_plugin::json`, which the enrich uses).
#[path = "../plugins/examples/rust/enrich/src/transform.rs"]
mod enrich;
#[path = "../plugins/examples/rust/filter/src/transform.rs"]
mod filter;
#[path = "../plugins/sdk/rust/src/json.rs"]
#[allow(dead_code)]
mod json;
#[path = "../plugins/examples/rust/router/src/transform.rs"]
mod router;

/// What each native row does between its source and its sink, in the
/// order of their labels: the two passthroughs, the filter + enrich written
/// with `Value` and typed, the three examples' steps.
const TRANSFORMS: [Option<Transform>; 5] = [
    None,
    None,
    Some(transform_value::transform),
    Some(transform_typed::transform),
    Some(three_steps),
];

/// How many native rows run: the transform loops only when a weir variant
/// that transforms does.
fn native_rows() -> usize {
    let labels: Vec<_> = variants().into_iter().map(|(l, _)| l).collect();
    if labels.iter().any(|l| l.contains("3 stateless")) {
        5
    } else if labels.iter().any(|l| l.contains("filter")) {
        4
    } else {
        2
    }
}

/// The three stateless stages' steps in one function: the filter (orders
/// of at least 10), the enrich (EUR), the router (by `type`, which the
/// bench's events do not have: they stay on the sink's topic).
fn three_steps(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if !filter::keep(value, "amount", 10.0)? {
        return Ok(None);
    }
    let enriched = enrich::enrich(value, "EUR")?;
    let _topic = router::route(&enriched, "type");
    Ok(Some(enriched))
}

/// A transform of one event's value: the new value, `None` to drop it.
type Transform = fn(&[u8]) -> Result<Option<Vec<u8>>, String>;

/// How many of the first `n` events the transform keeps: it drops orders
/// under 10, and [`value`] gives event `i` the amount `i % 1000 + 0.5`.
fn kept(n: usize) -> usize {
    n - (n / 1000 * 10 + (n % 1000).min(10))
}
use report::{events, reset_peak_rss, rounds, table, Clock, Row, Run, BROKER};

fn value(i: usize) -> String {
    let mut v = format!("{{\"id\":{i},\"amount\":{}.5,\"note\":\"", i % 1000);
    while v.len() < 254 {
        v.push('x');
    }
    v.push_str("\"}");
    v
}

/// The native Kafka passthrough's delivered offsets, committed every 512.
#[derive(Default)]
struct Delivered {
    next: std::collections::BTreeMap<i32, i64>,
    since_commit: usize,
    count: usize,
}

impl Delivered {
    async fn pop(
        &mut self,
        in_flight: &mut VecDeque<(DeliveryFuture, i32, i64)>,
        consumer: &StreamConsumer,
        clock: &mut Clock,
    ) {
        let (f, partition, offset) = in_flight.pop_front().unwrap();
        f.await.unwrap().unwrap();
        self.count += 1;
        clock.confirmed(self.count);
        self.next.insert(partition, offset + 1);
        self.since_commit += 1;
        if self.since_commit == 512 {
            self.commit(consumer);
        }
    }

    fn commit(&mut self, consumer: &StreamConsumer) {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (&p, &next) in &self.next {
            tpl.add_partition_offset("in", p, rdkafka::Offset::Offset(next))
                .unwrap();
        }
        consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Async)
            .unwrap();
        self.since_commit = 0;
    }
}

/// Runs a weir pipeline until [`events`] events were confirmed, clocked from
/// the first batch.
async fn weir_rate(rt: &Arc<Runtime>, toml: &str, outputs: usize) -> Run {
    let p = Pipeline::parse(Path::new("bench.toml"), toml).unwrap();
    let run = start(rt.clone(), &p, StartOptions::default())
        .await
        .unwrap();
    let (c, stopper) = (run.counters().clone(), run.stopper());
    let clock = tokio::spawn(async move {
        let mut clock = None;
        loop {
            if clock.is_none() && (c.batches.load(Ordering::Relaxed) > 0) {
                clock = Some(Clock::start());
            }
            let out = c.events_out.load(Ordering::Relaxed) as usize;
            if let Some(clock) = clock.as_mut() {
                clock.confirmed(out);
                if out >= outputs {
                    stopper.stop();
                    return clock.finish();
                }
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    });
    run.finished().await.unwrap();
    clock.await.unwrap()
}

async fn kafka(rt: &Arc<Runtime>) -> Vec<Row> {
    let (broker, brokers) = brokers::tansu();
    BROKER.store(broker.pid(), Ordering::Relaxed);
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    admin
        .create_topics(
            &[
                NewTopic::new("in", 3, TopicReplication::Fixed(1)),
                // The exactly-once variant's dead-letter topic.
                NewTopic::new("dlq", 1, TopicReplication::Fixed(1)),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    for i in 0..events() {
        let (k, v) = (format!("k{}", i % 64), value(i));
        pending.push_back(
            producer
                .send_result(FutureRecord::to("in").key(&k).payload(&v))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        if pending.len() > 10_000 {
            pending.pop_front().unwrap().await.unwrap().unwrap();
        }
    }
    for f in pending.drain(..) {
        f.await.unwrap().unwrap();
    }

    let sinkprops = std::env::var("WEIR_BENCH_SINK_PROPS").unwrap_or_default();
    let all = [
        "native rdkafka passthrough, idempotent producer (as weir's)",
        "native rdkafka passthrough, plain producer",
        "native rdkafka loop, filter + enrich with serde_json::Value, idempotent producer",
        "native rdkafka loop, filter + enrich with typed serde structs, idempotent producer",
        "native rdkafka loop, the filter, enrich and router examples' steps, idempotent producer",
    ];
    let natives = &all[..native_rows()];
    let pipeline = |i: usize, round: usize, stages: &str| {
        let (top, stages) = top_level(&stages.replace("{brokers}", &brokers));
        format!(
            "name = \"bench-{i}-{round}\"\n{top}[source]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ngroup = \"weir-{i}-{round}\"\ntopics = [\"in\"]\n\
             properties = {{ \"session.timeout.ms\" = \"3000\", \"heartbeat.interval.ms\" = \"500\" }}\n[batch]\nmax_events = 512\nlinger = \"5ms\"\n{stages}\
             [sink]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"out-{}\"\n{sinkprops}",
            natives.len() + i
        )
    };
    // The first baseline produces with weir's producer settings (an
    // idempotent producer, as the Kafka sink must be); the second with
    // librdkafka's plain producer.
    let idempotent: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let native = |round: usize, n: usize| {
        let producer = if n == 1 { &producer } else { &idempotent };
        native_kafka(
            &brokers,
            producer,
            format!("native-{n}-{round}"),
            n,
            TRANSFORMS[n],
        )
    };
    // Row `r` produces to topic `out-{r}`, deleted and made anew before each
    // run, so that the broker holds as much data in every run (it slows down
    // as it fills).
    let fresh = |row: usize| {
        let admin = &admin;
        async move {
            let topic = format!("out-{row}");
            let _ = admin
                .delete_topics(&[topic.as_str()], &AdminOptions::new())
                .await;
            let created = admin
                .create_topics(
                    &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
                    &AdminOptions::new(),
                )
                .await
                .unwrap();
            assert!(created.iter().all(Result::is_ok), "{created:?}");
        }
    };
    rounds_of(rt, natives, native, pipeline, fresh, true).await
}

/// The native rows (they come first): the baselines of the table.
fn baselines(rows: &[Row]) -> usize {
    rows.iter()
        .take_while(|r| r.label.starts_with("native"))
        .count()
}

/// The lines of a variant before its first table (top-level keys such as
/// `delivery`), and the rest.
fn top_level(stages: &str) -> (String, String) {
    let at = stages.lines().position(|l| l.starts_with('[')).unwrap_or(0);
    let lines: Vec<&str> = stages.lines().collect();
    let join = |l: &[&str]| l.iter().map(|l| format!("{l}\n")).collect::<String>();
    (join(&lines[..at]), join(&lines[at..]))
}

/// (a) native: consume → produce, no wasm, deliveries tracked in flight,
/// and, like weir at-least-once, the offsets of delivered events committed
/// every 512 deliveries.
async fn native_kafka(
    brokers: &str,
    producer: &FutureProducer,
    group: String,
    row: usize,
    transform: Option<Transform>,
) -> Run {
    let topic = format!("out-{row}");
    reset_peak_rss();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "0")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    consumer.subscribe(&["in"]).unwrap();
    let mut clock = None;
    let mut in_flight: VecDeque<(DeliveryFuture, i32, i64)> = VecDeque::new();
    let mut delivered = Delivered::default();
    for _ in 0..events() {
        let m = consumer.recv().await.unwrap();
        let clock = clock.get_or_insert_with(Clock::start);
        let payload = m.payload().unwrap_or_default();
        let transformed = match transform {
            None => None,
            Some(t) => match t(payload).unwrap() {
                Some(v) => Some(v),
                None => continue,
            },
        };
        let rec = FutureRecord::to(&topic)
            .payload(transformed.as_deref().unwrap_or(payload))
            .key(m.key().unwrap_or_default());
        let f = producer.send_result(rec).map_err(|(e, _)| e).unwrap();
        in_flight.push_back((f, m.partition(), m.offset()));
        if in_flight.len() > 10_000 {
            delivered.pop(&mut in_flight, &consumer, clock).await;
        }
    }
    let clock = clock.as_mut().unwrap();
    while !in_flight.is_empty() {
        delivered.pop(&mut in_flight, &consumer, clock).await;
    }
    delivered.commit(&consumer);
    clock.finish()
}

/// Runs the native baselines and every weir variant, in turns, for
/// [`rounds`] rounds; `native(round, n)` runs baseline `n` of `natives`,
/// `pipeline(i, round, stage tables)` gives a weir variant's pipeline text,
/// and `fresh(row)` readies the output of the row about to run. The native
/// rows come first in the table.
async fn rounds_of<F, Fut, R, RFut>(
    rt: &Arc<Runtime>,
    natives: &[&str],
    native: F,
    pipeline: impl Fn(usize, usize, &str) -> String,
    fresh: R,
    kafka: bool,
) -> Vec<Row>
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = Run>,
    R: Fn(usize) -> RFut,
    RFut: std::future::Future<Output = ()>,
{
    let variants: Vec<_> = variants()
        .into_iter()
        .filter(|(label, _)| kafka || !label.contains("Kafka only"))
        .collect();
    let mut rows: Vec<Row> = natives
        .iter()
        .map(|label| Row {
            label: (*label).into(),
            runs: vec![],
        })
        .collect();
    rows.extend(variants.iter().map(|(label, _)| Row {
        label: (*label).into(),
        runs: vec![],
    }));
    for round in 0..rounds(rows.len()) {
        // Each round starts one row later, so that no row always runs
        // first or last (the broker holds more data with every run).
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.rotate_left(round % rows.len());
        for row in order {
            fresh(row).await;
            let run = match row.checked_sub(natives.len()) {
                None => native(round, row).await,
                Some(i) => {
                    reset_peak_rss();
                    let (label, stages) = &variants[i];
                    let outputs = if label.contains("filter") {
                        kept(events())
                    } else {
                        events()
                    };
                    weir_rate(rt, &pipeline(i, round, stages), outputs).await
                }
            };
            eprintln!(
                "round {round}: {} at {:.0} k events/s",
                rows[row].label,
                run.rate / 1e3
            );
            rows[row].runs.push(run);
        }
    }
    rows
}

/// The weir variants: a label and its stage tables.
/// `WEIR_BENCH_VARIANTS=core,3 stages` keeps the variants whose label
/// contains one of the comma-separated words (the native baselines always
/// run). The JSON enrich of each language runs only when asked for
/// (`WEIR_BENCH_VARIANTS=enrich`): rounds grow with the number of rows.
fn variants() -> Vec<(&'static str, String)> {
    let all = [
        (
            "weir, 1 identity stage (core module)",
            stages_of(&["identity.core.wasm"]),
            true,
        ),
        (
            "weir, 1 identity stage (component)",
            stages_of(&["identity.wasm"]),
            true,
        ),
        ("weir, 3 stages", stages(3), true),
        (
            "weir, 1 enrich stage (Rust core module)",
            stages_of(&["enrich.core.wasm"]),
            false,
        ),
        (
            "weir, 1 enrich stage (Rust component)",
            stages_of(&["enrich.wasm"]),
            false,
        ),
        (
            "weir, 1 enrich stage (Go)",
            stages_of(&["go/enrich.wasm"]),
            false,
        ),
        (
            "weir, 1 enrich stage (JavaScript)",
            stages_of(&["js/enrich.wasm"]),
            false,
        ),
        (
            "weir, 1 enrich stage (Python)",
            stages_of(&["python/enrich.wasm"]),
            false,
        ),
        // The Rust examples as three stateless stages, against the native
        // loop that runs their code in one function.
        (
            "weir, 3 stateless stages: filter → enrich → router (Rust core modules)",
            examples_as_stages("core.wasm"),
            false,
        ),
        (
            "weir, 3 stateless stages: filter → enrich → router (Rust components)",
            examples_as_stages("wasm"),
            false,
        ),
        // The JSON filter + enrich of the native transform loops.
        (
            "weir, 1 filter + enrich stage, serde_json::Value (Rust core module)",
            stages_of(&["fixtures/transform_value.core.wasm"]),
            false,
        ),
        (
            "weir, 1 filter + enrich stage, serde_json::Value (Rust component)",
            stages_of(&["fixtures/transform_value.wasm"]),
            false,
        ),
        (
            "weir, 1 filter + enrich stage, typed serde (Rust core module)",
            stages_of(&["fixtures/transform_typed.core.wasm"]),
            false,
        ),
        (
            "weir, 1 filter + enrich stage, typed serde (Rust component)",
            stages_of(&["fixtures/transform_typed.wasm"]),
            false,
        ),
        // The keyed counter over the input's 64 keys, its counts in the
        // host's keyed state, persisted as each mode does (Kafka only).
        (
            "weir, keyed counter, at-least-once, checkpoints to a directory every 5 s (Kafka only)",
            format!(
                "{}[checkpoint]\nstore = \"dir\"\npath = \"{}\"\n",
                stages_of(&["keyed_counter.wasm"]),
                std::env::temp_dir()
                    .join(format!("weir-bench-keyed-{}", std::process::id()))
                    .display()
            ),
            false,
        ),
        (
            "weir, keyed counter, exactly-once, changes to the changelog topic in each transaction (Kafka only)",
            format!(
                "delivery = \"exactly-once\"\n{}[dead_letter]\ntype = \"kafka\"\nbrokers = \"{{brokers}}\"\ntopic = \"dlq\"\n",
                stages_of(&["keyed_counter.wasm"])
            ),
            false,
        ),
    ];
    let wanted = std::env::var("WEIR_BENCH_VARIANTS").unwrap_or_default();
    all.into_iter()
        .filter(|(label, _, by_default)| {
            if wanted.is_empty() {
                *by_default
            } else {
                wanted.split(',').any(|w| label.contains(w.trim()))
            }
        })
        .map(|(label, stages, _)| (label, stages))
        .collect()
}

async fn jetstream(rt: &Arc<Runtime>) -> Vec<Row> {
    let (broker, url) = brokers::nats();
    BROKER.store(broker.pid(), Ordering::Relaxed);
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    js.create_stream(stream::Config {
        name: "IN".into(),
        subjects: vec!["in.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut acks = VecDeque::new();
    for i in 0..events() {
        acks.push_back(
            js.publish(format!("in.{}", i % 3), value(i).into())
                .await
                .unwrap(),
        );
        if acks.len() == 4_000 {
            acks.pop_front().unwrap().await.unwrap();
        }
    }
    for a in acks.drain(..) {
        a.await.unwrap();
    }

    // Row `r` publishes to subject `out{r}`, stored by stream `OUT{r}`,
    // made anew before each run: message ids repeat from round to round, and
    // the server would otherwise drop the later rounds' events as
    // duplicates, which is cheaper than storing them.
    let fresh = |row: usize| {
        let js = js.clone();
        async move {
            let name = format!("OUT{row}");
            let _ = js.delete_stream(&name).await;
            js.create_stream(stream::Config {
                name,
                subjects: vec![format!("out{row}")],
                ..Default::default()
            })
            .await
            .unwrap();
        }
    };
    let all = [
        "native async-nats passthrough, Nats-Msg-Id set (as weir's)",
        "native async-nats passthrough, no message ids",
        "native async-nats loop, filter + enrich with serde_json::Value, Nats-Msg-Id set",
        "native async-nats loop, filter + enrich with typed serde structs, Nats-Msg-Id set",
        "native async-nats loop, the filter, enrich and router examples' steps, Nats-Msg-Id set",
    ];
    let natives = &all[..native_rows()];
    let pipeline = |i: usize, round: usize, stages: &str| {
        let out = natives.len() + i;
        format!(
            "name = \"bench\"\n[source]\ntype = \"jetstream\"\nurl = \"{url}\"\nstream = \"IN\"\nconsumer = \"weir-{i}-{round}\"\n\
             [batch]\nmax_events = 512\nlinger = \"5ms\"\n{stages}[sink]\ntype = \"jetstream\"\nurl = \"{url}\"\nsubject = \"out{out}\"\n"
        )
    };
    let native = |round: usize, n: usize| native_jetstream(&js, round, n, TRANSFORMS[n]);
    rounds_of(rt, natives, native, pipeline, fresh, false).await
}

/// (a) native: pull → publish with acks → ack the inputs. Baseline 0 sets
/// `Nats-Msg-Id` from the input's stream sequence, as weir's JetStream sink
/// must (the server then deduplicates); baseline 1 sets no header.
async fn native_jetstream(
    js: &jetstream::Context,
    round: usize,
    n: usize,
    transform: Option<Transform>,
) -> Run {
    reset_peak_rss();
    let mut messages = native_messages(js, "IN", &format!("native-{n}-{round}")).await;
    let subject = format!("out{n}");
    let mut clock = None;
    let mut window = Vec::new();
    let (mut n_read, mut n_acked) = (0, 0);
    while n_read < events() {
        // A pull can fail (a missed heartbeat while the server is busy);
        // the stream goes on, as weir's source does.
        let m = match messages.next().await.unwrap() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("native jetstream: {e}");
                continue;
            }
        };
        n_read += 1;
        let clock = clock.get_or_insert_with(Clock::start);
        let payload = match transform {
            None => m.payload.clone(),
            Some(t) => match t(&m.payload).unwrap() {
                Some(v) => v.into(),
                None => {
                    // Dropped: acknowledged at once, nothing published.
                    m.ack().await.unwrap();
                    continue;
                }
            },
        };
        let ack = if n != 1 {
            let seq = m.info().unwrap().stream_sequence;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("IN:{seq}").as_str());
            js.publish_with_headers(subject.clone(), headers, payload)
                .await
        } else {
            js.publish(subject.clone(), payload).await
        };
        window.push((ack.unwrap(), m));
        if window.len() == 512 {
            for (ack, m) in window.drain(..) {
                ack.await.unwrap();
                m.ack().await.unwrap();
            }
            n_acked += 512;
            clock.confirmed(n_acked);
        }
    }
    for (ack, m) in window.drain(..) {
        ack.await.unwrap();
        m.ack().await.unwrap();
    }
    clock.unwrap().finish()
}

fn main() {
    let Some(bench) = Bench::start() else {
        return;
    };
    // `-- kafka` or `-- jetstream` runs one broker only.
    if bench.wants("kafka") {
        let kafka = bench.tokio.block_on(kafka(&bench.rt));
        table("Kafka (Tansu) → weir → Kafka", &kafka, baselines(&kafka));
    }
    if bench.wants("jetstream") {
        let js = bench.tokio.block_on(jetstream(&bench.rt));
        table("JetStream → weir → JetStream", &js, baselines(&js));
    }
}
