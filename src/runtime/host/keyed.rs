//! [`KeyedState`]: one partition's keyed state of one stage, held by the
//! worker thread that runs the partition. The writes of a `process` call
//! stand when the call succeeds and are undone when it fails, so a batch
//! that is split and retried never counts twice.

use super::delta::KeyedDelta;
use super::live_map::LiveMap;

/// The largest key, in bytes.
pub const MAX_KEY: usize = 4 << 10;
/// The largest value, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// How many keys ahead a batch's lookups ask for memory.
const AHEAD: usize = 8;
/// Default `state_max_bytes`: keys and values of one partition's state.
pub const DEFAULT_STATE_MAX_BYTES: u64 = 256 << 20;

/// A new id for a map whose changes are tracked ([`KeyedDelta::origin`]).
fn new_origin() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Why a state operation was refused; the plugin sees the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The key is larger than [`MAX_KEY`].
    #[error("state: a key of {0} bytes is larger than the {MAX_KEY} bytes a key may have")]
    KeyTooLarge(usize),
    /// The value is larger than [`MAX_VALUE`].
    #[error("state: a value of {0} bytes is larger than the {MAX_VALUE} bytes a value may have")]
    ValueTooLarge(usize),
    /// The write would take the partition's state past `state_max_bytes`.
    #[error(
        "state: this partition's state would hold {would} bytes, more than the stage's \
         state_max_bytes ({max}); raise state_max_bytes or delete keys"
    )]
    Full {
        /// Bytes the state would hold.
        would: u64,
        /// The limit.
        max: u64,
    },
    /// State cannot be reached now (outside `process`, or a stateless
    /// stage).
    #[error("state: {0}")]
    Closed(String),
    /// A core module handed over a buffer that is not in the ABI's layout.
    #[error("state: {0}")]
    Malformed(String),
}

/// One partition's keyed state of one stage.
///
/// Writes go straight to the live map; each one leaves the key's value
/// before it in an undo log, which [`KeyedState::discard`] plays back and
/// [`KeyedState::commit`] forgets; when changes are tracked, each write is
/// also added to the changes to save, which a failed call cuts back. A
/// changed key costs one lookup in the live map, not a pending map beside
/// it.
#[derive(Debug, Default)]
pub struct KeyedState {
    live: LiveMap,
    /// Bytes of the keys and values in `live`.
    bytes: u64,
    /// The call in progress's writes: each key with its value before the
    /// write (`None`: it had none), in order, in one buffer.
    undo: KeyedDelta,
    /// `bytes` before the call in progress.
    committed_bytes: u64,
    /// Writes applied since the last [`KeyedState::take_changes`], in
    /// order (a key may repeat; the last one counts), when tracked: those
    /// of committed calls, then one per entry of `undo`.
    changed: Option<KeyedDelta>,
    /// `state_max_bytes`; 0 until set means the default.
    max_bytes: u64,
}

fn size(key: &[u8], value: Option<&[u8]>) -> u64 {
    value.map_or(0, |v| (key.len() + v.len()) as u64)
}

