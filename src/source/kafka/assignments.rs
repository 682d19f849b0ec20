//! Partition identities across rebalances.
//!
//! The engine knows a partition by a `u32`. Each time Kafka assigns a
//! partition to this worker it gets a fresh id, so batches, ordering and
//! stage state of one assignment never mix with a later one; when the
//! partition is revoked its id is forgotten and late commits for it are
//! dropped (the new owner re-reads from the last committed offset). An
//! aborted transaction (exactly-once mode) forgets every id the same way,
//! and the partitions are read again from their last committed offsets
//! under new ones.

use std::collections::{HashMap, HashSet};

/// The current assignment and what was confirmed of it.
#[derive(Debug, Default)]
pub struct Assignments {
    next_id: u32,
    ids: HashMap<String, HashMap<i32, u32>>,
    partitions: HashMap<u32, (String, i32)>,
    /// What revoked ids stood for, for error messages.
    revoked: HashMap<u32, (String, i32)>,
    /// The next offset to consume per id: confirmed offset + 1.
    done: HashMap<u32, i64>,
    /// Where each id is read again from after an aborted transaction: its
    /// first offset read, then the offset after each committed transaction.
    restart: HashMap<u32, i64>,
    /// Ids being revoked: no longer held for new work, but their offsets
    /// can still be committed.
    leaving: HashSet<u32>,
}

impl Assignments {
    /// The id of a partition this worker reads, created on first sight, at
    /// `offset`.
    pub fn id(&mut self, topic: &str, partition: i32, offset: i64) -> u32 {
        if let Some(id) = self.ids.get(topic).and_then(|m| m.get(&partition)) {
            return *id;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.ids
            .entry(topic.to_string())
            .or_default()
            .insert(partition, id);
        self.partitions.insert(id, (topic.to_string(), partition));
        self.restart.insert(id, offset);
        id
    }

    /// Records that a transaction committed `next` as the next offset to
    /// read of `id`.
    pub fn committed(&mut self, id: u32, next: i64) {
        if self.partitions.contains_key(&id) {
            self.restart.insert(id, next);
        }
    }

    /// Gives every partition held a new id, as if it had been revoked and
    /// assigned again (the old id's batches are abandoned, its late commits
    /// dropped); returns where each is read again from: the offset after
    /// the last committed transaction, or the first offset read.
    pub fn rewind(&mut self) -> Vec<Rewound> {
        self.done.clear();
        let mut held: Vec<(u32, (String, i32))> = self.partitions.drain().collect();
        held.sort();
        let mut from = Vec::new();
        for (old, (topic, partition)) in held {
            let next = self.restart.remove(&old);
            self.revoked.insert(old, (topic.clone(), partition));
            if let Some(m) = self.ids.get_mut(&topic) {
                m.remove(&partition);
            }
            let Some(next) = next else { continue };
            let new = self.id(&topic, partition, next);
            from.push(Rewound {
                topic,
                partition,
                next,
                old,
                new,
            });
        }
        from
    }

    /// Records a confirmed offset; returns the topic and partition to commit
    /// `offset + 1` for, unless the partition was revoked meanwhile.
    pub fn confirm(&mut self, id: u32, offset: u64) -> Option<(String, i32, i64)> {
        let (topic, partition) = self.partitions.get(&id)?.clone();
        let next = offset as i64 + 1;
        self.done.insert(id, next);
        Some((topic, partition, next))
    }

    /// The topic and partition number of an id this worker holds.
    pub fn topic_partition(&self, id: u32) -> Option<(String, i32)> {
        self.partitions.get(&id).cloned()
    }

    /// The checkpoint name (`<topic>.<partition>`) of an id this worker
    /// holds.
    pub fn name(&self, id: u32) -> Option<String> {
        self.partitions
            .get(&id)
            .map(|(t, p)| checkpoint_name(t, *p))
    }

    /// Whether `id` stands for a partition this worker holds (and is not
    /// giving up).
    pub fn holds(&self, id: u32) -> bool {
        self.partitions.contains_key(&id) && !self.leaving.contains(&id)
    }

    /// Marks a partition being revoked: no longer held for new work, while
    /// its offsets can still be committed. `false` when it has no id (was
    /// never read).
    pub fn leave(&mut self, topic: &str, partition: i32) -> bool {
        match self.ids.get(topic).and_then(|m| m.get(&partition)) {
            Some(&id) => self.leaving.insert(id),
            None => false,
        }
    }

    /// The topic and partition a revoked id stood for.
    pub fn forgotten(&self, id: u32) -> Option<(String, i32)> {
        self.revoked.get(&id).cloned()
    }

    /// Forgets a revoked partition; returns its last confirmed next offset.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let id = self.ids.get_mut(topic)?.remove(&partition)?;
        if let Some(tp) = self.partitions.remove(&id) {
            self.revoked.insert(id, tp);
        }
        self.restart.remove(&id);
        self.leaving.remove(&id);
        self.done.remove(&id)
    }
}

/// A partition moved back after an aborted transaction.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewound {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset it is read again from.
    pub next: i64,
    /// Its id until now.
    pub old: u32,
    /// Its id from now on.
    pub new: u32,
}

/// How a Kafka partition is named in checkpoints.
pub fn checkpoint_name(topic: &str, partition: i32) -> String {
    format!("{topic}.{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reassigned_partition_gets_a_new_id_and_late_commits_are_dropped() {
        let mut a = Assignments::default();
        let first = a.id("t", 0, 0);
        assert_eq!(a.id("t", 0, 5), first);
        assert_eq!(a.confirm(first, 9), Some(("t".into(), 0, 10)));
        assert!(a.holds(first));
        assert_eq!(a.revoke("t", 0), Some(10));
        assert!(!a.holds(first), "revoked: its batches are abandoned");
        assert_eq!(a.confirm(first, 20), None, "revoked: nothing to commit");
        assert_eq!(a.name(first), None, "revoked: no checkpoint to write");
        let again = a.id("t", 0, 10);
        assert_ne!(again, first);
        assert_eq!(a.name(again).as_deref(), Some("t.0"));
    }

    #[test]
    fn a_rewind_reads_from_the_last_committed_offset_or_the_first_one_read() {
        let mut a = Assignments::default();
        let zero = a.id("t", 0, 100);
        let one = a.id("t", 1, 7);
        a.committed(zero, 150);
        a.confirm(one, 30);
        let rewound = a.rewind();
        let from: Vec<_> = rewound
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.next, r.old))
            .collect();
        assert_eq!(
            from,
            [("t", 0, 150, zero), ("t", 1, 7, one)],
            "a confirmed offset is not a committed one"
        );
        assert!(
            !a.holds(zero) && !a.holds(one),
            "the old batches are abandoned"
        );
        assert_eq!(a.forgotten(one), Some(("t".into(), 1)));
        let new_one = rewound[1].new;
        assert_ne!(new_one, one, "read again under a new id");
        assert_eq!(a.id("t", 1, 7), new_one, "given at the rewind");
        assert_eq!(a.name(new_one).as_deref(), Some("t.1"));
        let again = a.rewind();
        assert_eq!(again[1].next, 7, "still nothing committed");
        assert_eq!(again[1].old, new_one);
    }
}
