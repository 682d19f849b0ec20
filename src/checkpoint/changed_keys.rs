//! [`ChangedKeys`]: one stage's keys changed since a partition's last save,
//! each with its value now. Every confirmed batch's changes merge into it,
//! so where every event changes a different key it takes a merge per
//! event. Keys and values sit in one buffer, in the order they first
//! changed (a value that changes size moves to the end; the space left
//! behind is reclaimed once it is half the buffer); an 8-byte index slot
//! (the key's hash and its place) finds them. Growing moves 8-byte slots
//! and reads no key, and no key costs an allocation.

use crate::runtime::KeyedDelta;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The value length that stands for a removal.
const REMOVED: u32 = u32::MAX;
/// Bytes left behind that are worth reclaiming.
const RECLAIM_AT: usize = 1 << 20;

/// Where one key and its value sit in the buffer.
#[derive(Clone, Copy)]
struct Span {
    at: usize,
    key: u32,
    /// [`REMOVED`] for a removal.
    value: u32,
}

impl Span {
    fn size(&self) -> usize {
        self.key as usize
            + if self.value == REMOVED {
                0
            } else {
                self.value as usize
            }
    }
}

/// One stage's changed keys, each with its value now (`None`: removed), in
/// the order they first changed; a key changed again keeps its place and
/// takes the new value.
#[derive(Clone, Default)]
pub struct ChangedKeys {
    bytes: Vec<u8>,
    spans: Vec<Span>,
    /// Per span: its key's hash ([`ChangedKeys::hash`]) and its index.
    index: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
    /// Bytes of `bytes` no span points at.
    dead: usize,
}

/// The table's hash of a 32-bit hash: its bits high (where the table
/// looks for its tag) and low (where it looks for the bucket).
fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

fn value_len(value: Option<&[u8]>) -> u32 {
    value.map_or(REMOVED, |v| {
        u32::try_from(v.len()).expect("a value is smaller than 4 GiB")
    })
}

impl ChangedKeys {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// No changes, with room for `keys` keys and `bytes` bytes of keys and
    /// values without growing.
    pub fn with_capacity(keys: usize, bytes: usize) -> Self {
        ChangedKeys {
            bytes: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(keys),
            index: HashTable::with_capacity(keys),
            ..Self::default()
        }
    }

    fn hash(&self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    fn key(&self, s: Span) -> &[u8] {
        &self.bytes[s.at..s.at + s.key as usize]
    }

    fn value(&self, s: Span) -> Option<&[u8]> {
        let at = s.at + s.key as usize;
        (s.value != REMOVED).then(|| &self.bytes[at..at + s.value as usize])
    }

    /// The span index of `key`.
    fn find(&self, h: u32, key: &[u8]) -> Option<usize> {
        self.index
            .find(spread(h), |&(sh, i)| {
                sh == h && self.key(self.spans[i as usize]) == key
            })
            .map(|&(_, i)| i as usize)
    }

    /// Records that `key` now has `value` (`None`: removed); a later
    /// change wins over an earlier one.
    pub fn insert(&mut self, key: &[u8], value: Option<&[u8]>) {
        let h = self.hash(key);
        match self.find(h, key) {
            Some(i) => self.replace(i, value),
            None => self.push(h, key, value),
        }
    }

    /// Records `key`'s `value` unless a change of the key is recorded: for
    /// an older change put back under newer ones.
    pub fn insert_older(&mut self, key: &[u8], value: Option<&[u8]>) {
        let h = self.hash(key);
        if self.find(h, key).is_none() {
            self.push(h, key, value);
        }
    }

    /// Merges a batch's writes, in order.
    pub fn merge(&mut self, delta: &KeyedDelta) {
        for (k, v) in delta.iter() {
            self.insert(k, v);
        }
    }

    fn append(&mut self, key: &[u8], value: Option<&[u8]>) -> Span {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value.unwrap_or_default());
        let key = u32::try_from(key.len()).expect("a key is smaller than 4 GiB");
        Span {
            at,
            key,
            value: value_len(value),
        }
    }

    fn push(&mut self, h: u32, key: &[u8], value: Option<&[u8]>) {
        let i = u32::try_from(self.spans.len()).expect("fewer than 2^32 changed keys");
        let span = self.append(key, value);
        self.spans.push(span);
        self.index
            .insert_unique(spread(h), (h, i), |&(h, _)| spread(h));
    }