impl KeyedState {
    /// Empty state that may hold `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        KeyedState {
            max_bytes,
            ..KeyedState::default()
        }
    }

    /// The most bytes of keys and values it may hold from now on.
    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    fn max(&self) -> u64 {
        if self.max_bytes == 0 {
            DEFAULT_STATE_MAX_BYTES
        } else {
            self.max_bytes
        }
    }

    /// From now on, remembers which keys change (for persistence). Called
    /// between calls, not during one. The changes come from a map of an id
    /// of its own ([`KeyedDelta::origin`]), and each write of a key the
    /// map did not hold is marked as such.
    pub fn track_changes(&mut self) {
        self.changed
            .get_or_insert_with(|| KeyedDelta::of(new_origin()));
    }

    /// The value under each of `keys`, handed to `each` in order. Each
    /// lookup first asks for the memory of the lookup [`AHEAD`] keys
    /// later, so a batch of keys the cache does not hold waits for memory
    /// about once, not once per key.
    pub fn get_each<'k, I>(&self, keys: I, mut each: impl FnMut(Option<&[u8]>))
    where
        I: IntoIterator<Item = &'k [u8]>,
        I::IntoIter: Clone,
    {
        let keys = keys.into_iter();
        let mut ahead = keys.clone().skip(AHEAD);
        for key in keys {
            if let Some(next) = ahead.next() {
                self.live.prefetch(next);
            }
            each(self.live.get(key));
        }
    }

    /// The value under `key`, with the call in progress's writes.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.live.get(key)
    }

    /// Sets `key` to `value` (or removes it); undone by
    /// [`KeyedState::discard`] until [`KeyedState::commit`].
    ///
    /// # Errors
    /// A [`StateError`] when the key, the value or the state would be too
    /// large; nothing changed.
    pub fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.write(key, value)
    }

    /// Several writes, all or none.
    ///
    /// # Errors
    /// The first write's [`StateError`]; then none of them applies.
    pub fn put_many<'a, I>(&mut self, entries: I) -> Result<(), StateError>
    where
        I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        I::IntoIter: Clone,
    {
        let (mark, bytes) = (self.undo.len(), self.bytes);
        let entries = entries.into_iter();
        let mut ahead = entries.clone().skip(AHEAD);
        for (key, value) in entries {
            if let Some((next, _)) = ahead.next() {
                self.live.prefetch(next);
            }
            if let Err(e) = self.write(key, value) {
                self.undo_to(mark);
                self.bytes = bytes;
                return Err(e);
            }
        }
        Ok(())
    }

    /// One lookup in the live map, and no allocation but the map's own:
    /// the key and the value it had are copied to the undo log.
    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        if key.len() > MAX_KEY {
            return Err(StateError::KeyTooLarge(key.len()));
        }
        if let Some(v) = value {
            if v.len() > MAX_VALUE {
                return Err(StateError::ValueTooLarge(v.len()));
            }
        }
        let (bytes, max) = (self.bytes, self.max());
        let (undo, changed) = (&mut self.undo, &mut self.changed);
        let mut would = bytes;
        self.live.write(key, value, |old| {
            let (before, after) = (size(key, old), size(key, value));
            would = bytes - before + after;
            if after > before && would > max {
                return Err(StateError::Full { would, max });
            }
            undo.push(key, old);
            match (changed, old, value) {
                (Some(changed), None, Some(v)) => changed.push_new(key, v),
                (Some(changed), _, _) => changed.push(key, value),
                (None, _, _) => {}
            }
            Ok(())
        })?;
        self.bytes = would;
        Ok(())
    }

    /// Plays the undo log back to its first `mark` entries.
    fn undo_to(&mut self, mark: usize) {
        if let Some(changed) = &mut self.changed {
            changed.truncate(changed.len().saturating_sub(self.undo.len() - mark));
        }
        for (key, old) in self.undo.iter().skip(mark).rev() {
            self.live.set(key, old);
        }
        self.undo.truncate(mark);
    }

    /// The call succeeded: its writes stand.
    pub fn commit(&mut self) {
        self.undo.clear();
        self.committed_bytes = self.bytes;
    }

    /// The call failed: its writes are undone.
    pub fn discard(&mut self) {
        self.undo_to(0);
        self.undo.clear();
        self.bytes = self.committed_bytes;
    }

    /// The writes applied since the last call, in order (`None`: removed;
    /// a key may repeat, the last one counts). Empty unless
    /// [`KeyedState::track_changes`] was called.
    pub fn take_changes(&mut self) -> KeyedDelta {
        match &mut self.changed {
            // The next call likely writes as much: room for it spares the
            // buffers growing write by write.
            Some(changed) => {
                let next = KeyedDelta::sized_like(changed);
                std::mem::replace(changed, next)
            }
            None => KeyedDelta::new(),
        }
    }

    /// Applies changes taken from another state (a restore). They are not
    /// tracked, and the map takes a new id ([`KeyedDelta::origin`]): which
    /// keys it holds changed without a tracked write.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
        if let Some(changed) = &mut self.changed {
            changed.unmark(new_origin());
        }
        for (k, v) in changes {
            let before = size(&k, self.live.get(&k));
            let after = size(&k, v.as_deref());
            self.bytes = self.bytes - before + after;
            self.live.set(&k, v.as_deref());
        }
        self.undo.clear();
        self.committed_bytes = self.bytes;
    }

    /// Keys held (with the call in progress's writes).
    pub fn keys(&self) -> usize {
        self.live.len()
    }

    /// Bytes of keys and values held (with the call in progress's
    /// writes).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_apply_on_commit_and_vanish_on_discard() {
        let mut s = KeyedState::new(1000);
        s.track_changes();
        s.put(b"a", Some(b"1")).unwrap();
        assert_eq!(s.get(b"a"), Some(&b"1"[..]), "a call reads its own writes");
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (1, 2));
        s.put(b"a", Some(b"22")).unwrap();
        s.put(b"b", Some(b"3")).unwrap();
        s.discard();
        assert_eq!(s.get(b"a"), Some(&b"1"[..]));
        assert_eq!(s.get(b"b"), None);
        assert_eq!(
            s.take_changes(),
            KeyedDelta::from_iter([(b"a", Some(b"1"))])
        );
        s.put(b"a", None).unwrap();
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (0, 0));
        assert_eq!(
            s.take_changes(),
            KeyedDelta::from_iter([(b"a", None::<&[u8]>)])
        );
    }

    #[test]
    fn a_failed_call_undoes_every_write_of_a_key_it_wrote_twice() {
        let mut s = KeyedState::new(1000);
        s.track_changes();
        s.put(b"a", Some(b"0")).unwrap();
        s.commit();
        s.take_changes();
        s.put(b"a", Some(b"11")).unwrap();
        s.put_many([(&b"a"[..], Some(&b"2"[..])), (b"a", None)])
            .unwrap();
        s.put(b"n", Some(b"new")).unwrap();
        assert_eq!((s.get(b"a"), s.keys(), s.bytes()), (None, 1, 4));
        s.discard();
        assert_eq!((s.get(b"a"), s.get(b"n")), (Some(&b"0"[..]), None));
        assert_eq!((s.keys(), s.bytes()), (1, 2));
        assert!(
            s.take_changes().is_empty(),
            "nothing of a failed call is saved"
        );
        s.put(b"a", Some(b"3")).unwrap();
        s.put(b"a", Some(b"4")).unwrap();
        s.commit();
        let changes = s.take_changes();
        let last = changes.iter().rev().find(|(k, _)| k == b"a");
        assert_eq!(
            last,
            Some((&b"a"[..], Some(&b"4"[..]))),
            "the last write counts"
        );
    }

    #[test]
    fn writes_of_keys_the_map_did_not_hold_are_marked() {
        let mut s = KeyedState::new(1000);
        s.track_changes();
        s.put_many([
            (&b"a"[..], Some(&b"1"[..])),
            (b"a", Some(b"2")),
            (b"a", None),
            (b"a", Some(b"3")),
            (b"gone", None),
        ])
        .unwrap();
        s.commit();
        let changes = s.take_changes();
        let marks: Vec<_> = changes.iter_marked().map(|(_, _, new)| new).collect();
        assert_eq!(marks, [true, false, false, true, false]);
        let mut other = KeyedState::new(1000);
        other.track_changes();
        assert_ne!(changes.origin(), 0);
        assert_ne!(
            changes.origin(),
            other.take_changes().origin(),
            "one id per map"
        );
        s.apply([(b"b".to_vec(), Some(b"1".to_vec()))]);
        s.put(b"c", Some(b"1")).unwrap();
        assert_ne!(
            s.take_changes().origin(),
            changes.origin(),
            "a restore renames the map"
        );
    }

    #[test]
    fn limits_refuse_and_change_nothing() {
        let mut s = KeyedState::new(10);
        assert_eq!(
            s.put(&vec![0; MAX_KEY + 1], Some(b"")),
            Err(StateError::KeyTooLarge(MAX_KEY + 1))
        );
        assert!(matches!(
            s.put(b"k", Some(&vec![0; MAX_VALUE + 1])),
            Err(StateError::ValueTooLarge(_))
        ));
        s.put(b"k", Some(b"123456789")).unwrap();
        assert_eq!(
            s.put(b"j", Some(b"1")),
            Err(StateError::Full { would: 12, max: 10 })
        );
        // Shrinking is always allowed.
        s.put(b"k", Some(b"1")).unwrap();
        let r = s.put_many([(&b"x"[..], Some(&b"1"[..])), (b"y", Some(b"123456789"))]);
        assert!(matches!(r, Err(StateError::Full { .. })));
        assert_eq!(s.get(b"x"), None, "all or nothing");
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (1, 2));
    }
}
