//! [`LiveMap`]: a partition's keyed state in memory, each key and its value
//! in one allocation (`key length, key, value`), found through a
//! [`HashIndex`] of 8-byte slots (the key's hash and the entry's place). A
//! map of `Vec` keys to `Vec` values costs three allocations and a 48-byte
//! slot per key; at a million keys that is what the worker thread spends
//! its time on (allocating, and moving slots as the table grows). A key
//! new to the map costs one cache miss, in the index, which a batch's
//! lookups ask for ahead ([`LiveMap::prefetch`]).

use super::hash_index::HashIndex;
use std::hash::BuildHasher;

/// Keys come from events, so from outside: hashed with foldhash, seeded
/// per map.
#[derive(Default)]
pub(super) struct LiveMap {
    index: HashIndex,
    entries: Vec<Box<[u8]>>,
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for LiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMap")
            .field("keys", &self.entries.len())
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
        self.entries.len()
    }

    fn hash(&self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    /// The place of `key`'s entry.
    fn find(&self, hash: u32, key: &[u8]) -> Option<u32> {
        self.index
            .find(hash, |p| key_of(&self.entries[p as usize]) == key)
    }

    /// Asks for what a lookup of `key` reads first: a batch's lookups
    /// that do so some keys ahead wait for memory once, not once per key.
    pub(super) fn prefetch(&self, key: &[u8]) {
        self.index.prefetch(self.hash(key));
    }

    /// The value under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(self.hash(key), key)
            .map(|p| value_of(&self.entries[p as usize]))
    }

    /// Sets `key` to `value`, or removes it (`None`), with one lookup;
    /// `check` first sees the value the key has now (`None`: it has none)
    /// and may refuse, and then nothing changes.
    pub(super) fn write<E>(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        check: impl FnOnce(Option<&[u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        let hash = self.hash(key);
        let Some(place) = self.find(hash, key) else {
            check(None)?;
            if let Some(v) = value {
                let place = u32::try_from(self.entries.len()).expect("fewer than 2^32 keys");
                self.index.insert(hash, place);
                self.entries.push(entry(key, v));
            }
            return Ok(());
        };
        let e = &mut self.entries[place as usize];
        check(Some(value_of(e)))?;
        match value {
            Some(v) if value_of(e).len() == v.len() => {
                let at = e.len() - v.len();
                e[at..].copy_from_slice(v);
            }
            Some(v) => *e = entry(key, v),
            None => self.remove(hash, place),
        }
        Ok(())
    }

    /// Removes the entry at `place`; the last entry takes its place.
    fn remove(&mut self, hash: u32, place: u32) {
        self.index.remove(hash, place);
        let last = self.entries.len() - 1;
        if place as usize != last {
            let moved = self.hash(key_of(&self.entries[last]));
            self.index.moved(moved, last as u32, place);
        }
        self.entries.swap_remove(place as usize);
    }

    /// Sets `key` to `value`, or removes it (`None`).
    pub(super) fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.write(key, value, |_| Ok::<_, std::convert::Infallible>(()))
            .unwrap_or_else(|never| match never {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_change_size_and_keys_come_and_go() {
        let mut m = LiveMap::default();
        let mut seen = Vec::new();
        let mut write = |m: &mut LiveMap, k: &[u8], v: Option<&[u8]>| {
            m.write(k, v, |old| {
                seen.push(old.map(<[u8]>::to_vec));
                Ok::<_, ()>(())
            })
            .unwrap();
        };
        write(&mut m, b"a", Some(b"1"));
        write(&mut m, b"", Some(b""));
        write(&mut m, b"a", Some(b"2"));
        write(&mut m, b"a", Some(b"three"));
        assert_eq!(
            (m.get(b"a"), m.get(b""), m.len()),
            (Some(&b"three"[..]), Some(&b""[..]), 2)
        );
        write(&mut m, b"a", None);
        write(&mut m, b"a", None);
        assert_eq!((m.get(b"a"), m.len()), (None, 1));
        assert_eq!(
            seen,
            [None, None, Some(b"1".to_vec()), Some(b"2".to_vec())]
                .into_iter()
                .chain([Some(b"three".to_vec()), None])
                .collect::<Vec<_>>()
        );
        for i in 0..10_000u32 {
            m.set(&i.to_le_bytes(), Some(&i.to_be_bytes()));
        }
        assert_eq!(m.get(&77u32.to_le_bytes()), Some(&77u32.to_be_bytes()[..]));
        assert_eq!(m.len(), 10_001);
        for i in (0..10_000u32).filter(|i| i % 3 != 1) {
            m.set(&i.to_le_bytes(), None);
        }
        for i in 0..10_000u32 {
            let expected = (i % 3 == 1).then(|| i.to_be_bytes());
            assert_eq!(m.get(&i.to_le_bytes()), expected.as_ref().map(|v| &v[..]));
        }
        assert_eq!(m.len(), 3_334);
    }

    #[test]
    fn a_refused_write_changes_nothing() {
        let mut m = LiveMap::default();
        m.set(b"a", Some(b"1"));
        assert_eq!(m.write(b"a", Some(b"22"), |_| Err("no")), Err("no"));
        assert_eq!(m.write(b"a", None, |_| Err("no")), Err("no"));
        assert_eq!(m.write(b"b", Some(b"2"), |_| Err("no")), Err("no"));
        assert_eq!(
            (m.get(b"a"), m.get(b"b"), m.len()),
            (Some(&b"1"[..]), None, 1)
        );
    }
}
