//! [`ChangedKeys`]: one stage's keys changed since a partition's last save,
//! each with its value now. Every confirmed batch's changes merge into it,
//! so where every event changes a different key it takes a merge per
//! event. Keys and values sit in one buffer, in the order they first
//! changed (a value that changes size moves to the end; the space left
//! behind is reclaimed once it is half the buffer); an 8-byte index slot
//! (the key's hash and its place) finds them. Growing moves 8-byte slots
//! and reads no key, and no key costs an allocation.
//!
//! A write the worker's map marked as one of a key it did not hold
//! ([`KeyedDelta::iter_marked`]) is not looked up: such a key is not among
//! the changes unless a removal of it is, so while no removal was merged
//! (and every delta came from one map) it is appended, unindexed. Its
//! index slot is made when a lookup next needs the index, for all such
//! keys at once. A state that grows by new keys builds no index at all.

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
    /// `spans[..indexed]` are in `index`; the rest were appended unindexed.
    indexed: usize,
    /// The map whose writes of new keys were appended unindexed
    /// ([`KeyedDelta::origin`]); 0 before the first.
    origin: u64,
    /// Whether a write of a new key may already be among the changes
    /// (a removal was recorded, or deltas came from two maps): then every
    /// write is looked up.
    doubt: bool,
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

    /// No changes, with room for as many as `like` holds (and index
    /// slots for as many as it indexed) without growing.
    pub fn room_like(like: &ChangedKeys) -> Self {
        ChangedKeys {
            bytes: Vec::with_capacity(like.bytes()),
            spans: Vec::with_capacity(like.len()),
            index: HashTable::with_capacity(like.index.len()),
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
        self.doubt |= value.is_none();
        self.index_appended();
        let h = self.hash(key);
        match self.find(h, key) {
            Some(i) => self.replace(i, value),
            None => self.push(h, key, value),
        }
    }

    /// Records `key`'s `value` unless a change of the key is recorded: for
    /// an older change put back under newer ones.
    pub fn insert_older(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.doubt = true;
        self.index_appended();
        let h = self.hash(key);
        if self.find(h, key).is_none() {
            self.push(h, key, value);
        }
    }

    /// Merges a batch's writes, in order.
    pub fn merge(&mut self, delta: &KeyedDelta) {
        let origin = delta.origin();
        if self.origin != origin {
            // Marks speak of one map, seen from the first change on.
            self.doubt |= origin == 0 || self.origin != 0 || !self.spans.is_empty();
            self.origin = origin;
        }
        for (k, v, new) in delta.iter_marked() {
            match v {
                Some(v) if new && !self.doubt => {
                    let span = self.append(k, Some(v));
                    self.spans.push(span);
                }
                _ => self.insert(k, v),
            }
        }
    }

    /// Indexes the spans appended unindexed. Were a key among them twice
    /// (which the marks rule out), every change is recorded again, each
    /// looked up.
    fn index_appended(&mut self) {
        if self.indexed == self.spans.len() {
            return;
        }
        self.index
            .reserve(self.spans.len() - self.indexed, |&(h, _)| spread(h));
        for i in self.indexed..self.spans.len() {
            let key = self.key(self.spans[i]);
            let h = self.hash(key);
            if self.find(h, key).is_some() {
                self.record_again();
                return;
            }
            self.index
                .insert_unique(spread(h), (h, i as u32), |&(h, _)| spread(h));
            self.indexed = i + 1;
        }
    }

    /// Records every change again, in order, each looked up.
    fn record_again(&mut self) {
        let old = std::mem::take(self);
        self.hasher = old.hasher.clone();
        self.doubt = true;
        for (k, v) in old.iter() {
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
        self.indexed = self.spans.len();
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

    /// The change recorded for `key`: `Some(None)` for a removal. Keys
    /// appended unindexed since the last lookup that needed the index are
    /// searched one by one.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let appended = || {
            self.spans[self.indexed..]
                .iter()
                .position(|&s| self.key(s) == key)
                .map(|i| self.indexed + i)
        };
        self.find(self.hash(key), key)
            .or_else(appended)
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
            origin: old.origin,
            doubt: old.doubt,
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

    /// A delta of map `origin`: `(key, value, new to the map)` writes.
    fn delta(origin: u64, writes: &[(&str, Option<&str>, bool)]) -> KeyedDelta {
        let mut d = KeyedDelta::of(origin);
        for &(k, v, new) in writes {
            match (v, new) {
                (Some(v), true) => d.push_new(k.as_bytes(), v.as_bytes()),
                _ => d.push(k.as_bytes(), v.map(str::as_bytes)),
            }
        }
        d
    }

    fn eager(deltas: &[&KeyedDelta]) -> ChangedKeys {
        let mut c = ChangedKeys::new();
        for d in deltas {
            c.extend(d.iter());
        }
        c
    }

    #[test]
    fn new_keys_are_appended_unindexed_and_indexed_when_a_lookup_needs_them() {
        let growing = delta(3, &[("a", Some("1"), true), ("b", Some("1"), true)]);
        let mut c = ChangedKeys::new();
        c.merge(&growing);
        assert_eq!((c.indexed, c.index.len()), (0, 0), "nothing looked up");
        assert_eq!(c.get(b"b"), Some(Some(&b"1"[..])), "found unindexed");
        let again = delta(3, &[("c", Some("1"), true), ("a", Some("2"), false)]);
        c.merge(&again);
        assert_eq!((c.indexed, c.index.len()), (3, 3));
        assert_eq!(c, eager(&[&growing, &again]));
        let order: Vec<_> = c.iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(order, [b"a", b"b", b"c"]);
    }

    #[test]
    fn after_a_removal_or_from_another_map_every_write_is_looked_up() {
        let removed = delta(
            4,
            &[
                ("a", Some("1"), true),
                ("a", None, false),
                ("a", Some("2"), true),
            ],
        );
        let mut c = ChangedKeys::new();
        c.merge(&removed);
        assert_eq!((c.len(), c.get(b"a")), (1, Some(Some(&b"2"[..]))));
        assert!(c.doubt);
        let first = delta(5, &[("k", Some("1"), true)]);
        let other = delta(6, &[("k", Some("2"), true)]);
        let mut c = ChangedKeys::new();
        c.merge(&first);
        c.merge(&other);
        assert_eq!((c.len(), c.get(b"k")), (1, Some(Some(&b"2"[..]))));
        let mut c = ChangedKeys::new();
        c.insert_older(b"k", None);
        c.merge(&first);
        assert_eq!((c.len(), c.get(b"k")), (1, Some(Some(&b"1"[..]))));
    }

    #[test]
    fn a_key_marked_new_twice_is_recorded_once() {
        // The marks rule this out; were one wrong, the changes still hold
        // each key once, with its last value, in first-change order.
        let wrong = delta(
            9,
            &[
                ("x", Some("1"), true),
                ("y", Some("1"), true),
                ("x", Some("2"), true),
            ],
        );
        let mut c = ChangedKeys::new();
        c.merge(&wrong);
        c.insert(b"z", Some(b"3"));
        let all: Vec<_> = c
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        let want = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
        assert_eq!(all, [want("x", "2"), want("y", "1"), want("z", "3")]);
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
