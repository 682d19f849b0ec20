//! The worker pool: a dispatcher thread and a fixed number of worker
//! threads that run wasm. A partition always goes to the same thread, so its
//! batches are processed one after another, in order.

use super::batch::{Batch, Processed};
use super::chain::{StageChain, StageSpec};
use crate::metrics::PipelineMetrics;
use crate::runtime::Runtime;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Batches queued per worker thread beyond the one it is running.
const WORKER_QUEUE: usize = 2;

/// The running pool.
pub struct WorkerPool {
    threads: Vec<JoinHandle<()>>,
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
        mut input: mpsc::Receiver<Batch>,
        output: mpsc::Sender<Processed>,
        metrics: PipelineMetrics,
    ) -> std::io::Result<WorkerPool> {
        let n = n.max(1);
        let mut threads = Vec::with_capacity(n + 1);
        let mut queues = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(WORKER_QUEUE);
            queues.push(tx);
            let mut chain = StageChain::new(runtime.clone(), pipeline, &stages, metrics.clone());
            let output = output.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weir-worker-{k}"))
                    .spawn(move || {
                        for batch in rx.iter() {
                            if output.blocking_send(chain.process(batch)).is_err() {
                                break;
                            }
                        }
                    })?,
            );
        }
        threads.push(
            std::thread::Builder::new()
                .name("weir-dispatch".into())
                .spawn(move || {
                    while let Some(batch) = input.blocking_recv() {
                        let k = batch.ack.partition as usize % queues.len();
                        if queues[k].send(batch).is_err() {
                            break;
                        }
                    }
                })?,
        );
        Ok(WorkerPool { threads })
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
