//! [`ChangedKeys`]: one stage's keys changed since a partition's last save,
//! each with its value now. Every confirmed batch's changes merge into it,
//! so where every event changes a different key it takes a merge per
//! event. The keys and values sit in a vector in the order they first
//! changed; an 8-byte index slot (the key's hash and its place in the
//! vector) finds them. A map of `Vec` keys to values would move 48-byte
//! slots as it grows and read every key again to place it: here growing
//! moves 8-byte slots and reads no key.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// A changed key's value now; `None`: removed.
pub type Change = Option<Vec<u8>>;

/// One stage's changed keys, each with its value now, in the order they
/// first changed; a key changed again keeps its place and takes the new
/// value.
#[derive(Clone, Default)]
pub struct ChangedKeys {
    entries: Vec<(Vec<u8>, Change)>,
    /// Per entry: its hash ([`ChangedKeys::hash`]) and its index.
    index: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
}

/// The table's hash of a 32-bit hash: its bits high (where the table
/// looks for its tag) and low (where it looks for the bucket).
fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

impl ChangedKeys {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    fn hash(&self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    /// The entry index of `key`.
    fn find(&self, h: u32, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(spread(h), |&(eh, i)| {
                eh == h && entries[i as usize].0.as_slice() == key
            })
            .map(|&(_, i)| i as usize)
    }

    /// Records that `key` now has `value` (`None`: removed); a later
    /// change wins over an earlier one.
    pub fn insert(&mut self, key: Vec<u8>, value: Change) {
        let h = self.hash(&key);
        match self.find(h, &key) {
            Some(i) => self.entries[i].1 = value,
            None => self.push(h, key, value),
        }
    }

    /// Records `key`'s `value` unless a change of the key is recorded: for
    /// an older change put back under newer ones.
    pub fn insert_older(&mut self, key: Vec<u8>, value: Change) {
        let h = self.hash(&key);
        if self.find(h, &key).is_none() {
            self.push(h, key, value);
        }
    }

    fn push(&mut self, h: u32, key: Vec<u8>, value: Change) {
        let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 changed keys");
        self.entries.push((key, value));
        self.index
            .insert_unique(spread(h), (h, i), |&(h, _)| spread(h));
    }

    /// The change recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Change> {
        self.find(self.hash(key), key).map(|i| &self.entries[i].1)
    }

    /// Whether a change of `key` is recorded.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Keys changed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key changed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each changed key with its value now, in the order they first
    /// changed.
    pub fn iter(&self) -> std::slice::Iter<'_, (Vec<u8>, Change)> {
        self.entries.iter()
    }

    /// Keeps the changes `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &Change) -> bool) {
        let entries = std::mem::take(&mut self.entries);
        self.index.clear();
        for (k, v) in entries {
            if keep(&k, &v) {
                let h = self.hash(&k);
                self.push(h, k, v);
            }
        }
    }
}

impl std::fmt::Debug for ChangedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// The same keys with the same values, in any order.
impl PartialEq for ChangedKeys {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ChangedKeys {}

impl Extend<(Vec<u8>, Change)> for ChangedKeys {
    fn extend<I: IntoIterator<Item = (Vec<u8>, Change)>>(&mut self, changes: I) {
        for (k, v) in changes {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(Vec<u8>, Change)> for ChangedKeys {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, Change)>>(changes: I) -> Self {
        let mut c = ChangedKeys::new();
        c.extend(changes);
        c
    }
}

impl IntoIterator for ChangedKeys {
    type Item = (Vec<u8>, Change);
    type IntoIter = std::vec::IntoIter<(Vec<u8>, Change)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a ChangedKeys {
    type Item = &'a (Vec<u8>, Change);
    type IntoIter = std::slice::Iter<'a, (Vec<u8>, Change)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_changes_win_older_ones_fill_in_and_order_is_first_change() {
        let mut c = ChangedKeys::new();
        for i in 0..10_000u32 {
            c.insert(i.to_le_bytes().to_vec(), Some(vec![1]));
        }
        c.insert(7u32.to_le_bytes().to_vec(), None);
        c.insert_older(7u32.to_le_bytes().to_vec(), Some(vec![9]));
        c.insert_older(b"new".to_vec(), Some(vec![2]));
        assert_eq!(c.len(), 10_001);
        assert_eq!(c.get(&7u32.to_le_bytes()), Some(&None));
        assert_eq!(c.get(b"new"), Some(&Some(vec![2])));
        assert_eq!(c.iter().next().unwrap().0, 0u32.to_le_bytes().to_vec());
        c.retain(|_, v| v.is_some());
        assert_eq!(
            (c.len(), c.contains_key(&7u32.to_le_bytes())),
            (10_000, false)
        );
        assert!(c.contains_key(&9_999u32.to_le_bytes()));
        let same: ChangedKeys = c.clone().into_iter().rev().collect();
        assert_eq!(same, c, "equal in any order");
    }
}
