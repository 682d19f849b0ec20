//! Wiring one pipeline: source → batcher → worker pool → sinks →
//! completion tracker → source commits.

use super::batch::Processed;
use super::persist::Persistence;
use super::stage::StageSpec;
use super::started::Started;
use super::tracker::CompletionTracker;
use crate::config::Pipeline;
use crate::metrics::PipelineMetrics;
use crate::runtime::{CallError, LoadError, Runtime};
use crate::sink::{Confirmation, Sink, SinkError};
use crate::source::{Source, SourceError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Batches handed to the sinks whose confirmation is still outstanding.
/// librdkafka's idempotent producer sends a partition's requests in rounds
/// (BENCHMARKS.md says why), and each round takes what is queued when the
/// one before is answered, so whole batches queued behind it make each round
/// carry more: with 8, weir reached 91–94% of a native passthrough with the
/// same producer; with 32, 99–100% (`broker_throughput`).
const SINK_IN_FLIGHT: usize = 32;

/// What the sink loop does next.
enum Next {
    /// The oldest batch in flight was confirmed (or failed).
    Confirmed(Result<(), PipelineError>),
    /// A processed batch, or `None` when the workers are done.
    Batch(Option<Processed>),
    /// Time (or a request) to save a checkpoint.
    Save,
}

/// A batch handed to the sinks, waiting for their confirmations.
struct InFlight {
    ack: super::batch::AckToken,
    created: std::time::Instant,
    n_out: u64,
    n_dead: u64,
    /// The stateful stages' state after the batch (with persistence).
    states: Vec<(String, Vec<u8>)>,
    /// Both sinks' confirmations.
    confirm: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PipelineError>> + Send>>,
}

impl InFlight {
    /// Hands the batch's events to the sink and its dead letters to the
    /// dead-letter sink.
    async fn hand_over(
        done: Processed,
        sink: &mut dyn Sink,
        dlq: &mut dyn Sink,
    ) -> Result<InFlight, PipelineError> {
        let (n_out, n_dead) = (done.events.len() as u64, done.dead_letters.len() as u64);
        let states = done.states;
        let sink_confirm = enqueue(sink, done.events, PipelineError::Sink).await?;
        let dead_confirm = enqueue(dlq, done.dead_letters, PipelineError::DeadLetter).await?;
        let confirm = Box::pin(async move {
            for (c, wrap) in [
                (
                    sink_confirm,
                    PipelineError::Sink as fn(SinkError) -> PipelineError,
                ),
                (dead_confirm, PipelineError::DeadLetter),
            ] {
                if let Some(c) = c {
                    c.await.map_err(wrap)?;
                }
            }
            Ok(())
        });
        Ok(InFlight {
            ack: done.ack,
            created: done.created,
            n_out,
            n_dead,
            states,
            confirm,
        })
    }

    /// Counts the confirmed batch and commits what is now contiguous.
    fn count_and_commit(
        self,
        metrics: &PipelineMetrics,
        counters: &RunCounters,
        tracker: &mut CompletionTracker,
        committer: &dyn crate::source::Committer,
        persistence: Option<&mut Persistence>,
    ) {
        count_delivered(metrics, counters, self.created, self.n_out, self.n_dead);
        if let Some((partition, position)) = tracker.complete(self.ack) {
            committer.commit(partition, position);
            if let Some(p) = persistence {
                p.confirmed(committer, partition, position, self.states);
            }
        }
    }
}

/// Hands `events` to `sink` unless there are none; `wrap` says which sink
/// failed.
async fn enqueue(
    sink: &mut dyn Sink,
    events: Vec<weir_abi::Event>,
    wrap: fn(SinkError) -> PipelineError,
) -> Result<Option<Confirmation>, PipelineError> {
    if events.is_empty() {
        return Ok(None);
    }
    sink.enqueue(events).await.map(Some).map_err(wrap)
}

/// Counts one delivered batch in the metrics and the live counters.
pub(super) fn count_delivered(
    metrics: &PipelineMetrics,
    counters: &RunCounters,
    created: std::time::Instant,
    n_out: u64,
    n_dead: u64,
) {
    metrics.events_out.increment(n_out);
    metrics
        .batch_duration
        .record(created.elapsed().as_secs_f64());
    counters.events_out.fetch_add(n_out, Ordering::Relaxed);
    counters.dead_letters.fetch_add(n_dead, Ordering::Relaxed);
    counters.batches.fetch_add(1, Ordering::Relaxed);
}

/// Why a pipeline could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A stage's plugin could not be loaded.
    #[error("stage {stage}: {source}")]
    Load {
        /// The stage.
        stage: String,
        /// Why.
        source: LoadError,
    },
    /// A stage's plugin is not signed as the pipeline requires.
    #[error("stage {stage}: refused: {source}")]
    Signature {
        /// The stage.
        stage: String,
        /// Why.
        source: crate::signing::SignError,
    },
    /// A stage's first instance did not start (its `init` refused, say).
    #[error("stage {stage}: cannot start: {source}")]
    Start {
        /// The stage.
        stage: String,
        /// Why.
        source: CallError,
    },
    /// The checkpoint store failed at start.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink failed; the batch it held was not acknowledged.
    #[error("sink: {0}")]
    Sink(SinkError),
    /// The dead-letter sink failed; the batch it held was not acknowledged.
    #[error("dead-letter sink: {0}")]
    DeadLetter(SinkError),
    /// An exactly-once transaction was aborted; its events and offsets were
    /// discarded and are read again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// Internal failure (a thread could not start, or panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Live counts of a running pipeline, readable from another task (progress
/// display, admin status).
#[derive(Debug, Default)]
pub struct RunCounters {
    /// Events read from the source.
    pub events_in: AtomicU64,
    /// Events confirmed by the sink.
    pub events_out: AtomicU64,
    /// Dead letters confirmed by the dead-letter sink.
    pub dead_letters: AtomicU64,
    /// Batches fully acknowledged.
    pub batches: AtomicU64,
    /// Checkpoints saved to the store.
    pub checkpoints_saved: AtomicU64,
    /// Whether the pipeline keeps persistent checkpoints.
    pub checkpointing: std::sync::atomic::AtomicBool,
    /// Asks the running pipeline to save a checkpoint now.
    pub checkpoint_now: tokio::sync::Notify,
    /// The reload manager of the current run, once the pipeline runs.
    pub(super) reloader: std::sync::Mutex<Option<crate::pipeline::reload::Reloader>>,
}

impl RunCounters {
    /// The handle to the running pipeline's reload manager; `None` until it
    /// started.
    pub fn reloader(&self) -> Option<crate::pipeline::reload::Reloader> {
        self.reloader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Events read from the source.
    pub events_in: u64,
    /// Events confirmed by the sink.
    pub events_out: u64,
    /// Dead letters confirmed by the dead-letter sink.
    pub dead_letters: u64,
    /// Batches fully acknowledged.
    pub batches: u64,
}

/// Loads every stage's plugin (cache first) and starts one instance of each
/// to check that its `init` accepts the config. Blocking: call it off the
/// async runtime.
///
/// # Errors
/// The first stage that cannot be loaded or started.
pub fn prepare_stages(
    runtime: &Runtime,
    pipeline: &Pipeline,
) -> Result<Vec<Arc<StageSpec>>, PipelineError> {
    pipeline
        .stages
        .iter()
        .map(|stage| {
            pipeline
                .trust
                .check_file(&stage.plugin)
                .map_err(|source| PipelineError::Signature { stage: stage.name.clone(), source })?;
            let plugin = runtime
                .load(&stage.plugin)
                .map_err(|source| PipelineError::Load { stage: stage.name.clone(), source })?;
            tracing::debug!(stage = %stage.name, sha256 = %plugin.sha256, form = %plugin.form, cached = plugin.from_cache, "loaded plugin in {:?}", plugin.load_time);
            let spec = StageSpec::new(&pipeline.name, stage.clone(), Arc::new(plugin));
            spec.instantiate(runtime)
                .map_err(|source| PipelineError::Start { stage: stage.name.clone(), source })?;
            Ok(Arc::new(spec))
        })
        .collect()
}

/// Where a pipeline reads and writes.
pub struct Endpoints {
    /// The source.
    pub source: Box<dyn Source>,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// The dead-letter sink.
    pub dead_letter: Box<dyn Sink>,
}

impl Endpoints {
    /// The source, sink and dead-letter sink `pipeline` names, connected.
    ///
    /// # Errors
    /// The first of them that cannot be built or reach its broker.
    pub async fn build(pipeline: &Pipeline) -> Result<Endpoints, PipelineError> {
        Ok(Endpoints {
            source: crate::source::build(&pipeline.source).await?,
            sink: crate::sink::build(&pipeline.sink)
                .await
                .map_err(PipelineError::Sink)?,
            dead_letter: crate::sink::build(&pipeline.dead_letter)
                .await
                .map_err(PipelineError::DeadLetter)?,
        })
    }
}

/// Runs a pipeline until its source ends or `stop` becomes true. Batches in
/// flight when `stop` comes are finished and delivered before this returns;
/// a position is committed to the source only after the sink and the
/// dead-letter sink confirmed every event up to it.
///
/// # Errors
/// A [`PipelineError`] when the source or a sink fails, or a thread cannot
/// run.
pub async fn run(
    runtime: Arc<Runtime>,
    pipeline: &Pipeline,
    stages: Vec<Arc<StageSpec>>,
    endpoints: Endpoints,
    stop: watch::Receiver<bool>,
    counters: Arc<RunCounters>,
) -> Result<RunReport, PipelineError> {
    let Endpoints {
        mut source,
        mut sink,
        dead_letter: mut dlq,
    } = endpoints;
    let committer = source.committer();
    let (mut persistence, restored) = match Persistence::open(pipeline, source.as_mut()).await? {
        Some((p, restored)) => (Some(p), Some(restored)),
        None => (None, None),
    };
    counters
        .checkpointing
        .store(persistence.is_some(), Ordering::Relaxed);
    let mut started = Started::start(runtime, pipeline, stages, source, stop, &counters, restored)?;
    let mut save_every = tokio::time::interval(
        persistence
            .as_ref()
            .map_or(std::time::Duration::from_secs(3600), |p| p.interval),
    );
    save_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = started.metrics.clone();

    let mut tracker = CompletionTracker::default();
    let mut failure = None;
    // Batches handed to the sinks and not yet confirmed, oldest first. They
    // are confirmed, counted and committed strictly in this order, each as
    // soon as its sinks confirmed it.
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(SINK_IN_FLIGHT);
    let mut closed = false;
    loop {
        if closed && in_flight.is_empty() {
            break;
        }
        let room = !closed && in_flight.len() < SINK_IN_FLIGHT;
        let next = {
            let oldest = in_flight.front_mut();
            tokio::select! {
                biased;
                r = async {
                    match oldest {
                        Some(f) => f.confirm.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => Next::Confirmed(r),
                d = started.done.recv(), if room => Next::Batch(d),
                _ = save_every.tick(), if persistence.is_some() => Next::Save,
                _ = counters.checkpoint_now.notified(), if persistence.is_some() => Next::Save,
            }
        };
        match next {
            Next::Save => {
                if let Some(p) = persistence.as_mut() {
                    if p.save(committer.as_ref()).await {
                        counters.checkpoints_saved.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Next::Confirmed(Ok(())) => {
                let f = in_flight.pop_front().expect("the oldest batch");
                f.count_and_commit(
                    &metrics,
                    &counters,
                    &mut tracker,
                    committer.as_ref(),
                    persistence.as_mut(),
                );
            }
            Next::Confirmed(Err(e)) => {
                failure = Some(e);
                break;
            }
            Next::Batch(None) => closed = true,
            Next::Batch(Some(mut done)) => {
                if !committer.holds(done.ack.partition) {
                    done = done.abandon();
                }
                match InFlight::hand_over(done, sink.as_mut(), dlq.as_mut()).await {
                    Ok(f) => in_flight.push_back(f),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
    }
    // What was committed reaches the source, also after a failure.
    committer.flushed().await;
    // What was confirmed is saved on the way out, also after a failure.
    if let Some(p) = persistence.as_mut() {
        if p.save(committer.as_ref()).await {
            counters.checkpoints_saved.fetch_add(1, Ordering::Relaxed);
        }
    }
    started.finish(failure, &counters).await
}
