//! The completion tracker: commits a partition's position only when every
//! batch up to it was confirmed, so a gap is never skipped.

use super::batch::AckToken;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
struct PartitionState {
    /// The next batch sequence number to commit.
    next: u64,
    /// Confirmed batches waiting for an earlier one: seq → last position.
    waiting: BTreeMap<u64, u64>,
}

/// Tracks confirmations per partition.
#[derive(Debug, Default)]
pub struct CompletionTracker {
    partitions: HashMap<u32, PartitionState>,
}

impl CompletionTracker {
    /// Records a confirmed batch; returns the position to commit, if the
    /// contiguous prefix of confirmed batches grew.
    pub fn complete(&mut self, ack: AckToken) -> Option<(u32, u64)> {
        let p = self.partitions.entry(ack.partition).or_default();
        p.waiting.insert(ack.seq, ack.last_position);
        let mut commit = None;
        while let Some(pos) = p.waiting.remove(&p.next) {
            p.next += 1;
            commit = Some((ack.partition, pos));
        }
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(partition: u32, seq: u64, last_position: u64) -> AckToken {
        AckToken {
            partition,
            seq,
            last_position,
        }
    }

    #[test]
    fn commits_only_contiguous_prefixes() {
        let mut t = CompletionTracker::default();
        assert_eq!(t.complete(ack(0, 1, 20)), None, "batch 0 is still out");
        assert_eq!(t.complete(ack(1, 0, 5)), Some((1, 5)));
        assert_eq!(
            t.complete(ack(0, 0, 10)),
            Some((0, 20)),
            "0 and 1 now both done"
        );
        assert_eq!(t.complete(ack(0, 3, 40)), None);
        assert_eq!(t.complete(ack(0, 2, 30)), Some((0, 40)));
    }
}
