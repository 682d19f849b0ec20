//! Exactly-once delivery, Kafka → Kafka (docs/architecture.md §6).
//!
//! Processed batches are produced inside a Kafka transaction, events and
//! dead letters alike; when the transaction is due (every
//! [`TRANSACTION_INTERVAL`] or [`TRANSACTION_BATCHES`] batches), the
//! consumed offsets of its batches are added to it and it is committed. The
//! output and the progress of the consumer group thus become visible
//! together, or not at all.
//!
//! When a transaction fails (a delivery, a revoked partition, the commit
//! itself) it is aborted and the pipeline starts over with the same
//! consumer, its partitions moved back to the last committed offsets: the
//! aborted events are read and processed again, `read_committed` consumers
//! downstream never see the aborted copies, and the worker keeps its place
//! in the group.

use super::count_delivered;
use crate::checkpoint::changelog::{record_key, Changelog};
use crate::checkpoint::{Restored, Restorer};
use crate::config::{SinkConfig, SourceConfig};
use crate::pipeline::batch::Processed;
use crate::pipeline::counters::{RunCounters, RunReport};
use crate::pipeline::error::PipelineError;
use crate::pipeline::start::Launch;
use crate::pipeline::started::Started;
use crate::pipeline::tracker::CompletionTracker;
use crate::sink::{Confirmation, TransactionalProducer};
use crate::source::{CommitNow, ConsumedOffsets, KafkaSource, Source};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a transaction stays open.
pub const TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);

/// The most batches one transaction holds.
pub const TRANSACTION_BATCHES: usize = 64;

/// Aborts in a row, without a commit between them, before the run gives up.
const MAX_ABORTS_IN_A_ROW: u32 = 5;

/// Failures to inject, for tests of the recovery path.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// While above zero, each transaction due for commit is aborted instead
    /// (and the count goes down by one), as if the broker had failed just
    /// before the commit.
    pub abort_before_commit: Arc<AtomicU32>,
}

/// An open transaction.
struct Open {
    opened: Instant,
    batches: Vec<Delivered>,
    confirms: Vec<Confirmation>,
}

/// What a batch in a transaction counts for once committed.
struct Delivered {
    ack: crate::pipeline::batch::AckToken,
    created: Instant,
    n_out: u64,
    n_dead: u64,
    /// The stateful stages' state after the batch.
    states: Vec<(String, Vec<u8>)>,
}

/// What the transaction loop does next.
enum Step {
    /// A rebalance asks for the open transaction to be committed.
    CommitNow(CommitNow),
    /// The open transaction is due.
    Due,
    /// A processed batch, or `None` when the workers are done.
    Batch(Option<Processed>),
}

/// What an attempt committed, for the next one after an abort.
#[derive(Default)]
struct Committed {
    /// Transactions committed.
    transactions: u64,
    /// The stateful stages' state per partition id after its last
    /// committed batch: an aborted partition's stages resume from it.
    states: HashMap<u32, Vec<(String, Vec<u8>)>>,
}