    fn replace(&mut self, i: usize, value: Option<&[u8]>) {
        let old = self.spans[i];
        if old.value == value_len(value) {
            if let Some(v) = value {
                let at = old.at + old.key as usize;
                self.bytes[at..at + v.len()].copy_from_slice(v);
            }
            return;
        }
        // The key moves to the end with its new value.
        let at = self.bytes.len();
        self.bytes
            .extend_from_within(old.at..old.at + old.key as usize);
        self.bytes.extend_from_slice(value.unwrap_or_default());
        self.spans[i] = Span {
            at,
            key: old.key,
            value: value_len(value),
        };
        self.dead += old.size();
        if self.dead >= RECLAIM_AT && self.dead * 2 >= self.bytes.len() {
            self.reclaim();
        }
    }

    /// Copies what the spans point at to a new buffer, in their order.
    fn reclaim(&mut self) {
        let old = std::mem::take(&mut self.bytes);
        self.bytes.reserve(old.len() - self.dead);
        for s in &mut self.spans {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(&old[s.at..s.at + s.size()]);
            s.at = at;
        }
        self.dead = 0;
    }

    /// The change recorded for `key`: `Some(None)` for a removal.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.find(self.hash(key), key)
            .map(|i| self.value(self.spans[i]))
    }

    /// Whether a change of `key` is recorded.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Keys changed.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no key changed.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes of the keys and their values now.
    pub fn bytes(&self) -> usize {
        self.bytes.len() - self.dead
    }

    /// Each changed key with its value now (`None`: removed), in the order
    /// they first changed.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&[u8], Option<&[u8]>)> + ExactSizeIterator + '_ {
        self.spans.iter().map(|&s| (self.key(s), self.value(s)))
    }

    /// Keeps the changes `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], Option<&[u8]>) -> bool) {
        let old = std::mem::take(self);
        *self = ChangedKeys {
            hasher: old.hasher.clone(),
            ..ChangedKeys::default()
        };
        for (k, v) in old.iter() {
            if keep(k, v) {
                let h = self.hash(k);
                self.push(h, k, v);
            }
        }
    }
}

impl std::fmt::Debug for ChangedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The same keys with the same values, in any order.
impl PartialEq for ChangedKeys {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ChangedKeys {}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> Extend<(K, Option<V>)> for ChangedKeys {
    fn extend<I: IntoIterator<Item = (K, Option<V>)>>(&mut self, changes: I) {
        for (k, v) in changes {
            self.insert(k.as_ref(), v.as_ref().map(AsRef::as_ref));
        }
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, Option<V>)> for ChangedKeys {
    fn from_iter<I: IntoIterator<Item = (K, Option<V>)>>(changes: I) -> Self {
        let mut c = ChangedKeys::new();
        c.extend(changes);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_changes_win_older_ones_fill_in_and_order_is_first_change() {
        let mut c = ChangedKeys::new();
        for i in 0..10_000u32 {
            c.insert(&i.to_le_bytes(), Some(&[1]));
        }
        c.insert(&7u32.to_le_bytes(), None);
        c.insert_older(&7u32.to_le_bytes(), Some(&[9]));
        c.insert_older(b"new", Some(&[2]));
        assert_eq!(c.len(), 10_001);
        assert_eq!(c.get(&7u32.to_le_bytes()), Some(None));
        assert_eq!(c.get(b"new"), Some(Some(&[2][..])));
        assert_eq!(c.iter().next().unwrap().0, 0u32.to_le_bytes());
        c.retain(|_, v| v.is_some());
        assert_eq!(
            (c.len(), c.contains_key(&7u32.to_le_bytes())),
            (10_000, false)
        );
        assert!(c.contains_key(&9_999u32.to_le_bytes()));
        let reversed: Vec<_> = c.iter().collect();
        let same: ChangedKeys = reversed.into_iter().rev().collect();
        assert_eq!(same, c, "equal in any order");
    }

    #[test]
    fn values_that_change_size_move_and_the_space_they_leave_is_reclaimed() {
        let mut c = ChangedKeys::new();
        c.insert(b"still", Some(b"s"));
        for round in 0..3_000usize {
            let value = vec![round as u8; round % 1_000];
            c.insert(b"hot", Some(&value));
            assert_eq!(c.get(b"hot"), Some(Some(&value[..])));
        }
        c.insert(b"hot", None);
        assert_eq!(c.get(b"hot"), Some(None));
        assert_eq!(c.get(b"still"), Some(Some(&b"s"[..])));
        assert_eq!(c.bytes(), "still".len() + 1 + "hot".len());
        assert!(
            c.bytes.len() < 3 * RECLAIM_AT,
            "{} bytes held for {} live",
            c.bytes.len(),
            c.bytes()
        );
    }
}
