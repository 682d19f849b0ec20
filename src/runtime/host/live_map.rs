//! [`LiveMap`]: a partition's keyed state in memory, each key and its value
//! in one allocation (`key length, key, value`) behind a 24-byte slot of
//! one hash table that keeps the key's hash beside it. A map of `Vec` keys
//! to `Vec` values costs three allocations and a 48-byte slot per key; at a
//! million keys that is what the worker thread spends its time on
//! (allocating, and moving slots as the table grows). With the hash in the
//! slot, growing the table does not read every key again, and a lookup
//! reads only the entry whose hash matches.

use hashbrown::hash_table::Entry;
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

    /// Sets `key` to `value`, or removes it (`None`), with one lookup;
    /// `check` first sees the value the key has now (`None`: it has none)
    /// and may refuse, and then nothing changes.
    pub(super) fn write<E>(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        check: impl FnOnce(Option<&[u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        let hash = self.hasher.hash_one(key);
        let found = self
            .table
            .entry(hash, |(h, e)| *h == hash && key_of(e) == key, |(h, _)| *h);
        match found {
            Entry::Occupied(mut slot) => {
                check(Some(value_of(&slot.get().1)))?;
                match value {
                    Some(v) => {
                        let e = &mut slot.get_mut().1;
                        if value_of(e).len() == v.len() {
                            let at = e.len() - v.len();
                            e[at..].copy_from_slice(v);
                        } else {
                            *e = entry(key, v);
                        }
                    }
                    None => {
                        slot.remove();
                    }
                }
            }
            Entry::Vacant(slot) => {
                check(None)?;
                if let Some(v) = value {
                    slot.insert((hash, entry(key, v)));
                }
            }
        }
        Ok(())
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
