//! [`LiveMap`]: a partition's keyed state in memory, each key and its value
//! in one allocation (`key length, key, value`) behind a 24-byte slot of
//! one hash table that keeps the key's hash beside it. A map of `Vec` keys
//! to `Vec` values costs three allocations and a 48-byte slot per key; at a
//! million keys that is what the worker thread spends its time on
//! (allocating, and moving slots as the table grows). With the hash in the
//! slot, growing the table does not read every key again, and a lookup
//! reads only the entry whose hash matches.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Keys come from events, so from outside: hashed with foldhash, seeded
/// per map.
#[derive(Default)]
pub(super) struct LiveMap {
    table: HashTable<(u64, Box<[u8]>)>,
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for LiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMap")
            .field("keys", &self.table.len())
            .finish()
    }
}

fn key_of(entry: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(entry[..4].try_into().expect("4 bytes")) as usize;
    &entry[4..4 + len]
}

fn value_of(entry: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(entry[..4].try_into().expect("4 bytes")) as usize;
    &entry[4 + len..]
}

fn entry(key: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut e = Vec::with_capacity(4 + key.len() + value.len());
    e.extend_from_slice(&(key.len() as u32).to_le_bytes());
    e.extend_from_slice(key);
    e.extend_from_slice(value);
    e.into_boxed_slice()
}

impl LiveMap {
    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The value under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |(h, e)| *h == hash && key_of(e) == key)
            .map(|(_, e)| value_of(e))
    }

    /// Sets `key` to `value`; returns the value it had.
    pub(super) fn insert(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hasher.hash_one(key);
        if let Some((_, e)) = self
            .table
            .find_mut(hash, |(h, e)| *h == hash && key_of(e) == key)
        {
            let old = value_of(e).to_vec();
            if old.len() == value.len() {
                let at = e.len() - value.len();
                e[at..].copy_from_slice(value);
            } else {
                *e = entry(key, value);
            }
            return Some(old);
        }
        self.table
            .insert_unique(hash, (hash, entry(key, value)), |(h, _)| *h);
        None
    }

    /// Removes `key`; returns the value it had.
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hasher.hash_one(key);
        match self
            .table
            .find_entry(hash, |(h, e)| *h == hash && key_of(e) == key)
        {
            Ok(found) => Some(value_of(&found.remove().0 .1).to_vec()),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_change_size_and_keys_come_and_go() {
        let mut m = LiveMap::default();
        assert_eq!(m.insert(b"a", b"1"), None);
        assert_eq!(m.insert(b"", b""), None);
        assert_eq!(m.insert(b"a", b"2"), Some(b"1".to_vec()));
        assert_eq!(m.insert(b"a", b"three"), Some(b"2".to_vec()));
        assert_eq!(
            (m.get(b"a"), m.get(b""), m.len()),
            (Some(&b"three"[..]), Some(&b""[..]), 2)
        );
        assert_eq!(m.remove(b"a"), Some(b"three".to_vec()));
        assert_eq!(m.remove(b"a"), None);
        assert_eq!((m.get(b"a"), m.len()), (None, 1));
        for i in 0..10_000u32 {
            m.insert(&i.to_le_bytes(), &i.to_be_bytes());
        }
        assert_eq!(m.get(&77u32.to_le_bytes()), Some(&77u32.to_be_bytes()[..]));
        assert_eq!(m.len(), 10_001);
    }
}
