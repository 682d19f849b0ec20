//! The part of a running pipeline before the sinks: source, batcher and
//! worker pool, started together and stopped together.

use super::batch::{Batch, Processed};
use super::counters::{RunCounters, RunReport};
use super::error::PipelineError;
use super::reload::Link;
use super::start::Launch;
use super::worker::WorkerPool;
use crate::metrics::PipelineMetrics;
use crate::source::{Source, SourceError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Batches in flight between the batcher and the pool, and between the pool
/// and the sinks: the bounds that make a busy pool hold the source back.
const QUEUE: usize = 4;

/// The part of a running pipeline before the sinks: source, batcher and
/// worker pool, with the channel of processed batches.
pub(super) struct Started {
    /// Processed batches, in order per partition.
    pub done: mpsc::Receiver<Processed>,
    /// The pipeline's metrics.
    pub metrics: PipelineMetrics,
    /// The source comes back when it stops, for a run that starts over with
    /// it (exactly-once mode after an abort).
    source_task: tokio::task::JoinHandle<(Box<dyn Source>, Result<(), SourceError>)>,
    batcher_task: tokio::task::JoinHandle<u64>,
    pool: WorkerPool,
    /// Stops the source: set by the caller's `stop`, or by a failure.
    halt: Arc<watch::Sender<bool>>,
    forward_stop: tokio::task::JoinHandle<()>,
    /// Where the pool is attached to the reload manager.
    link: Link,
}

impl Started {
    /// Starts the source, the batcher and a worker pool that runs the
    /// reload manager's current versions, and attaches the pool to it.
    pub fn start(
        launch: &Launch,
        mut source: Box<dyn Source>,
        persist: Option<Arc<crate::checkpoint::Restored>>,
    ) -> Result<Started, PipelineError> {
        let (runtime, pipeline) = (&launch.runtime, &launch.pipeline);
        let mut stop = launch.stop.clone();
        let stages = launch.link.stages();
        let metrics = PipelineMetrics::new(&pipeline.name);
        // The source stops when the caller says so, and also when the sink
        // side failed: an idle source would otherwise wait for events
        // forever.
        let (halt, halted) = watch::channel(false);
        let halt = Arc::new(halt);
        let h = halt.clone();
        let forward_stop = tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            let _ = h.send(true);
        });
        let holds = source.committer();
        let (chunk_tx, chunk_rx) = mpsc::channel(QUEUE);
        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(QUEUE);
        let (done_tx, done) = mpsc::channel::<Processed>(QUEUE);

        let source_task = tokio::spawn(async move {
            let r = source.run(chunk_tx, halted).await;
            (source, r)
        });
        let batcher = super::batcher::Batcher::new(pipeline.batch);
        let events_in = metrics.events_in.clone();
        let batcher_task = tokio::spawn(batcher.run(chunk_rx, batch_tx, events_in));
        let (incidents_tx, incidents) = mpsc::unbounded_channel();
        let (pool, control) = WorkerPool::start(
            pipeline.workers.threads,
            runtime.clone(),
            &pipeline.name,
            stages,
            super::worker::PoolIo {
                input: batch_rx,
                output: done_tx,
                incidents: incidents_tx,
                persist,
                holds,
            },
            metrics.clone(),
        )
        .map_err(|e| PipelineError::Internal(format!("cannot start worker threads: {e}")))?;
        launch.link.attach(control, incidents);
        launch.counters.started.store(true, Ordering::Relaxed);
        Ok(Started {
            done,
            metrics,
            source_task,
            batcher_task,
            pool,
            halt,
            forward_stop,
            link: launch.link.clone(),
        })
    }

    /// Stops everything (closing the result channel stops the workers; the
    /// source stops when the batcher stops taking its chunks) and reports.
    pub async fn finish(
        self,
        failure: Option<PipelineError>,
        counters: &RunCounters,
    ) -> Result<RunReport, PipelineError> {
        self.finish_keeping_source(failure, counters).await.0
    }

    /// [`Started::finish`], and the source for another start, unless its
    /// task panicked.
    pub async fn finish_keeping_source(
        self,
        failure: Option<PipelineError>,
        counters: &RunCounters,
    ) -> (Result<RunReport, PipelineError>, Option<Box<dyn Source>>) {
        let Started {
            done,
            source_task,
            batcher_task,
            pool,
            halt,
            forward_stop,
            link,
            ..
        } = self;
        if failure.is_some() {
            let _ = halt.send(true);
        }
        // Workers waiting to hand a batch over stop; a swap waiting for
        // them ends, and no other starts.
        drop(done);
        link.detach().await;
        let events_in = batcher_task.await.unwrap_or(0);
        // Added, not stored: exactly-once mode restarts after an abort.
        let events_in = counters.events_in.fetch_add(events_in, Ordering::Relaxed) + events_in;
        let source_result = source_task.await;
        let pool_ok = tokio::task::spawn_blocking(move || pool.join())
            .await
            .unwrap_or(false);
        forward_stop.abort();
        let (source, source_result) = match source_result {
            Ok((source, r)) => (Some(source), r.map_err(PipelineError::from)),
            Err(e) => (
                None,
                Err(PipelineError::Internal(format!("source task failed: {e}"))),
            ),
        };
        let report = match (failure, source_result) {
            (Some(f), _) | (None, Err(f)) => Err(f),
            (None, Ok(())) if !pool_ok => {
                Err(PipelineError::Internal("a worker thread panicked".into()))
            }
            (None, Ok(())) => Ok(RunReport {
                events_in,
                events_out: counters.events_out.load(Ordering::Relaxed),
                dead_letters: counters.dead_letters.load(Ordering::Relaxed),
                batches: counters.batches.load(Ordering::Relaxed),
            }),
        };
        (report, source)
    }
}
