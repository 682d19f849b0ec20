//! Exactly-once mode: before revoked partitions go, the open transaction
//! is committed, so their delivered events and offsets are committed by
//! this worker instead of aborted and read again by the new owner.
//!
//! The rebalance callback runs inside the consumer's poll, on the thread of
//! the source task. It asks the transaction loop to commit and waits for
//! the answer with `block_in_place`, so the async runtime moves its other
//! tasks (the transaction loop among them) off the blocked thread.

use super::source::{lock, Shared};
use rdkafka::TopicPartitionList;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest a rebalance waits for the open transaction to commit; after
/// it the partitions go, and a transaction holding their output aborts.
const WAIT: Duration = Duration::from_secs(10);

/// A request to commit the open transaction now; answered (or dropped)
/// once it is committed or aborted.
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
        let leaving = {
            let mut a = lock(assignments);
            tpl.elements()
                .iter()
                .filter(|e| a.leave(e.topic(), e.partition()))
                .count()
        };
        let committed = (leaving > 0).then(|| self.commit_and_wait());
        let mut a = lock(assignments);
        for e in tpl.elements() {
            a.revoke(e.topic(), e.partition());
        }
        let n = tpl.count();
        match committed.flatten() {
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
