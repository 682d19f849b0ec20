//! Wiring one pipeline: source → batcher → worker pool → sinks →
//! completion tracker → source commits.

use super::batch::{Batch, Processed};
use super::chain::StageSpec;
use super::tracker::CompletionTracker;
use super::worker::WorkerPool;
use crate::config::Pipeline;
use crate::metrics::PipelineMetrics;
use crate::runtime::{CallError, LoadError, Runtime, StageInstance};
use crate::sink::{Sink, SinkError};
use crate::source::{Source, SourceError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Batches in flight between the batcher and the pool, and between the pool
/// and the sinks: the bounds that make a busy pool hold the source back.
const QUEUE: usize = 4;

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
    /// A stage's first instance did not start (its `init` refused, say).
    #[error("stage {stage}: cannot start: {source}")]
    Start {
        /// The stage.
        stage: String,
        /// Why.
        source: CallError,
    },
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink failed; the batch it held was not acknowledged.
    #[error("sink: {0}")]
    Sink(SinkError),
    /// The dead-letter sink failed; the batch it held was not acknowledged.
    #[error("dead-letter sink: {0}")]
    DeadLetter(SinkError),
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
            let plugin = runtime
                .load(&stage.plugin)
                .map_err(|source| PipelineError::Load { stage: stage.name.clone(), source })?;
            tracing::debug!(stage = %stage.name, sha256 = %plugin.sha256, form = %plugin.form, cached = plugin.from_cache, "loaded plugin in {:?}", plugin.load_time);
            let spec = StageSpec::new(&pipeline.name, stage.clone(), Arc::new(plugin));
            StageInstance::new(runtime, &spec.plugin, &spec.settings)
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
    let metrics = PipelineMetrics::new(&pipeline.name);
    let committer = source.committer();

    let (chunk_tx, chunk_rx) = mpsc::channel(QUEUE);
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(QUEUE);
    let (done_tx, mut done_rx) = mpsc::channel::<Processed>(QUEUE);

    let source_task = tokio::spawn(async move { source.run(chunk_tx, stop).await });
    let batcher = super::batcher::Batcher::new(pipeline.batch);
    let events_in = metrics.events_in.clone();
    let batcher_task = tokio::spawn(batcher.run(chunk_rx, batch_tx, events_in));
    let pool = WorkerPool::start(
        pipeline.workers.threads,
        runtime,
        &pipeline.name,
        stages,
        batch_rx,
        done_tx,
        metrics.clone(),
    )
    .map_err(|e| PipelineError::Internal(format!("cannot start worker threads: {e}")))?;

    let mut tracker = CompletionTracker::default();
    let mut failure = None;
    while let Some(done) = done_rx.recv().await {
        let (n_out, n_dead) = (done.events.len() as u64, done.dead_letters.len() as u64);
        if n_out > 0 {
            if let Err(e) = sink.send(done.events).await {
                failure = Some(PipelineError::Sink(e));
                break;
            }
        }
        if n_dead > 0 {
            if let Err(e) = dlq.send(done.dead_letters).await {
                failure = Some(PipelineError::DeadLetter(e));
                break;
            }
        }
        metrics.events_out.increment(n_out);
        metrics
            .batch_duration
            .record(done.created.elapsed().as_secs_f64());
        counters.events_out.fetch_add(n_out, Ordering::Relaxed);
        counters.dead_letters.fetch_add(n_dead, Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        if let Some((partition, position)) = tracker.complete(done.ack) {
            committer.commit(partition, position);
        }
    }
    // On failure, closing the result channel stops the workers; the source
    // stops when the batcher stops taking its chunks.
    drop(done_rx);
    let events_in = batcher_task.await.unwrap_or(0);
    counters.events_in.store(events_in, Ordering::Relaxed);
    let source_result = source_task.await;
    let pool_ok = tokio::task::spawn_blocking(move || pool.join())
        .await
        .unwrap_or(false);
    if let Some(f) = failure {
        return Err(f);
    }
    match source_result {
        Ok(r) => r?,
        Err(e) => return Err(PipelineError::Internal(format!("source task failed: {e}"))),
    }
    if !pool_ok {
        return Err(PipelineError::Internal("a worker thread panicked".into()));
    }
    Ok(RunReport {
        events_in,
        events_out: counters.events_out.load(Ordering::Relaxed),
        dead_letters: counters.dead_letters.load(Ordering::Relaxed),
        batches: counters.batches.load(Ordering::Relaxed),
    })
}
