//! Committing: confirmed offsets to the group, or (in exactly-once mode)
//! the offsets a transaction commits with its output.

use super::revoke::CommitNow;
use super::source::{lock, Kafka, Shared};
use crate::source::{Committer, SourceError};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

/// A partition was revoked while a transaction held some of its events.
#[derive(Debug, thiserror::Error)]
#[error("partition {topic}/{partition} was revoked while the transaction held its events")]
pub struct Revoked {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// The consumer's side of a Kafka transaction: its group metadata and the
/// offsets to commit for delivered positions.
#[derive(Clone)]
pub struct ConsumedOffsets {
    pub(super) consumer: Arc<Kafka>,
    pub(super) assignments: Shared,
    pub(super) on_revoke: super::revoke::OnRevoke,
}

impl ConsumedOffsets {
    /// The consumer group's metadata, which fences commits from a member
    /// that lost its partitions.
    pub fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The offsets to commit for `positions` (partition id → last delivered
    /// position), as "next offset to read".
    ///
    /// # Errors
    /// [`Revoked`] when one of the partitions is no longer assigned here:
    /// its events must not be committed by this worker.
    pub fn offsets(
        &self,
        positions: &std::collections::BTreeMap<u32, u64>,
    ) -> Result<TopicPartitionList, Revoked> {
        let mut a = lock(&self.assignments);
        let mut tpl = TopicPartitionList::new();
        for (&id, &position) in positions {
            let Some((topic, partition, next)) = a.confirm(id, position) else {
                let (topic, partition) = a.forgotten(id).unwrap_or_default();
                return Err(Revoked { topic, partition });
            };
            let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(next));
        }
        Ok(tpl)
    }

    /// Requests to commit the open transaction before partitions are
    /// revoked; each must be answered with [`CommitNow::done`] once the
    /// transaction is committed or aborted. A later call takes them over.
    pub fn commit_requests(&self) -> tokio::sync::mpsc::UnboundedReceiver<CommitNow> {
        self.on_revoke.requests()
    }

    /// The topic and partition number of the partition with id `id`.
    pub fn topic_partition(&self, id: u32) -> Option<(String, i32)> {
        lock(&self.assignments).topic_partition(id)
    }

    /// Whether the partition with id `id` is still held here.
    pub fn holds(&self, id: u32) -> bool {
        lock(&self.assignments).holds(id)
    }

    /// Records that a transaction committed `positions` (partition id →
    /// last delivered position): an abort now reads again from after them.
    pub fn committed(&self, positions: &std::collections::BTreeMap<u32, u64>) {
        let mut a = lock(&self.assignments);
        for (&id, &position) in positions {
            a.committed(id, position as i64 + 1);
        }
    }

    /// After an aborted transaction: moves every partition held back to
    /// the offset after the last committed transaction, and gives it a new
    /// id, so that nothing read under the old one is committed. The
    /// consumer stays in its group. Returns the partitions moved, as (old
    /// id, new id).
    ///
    /// Call it only while the source is stopped: messages fetched before
    /// the seek are discarded, but one already taken would carry a new id.
    ///
    /// # Errors
    /// When a partition could not be moved (the consumer must then not be
    /// read again: its position is past what was committed).
    pub async fn rewind(&self) -> Result<Vec<(u32, u32)>, SourceError> {
        let from = lock(&self.assignments).rewind();
        if from.is_empty() {
            return Ok(Vec::new());
        }
        let mut tpl = TopicPartitionList::new();
        for r in &from {
            tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.next))
                .map_err(|e| {
                    SourceError::Broker(format!("kafka rewind {}/{}: {e}", r.topic, r.partition))
                })?;
        }
        let consumer = self.consumer.clone();
        let sought =
            tokio::task::spawn_blocking(move || consumer.seek_partitions(tpl, SEEK_TIMEOUT))
                .await
                .map_err(|e| SourceError::Broker(format!("kafka rewind: {e}")))?
                .map_err(|e| SourceError::Broker(format!("kafka rewind: {e}")))?;
        for e in sought.elements() {
            e.error().map_err(|err| {
                SourceError::Broker(format!(
                    "kafka rewind {}/{}: {err}",
                    e.topic(),
                    e.partition()
                ))
            })?;
        }
        Ok(from.iter().map(|r| (r.old, r.new)).collect())
    }
}

/// How long moving the partitions back after an abort may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Commits confirmed offsets (asynchronously; the commit on revoke and the
/// next commit make up for one that is lost).
pub(super) struct KafkaCommitter {
    pub(super) consumer: Arc<Kafka>,
    pub(super) assignments: Shared,
    /// How a rebalance asks for checkpoints before partitions go.
    pub(super) on_revoke: super::revoke::OnRevoke,
}

impl Committer for KafkaCommitter {
    fn checkpoint_name(&self, partition: u32) -> Option<String> {
        lock(&self.assignments).name(partition)
    }

    fn holds(&self, partition: u32) -> bool {
        lock(&self.assignments).holds(partition)
    }

    fn revoke_requests(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<CommitNow>> {
        Some(self.on_revoke.requests())
    }

    fn commit(&self, partition: u32, position: u64) {
        let Some((topic, p, next)) = lock(&self.assignments).confirm(partition, position) else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(&topic, p, Offset::Offset(next))
            .is_ok()
        {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(topic, partition = p, "kafka: commit failed: {e}");
            }
        }
    }
}
