//! End-to-end latency, broker to broker, at a steady input rate: a native
//! passthrough against weir on the same broker in the same run, Kafka
//! (librdkafka's mock cluster, in process) and NATS JetStream (nats-server
//! 2.15).
//! `scripts/brokers.sh` and `plugins/build.sh` first.
//!
//! `cargo bench --bench broker_latency` (`-- kafka` or `-- jetstream` runs
//! one broker only). A producer writes `RATE` JSON orders/s of 256 B, each
//! carrying its send time; a reader of the output takes each event's
//! arrival time. Events sent in the first `WARM_UP` (consumer-group joins,
//! first compiles) are not counted.

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use weir::config::Pipeline;
use weir::pipeline::{start, StartOptions};
use weir::runtime::Runtime;

#[path = "common/brokers.rs"]
mod brokers;
use brokers::{examples_as_stages, native_messages, stages, stages_of, Bench};

/// Events per second the producer writes.
const RATE: u64 = 5_000;
/// Events sent before this are not counted.
const WARM_UP: Duration = Duration::from_secs(3);
/// How long counted events are sent.
const MEASURE: Duration = Duration::from_secs(5);
/// How long the output may take to catch up after the last send.
const DRAIN: Duration = Duration::from_secs(3);

/// Every Kafka consumer here (native, weir's and the reader) waits at most
/// this long for a fetch to fill: a broker may hold a fetch that long even
/// when records arrive (the mock cluster does), and librdkafka's default
/// (500 ms) would then be the latency.
const FETCH_WAIT_MS: &str = "5";

/// The system under test.
enum Variant {
    Native,
    Weir(String),
}

fn variants() -> Vec<(&'static str, Variant)> {
    vec![
        ("native passthrough", Variant::Native),
        (
            "weir, 1 identity stage (core module)",
            Variant::Weir(stages_of(&["identity.core.wasm"])),
        ),
        ("weir, 3 stages", Variant::Weir(stages(3))),
        // The JSON transforms of the throughput bench; they drop the 1% of
        // orders under 10, so 99% of the events sent arrive.
        (
            "weir, 1 filter + enrich stage, serde_json::Value (core module; drops 1%)",
            Variant::Weir(stages_of(&["fixtures/transform_value.core.wasm"])),
        ),
        (
            "weir, 1 filter + enrich stage, serde_json::Value (component; drops 1%)",
            Variant::Weir(stages_of(&["fixtures/transform_value.wasm"])),
        ),
        (
            "weir, 3 stateless stages: filter → enrich → router (core modules; drops 1%)",
            Variant::Weir(examples_as_stages("core.wasm")),
        ),
    ]
}

/// A 256 B JSON order carrying its send time `at` (since the bench's
/// base) in `sent`, which every stage here keeps.
fn stamped(at: Duration, i: u64) -> Vec<u8> {
    let mut v = format!(
        "{{\"sent\":\"{:020}\",\"id\":{i},\"amount\":{}.5,\"note\":\"",
        at.as_micros(),
        i % 1000
    );
    while v.len() < 254 {
        v.push('x');
    }
    v.push_str("\"}");
    v.into_bytes()
}

/// Where the send time is in a value: after `"sent":"`.
const SENT: &[u8] = b"\"sent\":\"";

/// Send time and latency (µs) of arrived events.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(u64, u64)>>>);

impl Arrivals {
    fn record(&self, base: Instant, value: &[u8]) {
        let now = base.elapsed().as_micros() as u64;
        let at = value
            .windows(SENT.len())
            .position(|w| w == SENT)
            .expect("a stamped value")
            + SENT.len();
        let sent: u64 = std::str::from_utf8(&value[at..(at + 20).min(value.len())])
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("a stamped value");

        self.0
            .lock()
            .unwrap()
            .push((sent, now.saturating_sub(sent)));
    }

