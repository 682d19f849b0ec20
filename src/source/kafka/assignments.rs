//! Partition identities across rebalances.
//!
//! The engine knows a partition by a `u32`. Each time Kafka assigns a
//! partition to this worker it gets a fresh id, so batches, ordering and
//! stage state of one assignment never mix with a later one; when the
//! partition is revoked its id is forgotten and late commits for it are
//! dropped (the new owner re-reads from the last committed offset).

use std::collections::HashMap;

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
}

impl Assignments {
    /// The id of a partition this worker reads, created on first sight.
    pub fn id(&mut self, topic: &str, partition: i32) -> u32 {
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
        id
    }

    /// Records a confirmed offset; returns the topic and partition to commit
    /// `offset + 1` for, unless the partition was revoked meanwhile.
    pub fn confirm(&mut self, id: u32, offset: u64) -> Option<(String, i32, i64)> {
        let (topic, partition) = self.partitions.get(&id)?.clone();
        let next = offset as i64 + 1;
        self.done.insert(id, next);
        Some((topic, partition, next))
    }

    /// The checkpoint name (`<topic>.<partition>`) of an id this worker
    /// holds.
    pub fn name(&self, id: u32) -> Option<String> {
        self.partitions
            .get(&id)
            .map(|(t, p)| checkpoint_name(t, *p))
    }

    /// Whether `id` stands for a partition this worker holds.
    pub fn holds(&self, id: u32) -> bool {
        self.partitions.contains_key(&id)
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
        self.done.remove(&id)
    }
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
        let first = a.id("t", 0);
        assert_eq!(a.id("t", 0), first);
        assert_eq!(a.confirm(first, 9), Some(("t".into(), 0, 10)));
        assert!(a.holds(first));
        assert_eq!(a.revoke("t", 0), Some(10));
        assert!(!a.holds(first), "revoked: its batches are abandoned");
        assert_eq!(a.confirm(first, 20), None, "revoked: nothing to commit");
        assert_eq!(a.name(first), None, "revoked: no checkpoint to write");
        let again = a.id("t", 0);
        assert_ne!(again, first);
        assert_eq!(a.name(again).as_deref(), Some("t.0"));
    }
}
