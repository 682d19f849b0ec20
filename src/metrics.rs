//! Prometheus metrics. Names follow Prometheus conventions (`_total` for
//! counters, base units in the name); labels are `pipeline`, `stage` and,
//! for failures, `kind`.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `weir_events_in_total` | counter | pipeline |
//! | `weir_events_out_total` | counter | pipeline |
//! | `weir_dead_letters_total` | counter | pipeline, stage, kind |
//! | `weir_batch_duration_seconds` | histogram | pipeline |
//! | `weir_stage_events_in_total` | counter | pipeline, stage |
//! | `weir_stage_events_out_total` | counter | pipeline, stage |
//! | `weir_stage_call_duration_seconds` | histogram | pipeline, stage |
//! | `weir_stage_fuel_consumed` | histogram | pipeline, stage |
//! | `weir_stage_traps_total` | counter | pipeline, stage, kind |
//! | `weir_stage_instances_started_total` | counter | pipeline, stage |
//! | `weir_stage_instances_recycled_total` | counter | pipeline, stage |

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Running totals of one stage, kept in the process for the admin API's
/// status (Prometheus handles cannot be read back). They count across
/// versions of the stage, like the Prometheus counters of the same labels.
#[derive(Debug, Default)]
pub struct StageTally {
    /// Events handed to the stage (a batch retried to isolate a poison
    /// event counts again).
    pub events_in: AtomicU64,
    /// Events the stage emitted.
    pub events_out: AtomicU64,
    /// Events the stage sent to the dead-letter sink (errors and traps).
    pub errors: AtomicU64,
    /// Instance slots the worker threads hold now: one per partition and
    /// thread, or one per thread for a stateless stage. A swap starts this
    /// many instances of the new version before the threads switch.
    pub slots: AtomicU64,
    /// `process` calls that returned (a retried piece of a batch counts).
    pub calls: AtomicU64,
    /// Fuel those calls used, in all.
    pub fuel: AtomicU64,
    /// The most fuel one call used.
    pub max_fuel: AtomicU64,
    /// Wall time of those calls, in nanoseconds, in all.
    pub call_nanos: AtomicU64,
    /// The longest call, in nanoseconds.
    pub max_call_nanos: AtomicU64,
    /// Keyed state held on this worker, per partition: keys and bytes.
    pub state: Mutex<std::collections::BTreeMap<u32, (usize, u64)>>,
}

/// Every stage's tally, by pipeline and stage name.
type Tallies = Mutex<HashMap<(String, String), Arc<StageTally>>>;

/// The tally of `stage` of `pipeline`, created on first use.
pub fn stage_tally(pipeline: &str, stage: &str) -> Arc<StageTally> {
    static TALLIES: OnceLock<Tallies> = OnceLock::new();
    let mut tallies = TALLIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    tallies
        .entry((pipeline.to_string(), stage.to_string()))
        .or_default()
        .clone()
}

/// Handles for one pipeline's own metrics.
#[derive(Clone)]
pub struct PipelineMetrics {
    /// Events read from the source.
    pub events_in: Counter,
    /// Events confirmed by the sink.
    pub events_out: Counter,
    /// From batch formation to sink confirmation.
    pub batch_duration: Histogram,
    pipeline: String,
}

