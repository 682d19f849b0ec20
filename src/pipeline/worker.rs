//! The worker pool: a dispatcher thread and a fixed number of worker
//! threads that run wasm. A partition's batches are processed one after
//! another, in order, on one thread at a time ([`Dispatch`] says which).

use super::batch::{Batch, Processed};
use super::chain::StageChain;
use super::dispatch::Dispatch;
use super::stage::StageSpec;
use super::swap::{Control, Incident};
use crate::metrics::PipelineMetrics;
use crate::runtime::Runtime;
use crate::source::Committer;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Batches the pool holds per worker thread beyond the one it runs
/// (queued, or waiting for their partition's batch before them).
const WORKER_QUEUE: usize = 2;

/// Batches the pool holds per worker thread while partitions move between
/// threads, and bytes of events in all: enough to take in a run of one
/// partition's batches (Tansu hands out tens of megabytes of one
/// partition) and reach the other partitions' behind it.
const MOVABLE_HELD: usize = 32;
const MOVABLE_HELD_BYTES: usize = 32 << 20;

/// Every this many batches, a worker thread drops the slots of partitions
/// the worker no longer holds.
const SWEEP_EVERY: u64 = 256;

/// What a worker thread's queue carries: batches, and control messages that
/// land exactly between two batches.
pub enum Work {
    /// A batch to process.
    Batch(Batch),
    /// A control message.
    Control(Control),
    /// The input ended: finish.
    End,
}

/// The channels of a pool: batches in, processed batches out, and the
/// reload manager's incident reports.
pub struct PoolIo {
    /// Batches to process.
    pub input: mpsc::Receiver<Batch>,
    /// Processed batches.
    pub output: mpsc::Sender<Processed>,
    /// Where a thread reports a new version it rolled back.
    pub incidents: mpsc::UnboundedSender<Incident>,
    /// With persistent checkpoints: where restored state waits. Batches
    /// then carry their state.
    pub persist: Option<Arc<crate::checkpoint::Restored>>,
    /// Says which partitions the worker still holds; batches of others are
    /// abandoned.
    pub holds: Arc<dyn Committer>,
}

/// The running pool.
pub struct WorkerPool {
    threads: Vec<JoinHandle<()>>,
}

/// Sends control messages to every worker thread of a pool.
#[derive(Clone)]
pub struct PoolControl {
    queues: Vec<crossbeam_channel::Sender<Work>>,
    dispatch: Arc<Dispatch<Batch>>,
}

impl PoolControl {
    /// Sends one control message to each worker thread (built by `make`
    /// with the reply channel) and waits for every answer. Blocking: the
    /// message queues behind the batches each thread already holds.
    pub fn broadcast<T: Send + 'static>(
        &self,
        make: impl Fn(crossbeam_channel::Sender<T>) -> Control,
    ) -> Vec<Option<T>> {
        let mut replies = Vec::with_capacity(self.queues.len());
        for q in &self.queues {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let sent = q.send(Work::Control(make(tx))).is_ok();
            replies.push(sent.then_some(rx));
        }
        replies
            .into_iter()
            .map(|rx| rx.and_then(|rx| rx.recv().ok()))
            .collect()
    }

    /// Worker threads in the pool.
    pub fn threads(&self) -> usize {
        self.queues.len()
    }

    /// Whether partitions may move between threads from the next batch
    /// on: only while every stage is stateless.
    pub fn set_movable(&self, movable: bool) {
        self.dispatch.set_movable(movable);
    }
}

impl WorkerPool {
    /// Starts the dispatcher and `n` workers. They stop when `input` closes
    /// (after finishing what they hold) or when `output` closes.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(
        n: usize,
        runtime: Arc<Runtime>,
        pipeline: &str,
        stages: Vec<Arc<StageSpec>>,
        io: PoolIo,
        metrics: PipelineMetrics,
    ) -> std::io::Result<(WorkerPool, PoolControl)> {
        let PoolIo {
            mut input,
            output,
            incidents,
            persist,
            holds,
        } = io;
        let n = n.max(1);
        let movable = StageSpec::all_stateless(&stages);
        let dispatch = Arc::new(Dispatch::new(
            n,
            n * (WORKER_QUEUE + 1),
            (n * MOVABLE_HELD, MOVABLE_HELD_BYTES),
            movable,
        ));
        let mut threads = Vec::with_capacity(n + 1);
        // Unbounded: the dispatch table bounds what the pool holds, and a
        // worker that hands a partition's next batch on never blocks.
        let (queues, receivers): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| crossbeam_channel::unbounded::<Work>())
            .unzip();
        for (k, rx) in receivers.into_iter().enumerate() {
            let mut chain = StageChain::new(runtime.clone(), pipeline, &stages, metrics.clone());
            chain.report_to(incidents.clone());
            if let Some(restored) = &persist {
                chain.persist(restored.clone());
            }
            let output = output.clone();
            let holds = holds.clone();
            let dispatch = dispatch.clone();
            let queues = queues.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weir-worker-{k}"))
                    .spawn(move || {
                        let mut batches = 0u64;
                        for work in rx.iter() {
                            match work {
                                Work::Batch(batch) => {
                                    batches += 1;
                                    let partition = batch.ack.partition;
                                    if batches.is_multiple_of(SWEEP_EVERY) {
                                        chain.forget_unheld(holds.as_ref());
                                    }
                                    let done = if holds.holds(partition) {
                                        chain.process(batch)
                                    } else {
                                        Processed::abandoned(batch)
                                    };
                                    if output.blocking_send(done).is_err() {
                                        break;
                                    }
                                    if let Some((to, next)) = dispatch.done(k, partition) {
                                        let _ = queues[to].send(Work::Batch(next));
                                    }
                                }
                                Work::Control(c) => chain.control(c),
                                Work::End => break,
                            }
                        }
                        dispatch.close();
                    })?,
            );
        }
        let control = PoolControl {
            queues: queues.clone(),
            dispatch: dispatch.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("weir-dispatch".into())
                .spawn(move || {
                    while let Some(batch) = input.blocking_recv() {
                        let partition = batch.ack.partition;
                        let bytes = batch.bytes();
                        if let Some((k, batch)) = dispatch.route(partition, bytes, batch) {
                            if queues[k].send(Work::Batch(batch)).is_err() {
                                break;
                            }
                        }
                    }
                    // Batches waiting for their partition are handed out as
                    // the ones before them finish: wait for all of them.
                    dispatch.drain();
                    // The control handle keeps the queues open: say so.
                    for q in &queues {
                        let _ = q.send(Work::End);
                    }
                })?,
        );
        Ok((WorkerPool { threads }, control))
    }

    /// Waits for every thread; `false` if one panicked.
    pub fn join(self) -> bool {
        // Join every thread, even after one that panicked.
        let mut ok = true;
        for t in self.threads {
            ok &= t.join().is_ok();
        }
        ok
    }
}