/// Runs a Kafka → Kafka pipeline with exactly-once delivery until its
/// source ends or the run is stopped. An aborted transaction restarts the
/// source from the last committed offsets; after several aborts in a row
/// without a commit the run gives up.
///
/// # Errors
/// A [`PipelineError`] when the pipeline is not Kafka → Kafka, the
/// transactional producer cannot start or is fenced, or aborts keep
/// happening.
pub(in crate::pipeline) async fn run(
    launch: &Launch,
    faults: Faults,
) -> Result<RunReport, PipelineError> {
    let (pipeline, counters, stop) = (&launch.pipeline, &launch.counters, &launch.stop);
    let (SourceConfig::Kafka(from), SinkConfig::Kafka(to), SinkConfig::Kafka(dead)) =
        (&pipeline.source, &pipeline.sink, &pipeline.dead_letter)
    else {
        return Err(PipelineError::Internal(
            "exactly-once needs a kafka source, sink and dead-letter sink".into(),
        ));
    };
    let instance = from
        .instance
        .as_deref()
        .or_else(|| from.properties.get("group.instance.id"));
    let id = transactional_id(&pipeline.name, &from.group, instance);
    let producer = TransactionalProducer::new(to, &dead.topic, id)
        .await
        .map_err(PipelineError::Sink)?;
    tracing::info!(pipeline = %pipeline.name, transactional_id = %producer.id, "exactly-once: transactional producer ready");
    // Keyed state goes to changelog topics inside the transactions.
    let changelog = if pipeline.stages.iter().any(|s| !s.stateless) {
        let c = Arc::new(Changelog::new(from, &pipeline.name));
        c.ensure_topics()
            .await
            .map_err(|e| PipelineError::Checkpoint(e.to_string()))?;
        Some(c)
    } else {
        None
    };
    let mut aborts = 0;
    let (mut source, mut offsets) = transactional_source(from)?;
    let mut committed = Committed::default();
    // Where the stages of rewound partitions find their committed state;
    // given, it also has every batch carry its stages' state.
    let mut restored = Arc::new(Restored::default());
    loop {
        // Each partition's keyed state is rebuilt from its changelog before
        // its first batch (again after an abort: the aborted changes are
        // not in it).
        if let Some(c) = &changelog {
            source.restore_with(Restorer::changelog(
                c.clone(),
                &pipeline.name,
                restored.clone(),
            ));
        }
        // A run that starts over keeps the versions swapped in before.
        let started = Started::start(launch, source, Some(restored))?;
        committed.transactions = 0;
        let (result, back) = deliver(
            started,
            (&producer, changelog.as_deref()),
            &offsets,
            counters,
            &faults,
            &mut committed,
        )
        .await;
        let why = match result {
            Err(PipelineError::Aborted(why)) if !*stop.borrow() => why,
            other => return other,
        };
        aborts = if committed.transactions > 0 {
            1
        } else {
            aborts + 1
        };
        if aborts > MAX_ABORTS_IN_A_ROW {
            return Err(PipelineError::Aborted(format!(
                "{why} ({aborts} aborts in a row; giving up)"
            )));
        }
        restored = Arc::new(Restored::default());
        let mut states = std::mem::take(&mut committed.states);
        source = match (back, offsets.rewind().await) {
            (Some(back), Ok(moved)) => {
                tracing::warn!(pipeline = %pipeline.name, partitions = moved.len(), "transaction aborted: {why}; reading again from the last committed offsets");
                for (old, new) in moved {
                    for (stage, state) in states.remove(&old).unwrap_or_default() {
                        restored.put(stage, new, state);
                    }
                }
                back
            }
            (back, rewound) => {
                if let Err(e) = rewound {
                    tracing::warn!(pipeline = %pipeline.name, "{e}");
                }
                tracing::warn!(pipeline = %pipeline.name, "transaction aborted: {why}; reading again from the last committed offsets with a new consumer");
                // The old consumer leaves the group before the new one joins.
                drop(back);
                drop(offsets);
                let (fresh, its_offsets) = transactional_source(from)?;
                offsets = its_offsets;
                fresh
            }
        };
        tokio::time::sleep(Duration::from_millis(100 * u64::from(aborts))).await;
    }
}

/// A consumer for exactly-once mode, and its side of the transactions.
fn transactional_source(
    from: &crate::config::KafkaSource,
) -> Result<(Box<dyn Source>, ConsumedOffsets), PipelineError> {
    let source = KafkaSource::transactional(from)?;
    let offsets = source.consumed_offsets();
    Ok((Box::new(source), offsets))
}