impl PipelineMetrics {
    /// Registers the handles for `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        let p = pipeline.to_string();
        PipelineMetrics {
            events_in: counter!("weir_events_in_total", "pipeline" => p.clone()),
            events_out: counter!("weir_events_out_total", "pipeline" => p.clone()),
            batch_duration: histogram!("weir_batch_duration_seconds", "pipeline" => p.clone()),
            pipeline: p,
        }
    }

    /// Counts one dead letter.
    pub fn dead_letter(&self, stage: &str, kind: &'static str) {
        counter!("weir_dead_letters_total", "pipeline" => self.pipeline.clone(), "stage" => stage.to_string(), "kind" => kind).increment(1);
        if !stage.starts_with('(') {
            stage_tally(&self.pipeline, stage)
                .errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Handles for one stage.
#[derive(Clone)]
pub struct StageMetrics {
    /// Events handed to the stage.
    events_in: Counter,
    /// Events the stage emitted.
    events_out: Counter,
    /// The same counts, readable.
    tally: Arc<StageTally>,
    /// Wall time of one `process` call.
    call_duration: Histogram,
    /// Fuel used by one `process` call.
    fuel: Histogram,
    /// Instances created (the first, and replacements after traps).
    pub instances_started: Counter,
    /// Instances replaced because their memory passed half the limit.
    pub instances_recycled: Counter,
    pipeline: String,
    stage: String,
}

impl StageMetrics {
    /// Registers the handles for `stage` of `pipeline`.
    pub fn new(pipeline: &str, stage: &str) -> Self {
        let (p, s) = (pipeline.to_string(), stage.to_string());
        StageMetrics {
            events_in: counter!("weir_stage_events_in_total", "pipeline" => p.clone(), "stage" => s.clone()),
            events_out: counter!("weir_stage_events_out_total", "pipeline" => p.clone(), "stage" => s.clone()),
            call_duration: histogram!("weir_stage_call_duration_seconds", "pipeline" => p.clone(), "stage" => s.clone()),
            fuel: histogram!("weir_stage_fuel_consumed", "pipeline" => p.clone(), "stage" => s.clone()),
            instances_started: counter!("weir_stage_instances_started_total", "pipeline" => p.clone(), "stage" => s.clone()),
            instances_recycled: counter!("weir_stage_instances_recycled_total", "pipeline" => p.clone(), "stage" => s.clone()),
            tally: stage_tally(&p, &s),
            pipeline: p,
            stage: s,
        }
    }

    /// Records one `process` call: its wall time and the fuel it used.
    pub fn called(&self, took: std::time::Duration, fuel: u64) {
        self.call_duration.record(took.as_secs_f64());
        self.fuel.record(fuel as f64);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let t = &self.tally;
        t.calls.fetch_add(1, Ordering::Relaxed);
        t.fuel.fetch_add(fuel, Ordering::Relaxed);
        t.max_fuel.fetch_max(fuel, Ordering::Relaxed);
        t.call_nanos.fetch_add(nanos, Ordering::Relaxed);
        t.max_call_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Counts `n` events handed to the stage.
    pub fn handed(&self, n: u64) {
        self.events_in.increment(n);
        self.tally.events_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` events the stage emitted.
    pub fn emitted(&self, n: u64) {
        self.events_out.increment(n);
        self.tally.events_out.fetch_add(n, Ordering::Relaxed);
    }

    /// A worker thread opened `n` instance slots (`n` < 0: closed them).
    pub fn slots(&self, n: i64) {
        if n >= 0 {
            self.tally.slots.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            self.tally
                .slots
                .fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// The gauges of `partition`'s keyed state.
    fn state_gauges(&self, partition: u32, keys: usize, bytes: u64) {
        let p = partition.to_string();
        gauge!("weir_state_keys", "pipeline" => self.pipeline.clone(), "stage" => self.stage.clone(), "partition" => p.clone()).set(keys as f64);
        gauge!("weir_state_bytes", "pipeline" => self.pipeline.clone(), "stage" => self.stage.clone(), "partition" => p).set(bytes as f64);
    }

    /// The keyed state of `partition` now holds `keys` keys, `bytes` bytes.
    pub fn state_size(&self, partition: u32, keys: usize, bytes: u64) {
        self.state_gauges(partition, keys, bytes);
        self.tally
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition, (keys, bytes));
    }

    /// The worker let `partition` go, with its keyed state.
    pub fn state_forgotten(&self, partition: u32) {
        let removed = self
            .tally
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&partition);
        if removed.is_some() {
            self.state_gauges(partition, 0, 0);
        }
    }

    /// Counts one trap of `kind`.
    pub fn trap(&self, kind: &'static str) {
        counter!("weir_stage_traps_total", "pipeline" => self.pipeline.clone(), "stage" => self.stage.clone(), "kind" => kind).increment(1);
    }
}

/// Counts a hot swap (`kind` = `swap`), a rollback (`rollback`) or a
/// refused new version (`refused`) of a stage.
pub fn swapped(pipeline: &str, stage: &str, kind: &'static str) {
    counter!("weir_stage_swaps_total", "pipeline" => pipeline.to_string(), "stage" => stage.to_string(), "kind" => kind).increment(1);
}

/// Installs the Prometheus recorder and, when `addr` is given, serves
/// `/metrics` on it. The handle renders the same text (the admin API serves
/// it too). Needs a running tokio runtime.
///
/// # Errors
/// When the address cannot be bound or a recorder is already installed.
pub fn install_exporter(addr: Option<SocketAddr>) -> Result<PrometheusHandle, BuildError> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("weir_stage_fuel_consumed".into()),
            &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9],
        )?;
    match addr {
        Some(addr) => {
            let (recorder, exporter) = builder.with_http_listener(addr).build()?;
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)?;
            tokio::spawn(exporter);
            Ok(handle)
        }
        None => builder.install_recorder(),
    }
}

/// A partition's checkpoint (keyed state included) was restored in `took`.
pub fn state_restored(pipeline: &str, took: std::time::Duration) {
    histogram!("weir_state_restore_seconds", "pipeline" => pipeline.to_string())
        .record(took.as_secs_f64());
}
