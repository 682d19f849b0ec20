//! At-least-once delivery (docs/architecture.md §6): processed batches go to
//! the sinks, several in flight at once; a position is committed to the
//! source only once the sink and the dead-letter sink confirmed every event
//! up to it, and with `[checkpoint]` the stages' state is saved with it.

use super::count_delivered;
use crate::metrics::PipelineMetrics;
use crate::pipeline::batch::{KeyedDelta, Processed};
use crate::pipeline::counters::{RunCounters, RunReport};
use crate::pipeline::endpoints::Endpoints;
use crate::pipeline::error::PipelineError;
use crate::pipeline::persist::{Persistence, Saved};
use crate::pipeline::start::Launch;
use crate::pipeline::started::Started;
use crate::pipeline::tracker::CompletionTracker;
use crate::sink::{Confirmation, Sink, SinkError};
use crate::source::CommitNow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;

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
    /// The save in progress is done.
    Saved(Vec<Saved>),
    /// A rebalance is about to take partitions away: save first.
    Revoking(CommitNow),
}

/// A batch handed to the sinks, waiting for their confirmations.
struct InFlight {
    ack: crate::pipeline::batch::AckToken,
    created: std::time::Instant,
    n_out: u64,
    n_dead: u64,
    /// The stateful stages' state after the batch (with persistence).
    states: Vec<(String, Vec<u8>)>,
    /// The keys the batch changed in keyed state (with persistence).
    keyed: Vec<(String, KeyedDelta)>,
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
        let (states, keyed) = (done.states, done.keyed);
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
            keyed,
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
        let (batch_partition, batch_end) = (self.ack.partition, self.ack.last_position);
        let mut persistence = persistence;
        if let Some(p) = persistence.as_deref_mut() {
            p.changed(committer, batch_partition, batch_end, self.keyed);
        }
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

/// Runs a pipeline until its source ends or the run is stopped. Batches in
/// flight when it stops are finished and delivered before this returns; a
/// position is committed to the source only after the sink and the
/// dead-letter sink confirmed every event up to it.
pub(in crate::pipeline) async fn run(
    launch: &Launch,
    endpoints: Endpoints,
) -> Result<RunReport, PipelineError> {
    let (pipeline, counters) = (&launch.pipeline, &launch.counters);
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
    let mut started = Started::start(launch, source, restored)?;
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
    // The checkpoint being written: the loop goes on confirming batches
    // meanwhile, and starts no other save until it is done.
    let mut saving: Option<Saving> = None;
    // With checkpoints, a partition about to be revoked is saved first.
    let mut revoking = persistence
        .as_ref()
        .and_then(|_| committer.revoke_requests());
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
                s = async {
                    match saving.as_mut() {
                        Some(s) => s.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => Next::Saved(s),
                Some(r) = async {
                    match revoking.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => Next::Revoking(r),
                _ = save_every.tick(), if persistence.is_some() && saving.is_none() => Next::Save,
                _ = counters.checkpoint_now.notified(), if persistence.is_some() && saving.is_none() => Next::Save,
            }
        };
        match next {
            Next::Save => {
                if let Some(p) = persistence.as_mut() {
                    saving = Some(Box::pin(p.start_save(committer.as_ref())));
                }
            }
            Next::Saved(outcome) => {
                saving = None;
                saved(persistence.as_mut(), outcome, counters);
            }
            Next::Revoking(request) => {
                // The partitions leaving are still named: their records and
                // keyed changes up to the confirmed positions go now.
                let in_progress = saving.take();
                save_now(
                    in_progress,
                    persistence.as_mut(),
                    committer.as_ref(),
                    counters,
                )
                .await;
                request.done();
            }
            Next::Confirmed(Ok(())) => {
                let f = in_flight.pop_front().expect("the oldest batch");
                f.count_and_commit(
                    &metrics,
                    counters,
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
    save_now(saving, persistence.as_mut(), committer.as_ref(), counters).await;
    started.finish(failure, counters).await
}

/// A save in progress.
type Saving = Pin<Box<dyn Future<Output = Vec<Saved>> + Send>>;

/// Finishes the save `in_progress`, if any, then saves what changed since
/// and waits for it.
async fn save_now(
    in_progress: Option<Saving>,
    mut persistence: Option<&mut Persistence>,
    committer: &dyn crate::source::Committer,
    counters: &RunCounters,
) {
    if let Some(s) = in_progress {
        saved(persistence.as_deref_mut(), s.await, counters);
    }
    if let Some(p) = persistence {
        let outcome = p.start_save(committer).await;
        saved(Some(p), outcome, counters);
    }
}

/// Takes a finished save in and counts it.
fn saved(persistence: Option<&mut Persistence>, outcome: Vec<Saved>, counters: &RunCounters) {
    let Some(p) = persistence else {
        return;
    };
    if p.finish_save(outcome) {
        counters.checkpoints_saved.fetch_add(1, Ordering::Relaxed);
    }
    counters
        .checkpoint_bytes
        .store(p.bytes_saved, Ordering::Relaxed);
}