    /// p50, p99, max (ms) and count of events sent after the warm-up.
    fn summary(&self) -> (f64, f64, f64, usize) {
        let warm = WARM_UP.as_micros() as u64;
        let mut v: Vec<u64> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(sent, _)| *sent >= warm)
            .map(|(_, l)| *l)
            .collect();
        v.sort_unstable();
        if v.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN, 0);
        }
        let ms = |us: u64| us as f64 / 1000.0;
        (
            ms(v[v.len() / 2]),
            ms(v[v.len() * 99 / 100]),
            ms(v[v.len() - 1]),
            v.len(),
        )
    }
}

/// Calls `send` `RATE` times a second for `WARM_UP + MEASURE`; returns how
/// many events were sent after the warm-up.
async fn steady(base: Instant, mut send: impl FnMut(u64, Vec<u8>)) -> u64 {
    let start = Instant::now();
    let (mut i, mut counted) = (0u64, 0u64);
    while start.elapsed() < WARM_UP + MEASURE {
        let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
        while i < due {
            // Counted by its stamp, as the reader counts arrivals: the
            // schedule's own clock started later than `base`.
            let at = base.elapsed();
            if at >= WARM_UP {
                counted += 1;
            }
            send(i, stamped(at, i));
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    counted
}

/// Starts the system under test: the `native` passthrough, or weir on the
/// pipeline that `pipeline(stage tables)` writes.
fn start_system(
    rt: &Arc<Runtime>,
    variant: Variant,
    stop: &watch::Receiver<bool>,
    native: impl std::future::Future<Output = ()> + Send + 'static,
    pipeline: impl FnOnce(&str) -> String,
) -> tokio::task::JoinHandle<()> {
    match variant {
        Variant::Native => tokio::spawn(native),
        Variant::Weir(stage_tables) => spawn_weir(rt, pipeline(&stage_tables), stop.clone()),
    }
}

/// Runs a weir pipeline until `stop`.
fn spawn_weir(
    rt: &Arc<Runtime>,
    toml: String,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let rt = rt.clone();
    tokio::spawn(async move {
        let p = Pipeline::parse(Path::new("bench.toml"), &toml).unwrap();
        let run = start(rt, &p, StartOptions::default()).await.unwrap();
        let _ = stop.wait_for(|s| *s).await;
        run.stop_and_wait().await.unwrap();
    })
}

/// A row: label, p50, p99, max (ms), events counted, events sent.
type Row = (&'static str, f64, f64, f64, usize, u64);

/// Lets the output catch up, stops the system under test and the reader,
/// and summarises a variant.
async fn finish(
    label: &'static str,
    sent: u64,
    stop: watch::Sender<bool>,
    system: tokio::task::JoinHandle<()>,
    reader: tokio::task::JoinHandle<()>,
    arrivals: &Arrivals,
) -> Row {
    tokio::time::sleep(DRAIN).await;
    let _ = stop.send(true);
    let (a, b) = tokio::join!(system, reader);
    a.unwrap();
    b.unwrap();
    let (p50, p99, max, n) = arrivals.summary();
    (label, p50, p99, max, n, sent)
}

fn kafka_consumer(brokers: &str, group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "0")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", FETCH_WAIT_MS)
        .create()
        .unwrap()
}

/// Consume → produce, committing every 512 events (like weir, whose
/// commits follow deliveries).
async fn native_kafka(brokers: String, input: String, output: String, stop: watch::Receiver<bool>) {
    let consumer = kafka_consumer(&brokers, &format!("native-{input}"));
    consumer.subscribe(&[&input]).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut n = 0u64;
    while !*stop.borrow() {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        else {
            continue;
        };
        let rec = FutureRecord::to(&output)
            .payload(m.payload().unwrap_or_default())
            .key(m.key().unwrap_or_default());
        in_flight.push_back(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
        while in_flight.front().is_some_and(|_| in_flight.len() > 1000) {
            in_flight.pop_front().unwrap().await.unwrap().unwrap();
        }
        n += 1;
        if n.is_multiple_of(512) {
            let _ = consumer.commit_message(&m, CommitMode::Async);
        }
    }
}

async fn kafka(rt: &Arc<Runtime>) -> Vec<Row> {
    // librdkafka's mock cluster by default: on Tansu the same run gave the
    // native passthrough a p50 anywhere from 13 to 300 ms, which measures
    // Tansu. `WEIR_BENCH_KAFKA=tansu` runs it on Tansu all the same.
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    let tansu = (std::env::var("WEIR_BENCH_KAFKA").as_deref() == Ok("tansu")).then(brokers::tansu);
    let brokers = match &tansu {
        Some((_, address)) => address.clone(),
        None => mock.bootstrap_servers(),
    };
    let admin: rdkafka::admin::AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let mut rows = Vec::new();
    for (i, (label, variant)) in variants().into_iter().enumerate() {
        let (input, output) = (format!("in-{i}"), format!("out-{i}"));
        if tansu.is_some() {
            let topics = [&input, &output].map(|t| NewTopic::new(t, 3, TopicReplication::Fixed(1)));
            admin
                .create_topics(&topics, &AdminOptions::new())
                .await
                .unwrap();
        } else {
            for t in [&input, &output] {
                mock.create_topic(t, 3, 1).unwrap();
            }
        }
        let base = Instant::now();
        let (stop_tx, stop) = watch::channel(false);
        let system = start_system(
            rt,
            variant,
            &stop,
            native_kafka(brokers.clone(), input.clone(), output.clone(), stop.clone()),
            |stage_tables| {
                format!(
                "name = \"bench\"\n[source]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ngroup = \"weir-{i}\"\n\
                 topics = [\"{input}\"]\nproperties = {{ \"session.timeout.ms\" = \"3000\", \"heartbeat.interval.ms\" = \"500\", \"fetch.wait.max.ms\" = \"{FETCH_WAIT_MS}\" }}\n\
                 [batch]\nmax_events = 512\nlinger = \"5ms\"\n{stage_tables}\
                 [sink]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{output}\"\n"
            )
            },
        );
        let arrivals = Arrivals::default();
        // The reader polls on a thread of its own, off the runtime that
        // runs the system under test.
        let reader = {
            let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", format!("reader-{i}"))
                .set("enable.auto.commit", "false")
                .set("fetch.wait.max.ms", FETCH_WAIT_MS)
                .create()
                .unwrap();
            // Assigned, not subscribed: no group, no rebalance re-reading.
            let mut tpl = rdkafka::TopicPartitionList::new();
            for p in 0..3 {
                tpl.add_partition_offset(&output, p, rdkafka::Offset::Beginning)
                    .unwrap();
            }
            consumer.assign(&tpl).unwrap();
            let (arrivals, stop) = (arrivals.clone(), stop.clone());
            tokio::task::spawn_blocking(move || {
                while !*stop.borrow() {
                    match consumer.poll(Duration::from_millis(20)) {
                        Some(Ok(m)) => arrivals.record(base, m.payload().unwrap_or_default()),
                        Some(Err(e)) => eprintln!("reader: {e}"),
                        None => {}
                    }
                }
            })
        };
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "1")
            .create()
            .unwrap();
        let sent = steady(base, |i, v| {
            let key = format!("k{}", i % 64);
            // Deliveries are tracked by librdkafka; the futures may go.
            let _ = producer.send_result(FutureRecord::to(&input).key(&key).payload(&v));
        })
        .await;
        rows.push(finish(label, sent, stop_tx, system, reader, &arrivals).await);
    }
    rows
}

/// Pull → publish (awaiting the publish ack) → ack the input.
async fn native_jetstream(
    js: jetstream::Context,
    input: String,
    output: String,
    stop: watch::Receiver<bool>,
) {
    let mut messages = native_messages(&js, &input, "native").await;
    while !*stop.borrow() {
        let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(100), messages.next()).await
        else {
            continue;
        };
        js.publish(output.clone(), m.payload.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        m.ack().await.unwrap();
    }
}

async fn jetstream(rt: &Arc<Runtime>) -> Vec<Row> {
    let (_broker, url) = brokers::nats();
    let client = async_nats::connect(&url).await.unwrap();
    let js = jetstream::new(client.clone());
    let mut rows = Vec::new();
    for (i, (label, variant)) in variants().into_iter().enumerate() {
        let (input, output) = (format!("IN{i}"), format!("out{i}"));
        for (name, subject) in [
            (input.clone(), format!("in{i}.>")),
            (format!("OUT{i}"), output.clone()),
        ] {
            js.create_stream(stream::Config {
                name,
                subjects: vec![subject],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let base = Instant::now();
        let (stop_tx, stop) = watch::channel(false);
        let arrivals = Arrivals::default();
        let mut sub = client.subscribe(output.clone()).await.unwrap();
        let reader = {
            let (arrivals, mut stop) = (arrivals.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        m = sub.next() => match m {
                            Some(m) => arrivals.record(base, &m.payload),
                            None => break,
                        },
                    }
                }
            })
        };
        let system = start_system(
            rt,
            variant,
            &stop,
            native_jetstream(js.clone(), input.clone(), output.clone(), stop.clone()),
            |stage_tables| {
                format!(
                "name = \"bench\"\n[source]\ntype = \"jetstream\"\nurl = \"{url}\"\nstream = \"{input}\"\n\
                 consumer = \"weir\"\n[batch]\nmax_events = 512\nlinger = \"5ms\"\n{stage_tables}\
                 [sink]\ntype = \"jetstream\"\nurl = \"{url}\"\nsubject = \"{output}\"\n"
            )
            },
        );
        // Stamped values go, in order, to a publisher task; a third task
        // awaits the publish acks, so that neither holds up the schedule.
        let (values_tx, mut values_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel();
        let publisher = {
            let js = js.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while let Some(v) = values_rx.recv().await {
                    let ack = js
                        .publish(format!("in{i}.{}", n % 3), v.into())
                        .await
                        .unwrap();
                    acks_tx.send(ack).unwrap();
                    n += 1;
                }
            })
        };
        let acker = tokio::spawn(async move {
            while let Some(ack) = acks_rx.recv().await {
                let ack: jetstream::context::PublishAckFuture = ack;
                ack.await.unwrap();
            }
        });
        let sent = steady(base, |_, v| values_tx.send(v).unwrap()).await;
        drop(values_tx);
        publisher.await.unwrap();
        acker.await.unwrap();
        rows.push(finish(label, sent, stop_tx, system, reader, &arrivals).await);
    }
    rows
}

fn table(title: &str, rows: &[Row]) {
    println!(
        "\n### {title}: {RATE} events/s of 256 B, {} s counted\n",
        MEASURE.as_secs()
    );
    println!("| variant | p50 | p99 | max | events counted / sent |");
    println!("|---|---|---|---|---|");
    for (label, p50, p99, max, n, sent) in rows {
        println!("| {label} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms | {n} / {sent} |");
    }
}

fn main() {
    let Some(bench) = Bench::start() else {
        return;
    };
    if bench.wants("kafka") {
        let broker = match std::env::var("WEIR_BENCH_KAFKA").as_deref() {
            Ok("tansu") => "Tansu",
            _ => "librdkafka mock cluster",
        };
        let rows = bench.tokio.block_on(kafka(&bench.rt));
        table(&format!("Kafka ({broker}) → Kafka"), &rows);
    }
    if bench.wants("jetstream") {
        let rows = bench.tokio.block_on(jetstream(&bench.rt));
        table("JetStream → JetStream", &rows);
    }
}
