//! Before revoked partitions go, what this worker holds of them is settled.
//! Exactly-once mode: the open transaction is committed, so their delivered
//! events and offsets are committed by this worker instead of aborted and
//! read again by the new owner. At-least-once mode with checkpoints: the
//! checkpoints of what was confirmed are saved, so the new owner restores
//! the state that goes with the offsets committed on revoke.
//!
//! The rebalance callback runs inside the consumer's poll, on the thread of
//! the source task. It asks the delivery loop and waits for the answer with
//! `block_in_place`, so the async runtime moves its other tasks (the loop
//! among them) off the blocked thread.

use super::source::{lock, Shared};
use rdkafka::TopicPartitionList;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest a rebalance waits for the open transaction to commit; after
/// it the partitions go, and a transaction holding their output aborts.
const WAIT: Duration = Duration::from_secs(10);

/// A request to settle what a delivery loop holds of partitions about to
/// be revoked (commit the open transaction, save the checkpoints);
/// answered (or dropped) once done.
pub struct CommitNow(SyncSender<()>);

impl CommitNow {
    /// Tells the waiting rebalance that the transaction is settled.
    pub fn done(self) {
        let _ = self.0.send(());
    }
}

/// Where the rebalance callback sends its request: the current attempt's
/// transaction loop, if one runs.
#[derive(Clone, Default)]
pub(super) struct OnRevoke(Arc<Mutex<Option<mpsc::UnboundedSender<CommitNow>>>>);

impl OnRevoke {
    /// Revokes the partitions of `tpl`: first they stop taking new work,
    /// then the open transaction is committed with what it holds of them,
    /// then they are forgotten.
    pub(super) fn revoke(&self, assignments: &Shared, tpl: &TopicPartitionList) {
        let committed = self.settle(assignments, tpl);
        let mut a = lock(assignments);
        for e in tpl.elements() {
            a.revoke(e.topic(), e.partition());
        }
        let n = tpl.count();
        match committed {
            None => tracing::info!(partitions = n, "kafka: partitions revoked"),
            Some(true) => tracing::info!(
                partitions = n,
                "kafka: partitions revoked; the open transaction was committed first"
            ),
            Some(false) => tracing::warn!(
                partitions = n,
                "kafka: partitions revoked; an open transaction holding them will abort"
            ),
        }
    }

    /// The partitions of `tpl` stop taking new work, and whoever asked for
    /// requests settles what it holds of them: the exactly-once loop
    /// commits its open transaction, the at-least-once loop saves its
    /// checkpoints. `None` when nobody asked or none of them was read,
    /// `Some(false)` when waiting failed or took too long.
    pub(super) fn settle(&self, assignments: &Shared, tpl: &TopicPartitionList) -> Option<bool> {
        let leaving = {
            let mut a = lock(assignments);
            tpl.elements()
                .iter()
                .filter(|e| a.leave(e.topic(), e.partition()))
                .count()
        };
        (leaving > 0).then(|| self.commit_and_wait()).flatten()
    }

    /// A new receiver of requests; the previous one stops getting them.
    pub(super) fn requests(&self) -> mpsc::UnboundedReceiver<CommitNow> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Asks the transaction loop to commit and waits for it: `None` when no
    /// loop runs (nothing is open), `Some(false)` when waiting is not
    /// possible on this thread or took too long.
    pub(super) fn commit_and_wait(&self) -> Option<bool> {
        let tx = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        if tx.is_closed() {
            return None;
        }
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_thread {
            return Some(false);
        }
        let (reply, answer): (_, Receiver<()>) = sync_channel(1);
        tx.send(CommitNow(reply)).ok()?;
        Some(tokio::task::block_in_place(|| {
            answer.recv_timeout(WAIT).is_ok()
        }))
    }
}