/// Two workers must never share a transactional id, or the newer one
/// fences the other out; consumer group metadata sent with the offsets
/// fences a worker that lost its partitions. Unique per process, unless
/// the worker has a stable name (`source.instance`, or the static
/// membership's `group.instance.id`): then the id is stable too, so a
/// worker restarted after a crash aborts the transaction its predecessor
/// left open as it starts, rather than the group waiting for the broker
/// to time it out.
fn transactional_id(pipeline: &str, group: &str, instance: Option<&str>) -> String {
    if let Some(instance) = instance {
        return format!("weir-{pipeline}-{group}-{instance}");
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("weir-{pipeline}-{group}-{}-{nanos:x}", std::process::id())
}

/// The sink side of one attempt: batches into transactions until the
/// workers are done or a transaction fails; the source comes back with the
/// result.
async fn deliver(
    mut started: Started,
    (producer, changelog): (&TransactionalProducer, Option<&Changelog>),
    offsets: &ConsumedOffsets,
    counters: &RunCounters,
    faults: &Faults,
    committed: &mut Committed,
) -> (Result<RunReport, PipelineError>, Option<Box<dyn Source>>) {
    let mut tracker = CompletionTracker::default();
    let mut open: Option<Open> = None;
    let mut failure = None;
    let mut requests = offsets.commit_requests();
    loop {
        let due = open.as_ref().map(|t| t.opened + TRANSACTION_INTERVAL);
        let step = tokio::select! {
            biased;
            Some(r) = requests.recv() => Step::CommitNow(r),
            _ = sleep_until(due), if due.is_some() => Step::Due,
            d = started.done.recv() => Step::Batch(d),
        };
        let mut commit_now = None;
        let mut closing = false;
        match step {
            Step::CommitNow(r) => commit_now = Some(r),
            Step::Due => {}
            Step::Batch(None) => closing = true,
            Step::Batch(Some(mut done)) => {
                if !offsets.holds(done.ack.partition) {
                    // Given up meanwhile: the new owner reads it again.
                    done = done.abandon();
                }
                if let Err(e) = add(&mut open, (producer, changelog), offsets, done).await {
                    failure = Some(e);
                    break;
                }
                let full = open
                    .as_ref()
                    .is_some_and(|t| t.batches.len() >= TRANSACTION_BATCHES);
                if !full {
                    continue;
                }
            }
        }
        if let Some(t) = open.take() {
            match commit(t, producer, offsets, &mut tracker, faults).await {
                Ok(batches) => {
                    committed.transactions += 1;
                    for b in batches {
                        count_delivered(&started.metrics, counters, b.created, b.n_out, b.n_dead);
                        if !b.states.is_empty() {
                            committed.states.insert(b.ack.partition, b.states);
                        }
                    }
                    // Partitions given up take their state with them.
                    committed.states.retain(|id, _| offsets.holds(*id));
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // The rebalance that asked lets its partitions go now.
        if let Some(r) = commit_now {
            r.done();
        }
        if closing {
            break;
        }
    }
    // A rebalance waiting for a commit stops waiting.
    drop(requests);
    started.finish_keeping_source(failure, counters).await
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Produces a processed batch into the open transaction, opening one first
/// when none is.
async fn add(
    open: &mut Option<Open>,
    (producer, changelog): (&TransactionalProducer, Option<&Changelog>),
    offsets: &ConsumedOffsets,
    done: Processed,
) -> Result<(), PipelineError> {
    if open.is_none() {
        producer.begin().map_err(PipelineError::Sink)?;
        *open = Some(Open {
            opened: Instant::now(),
            batches: Vec::new(),
            confirms: Vec::new(),
        });
    }
    let t = open.as_mut().expect("a transaction is open");
    let sunk = producer.events(&done.events).await;
    let dead = producer.dead_letters(&done.dead_letters).await;
    match (sunk, dead) {
        (Ok(a), Ok(b)) => t.confirms.extend([a, b]),
        (Err(e), _) | (_, Err(e)) => return abort(producer, &e.to_string()).await,
    }
    if let (Some(changelog), false) = (changelog, done.keyed.is_empty()) {
        let Some((topic, partition)) = offsets.topic_partition(done.ack.partition) else {
            return abort(
                producer,
                "a partition whose keyed state changed was revoked",
            )
            .await;
        };
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = done
            .keyed
            .iter()
            .flat_map(|(stage, delta)| {
                delta
                    .iter()
                    .map(move |(k, v)| (record_key(stage, k), v.map(<[u8]>::to_vec)))
            })
            .collect();
        match producer
            .changelog(
                &changelog.topic(&topic),
                partition,
                done.ack.last_position,
                &records,
            )
            .await
        {
            Ok(c) => t.confirms.push(c),
            Err(e) => return abort(producer, &e.to_string()).await,
        }
    }
    t.batches.push(Delivered {
        ack: done.ack,
        created: done.created,
        n_out: done.events.len() as u64,
        n_dead: done.dead_letters.len() as u64,
        states: done.states,
    });
    Ok(())
}

/// Waits for the transaction's deliveries, adds its batches' offsets and
/// commits it; aborts it on any failure.
async fn commit(
    t: Open,
    producer: &TransactionalProducer,
    offsets: &ConsumedOffsets,
    tracker: &mut CompletionTracker,
    faults: &Faults,
) -> Result<Vec<Delivered>, PipelineError> {
    tracing::debug!(
        batches = t.batches.len(),
        "transaction due; waiting for its deliveries"
    );
    for c in t.confirms {
        if let Err(e) = c.await {
            return abort(producer, &e.to_string()).await;
        }
    }
    let mut positions = BTreeMap::new();
    for b in &t.batches {
        if let Some((partition, position)) = tracker.complete(b.ack) {
            positions.insert(partition, position);
        }
    }
    // A partition given up while the transaction held nothing of it is
    // left to its new owner; one whose output the transaction holds
    // aborts it.
    let produced: BTreeSet<u32> = t
        .batches
        .iter()
        .filter(|b| b.n_out + b.n_dead > 0)
        .map(|b| b.ack.partition)
        .collect();
    positions.retain(|id, _| produced.contains(id) || offsets.holds(*id));
    let tpl = match offsets.offsets(&positions) {
        Ok(tpl) => tpl,
        Err(revoked) => return abort(producer, &revoked.to_string()).await,
    };
    let Some(group) = offsets.group_metadata() else {
        return abort(producer, "the consumer has no group metadata yet").await;
    };
    let injected = faults
        .abort_before_commit
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if injected {
        return abort(producer, "injected failure before commit").await;
    }
    match producer.commit(tpl, group).await {
        Ok(()) => {
            offsets.committed(&positions);
            Ok(t.batches)
        }
        Err(e) => abort(producer, &e.to_string()).await,
    }
}

/// Aborts the open transaction and reports why, as [`PipelineError::Aborted`]
/// (the run starts over), or as a sink error when even the abort failed.
async fn abort<T>(producer: &TransactionalProducer, why: &str) -> Result<T, PipelineError> {
    match producer.abort().await {
        Ok(()) => Err(PipelineError::Aborted(why.to_string())),
        Err(e) => Err(PipelineError::Sink(e)),
    }
}
