//! [`KeyedState`]: one partition's keyed state of one stage, held by the
//! worker thread that runs the partition. The writes of a `process` call
//! wait aside until the call succeeds (then they apply) or fails (then they
//! are dropped), so a batch that is split and retried never counts twice.

use std::collections::HashMap;

/// Keys come from events, so from outside: the maps hash them with
/// foldhash (hashbrown's default: fast, seeded per map) rather than the
/// slower SipHash.
type Map<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// The largest key, in bytes.
pub const MAX_KEY: usize = 4 << 10;
/// The largest value, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// Default `state_max_bytes`: keys and values of one partition's state.
pub const DEFAULT_STATE_MAX_BYTES: u64 = 256 << 20;

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
#[derive(Debug, Default)]
pub struct KeyedState {
    live: Map<Vec<u8>>,
    /// Bytes of the keys and values in `live`.
    bytes: u64,
    /// Writes of the call in progress; `None` deletes.
    pending: Map<Option<Vec<u8>>>,
    /// `bytes` once the pending writes apply.
    pending_bytes: u64,
    /// Writes applied since the last [`KeyedState::take_changes`], in
    /// order (a key may repeat; the last one counts), when tracked.
    changed: Option<Vec<(Vec<u8>, Pending)>>,
    /// `state_max_bytes`; 0 until set means the default.
    max_bytes: u64,
}

/// A pending write: a value, or `None` for a delete.
type Pending = Option<Vec<u8>>;

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

    /// From now on, remembers which keys change (for persistence).
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Vec::new);
    }

    /// The value under `key`, with the pending writes applied.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.pending.get(key) {
            Some(v) => v.as_deref(),
            None => self.live.get(key).map(Vec::as_slice),
        }
    }

    /// Sets `key` to `value` (or removes it), pending until
    /// [`KeyedState::commit`].
    ///
    /// # Errors
    /// A [`StateError`] when the key, the value or the state would be too
    /// large; nothing changed.
    pub fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        if key.len() > MAX_KEY {
            return Err(StateError::KeyTooLarge(key.len()));
        }
        if let Some(v) = value {
            if v.len() > MAX_VALUE {
                return Err(StateError::ValueTooLarge(v.len()));
            }
        }
        let before = size(key, self.get(key));
        let after = size(key, value);
        let would = self.pending_bytes - before + after;
        if after > before && would > self.max() {
            return Err(StateError::Full {
                would,
                max: self.max(),
            });
        }
        self.pending_bytes = would;
        self.pending.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        Ok(())
    }

    /// Several writes, all or none.
    ///
    /// # Errors
    /// The first write's [`StateError`]; then none of them applies.
    pub fn put_many<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), StateError> {
        // Each key's pending write before this call (`None`: it had none).
        let mut undo: Vec<(Vec<u8>, Option<Pending>)> = Vec::new();
        let bytes = self.pending_bytes;
        for (key, value) in entries {
            let previous = self.pending.get(key).cloned();
            if let Err(e) = self.put(key, value) {
                for (k, p) in undo.into_iter().rev() {
                    match p {
                        Some(p) => self.pending.insert(k, p),
                        None => self.pending.remove(&k),
                    };
                }
                self.pending_bytes = bytes;
                return Err(e);
            }
            undo.push((key.to_vec(), previous));
        }
        Ok(())
    }

    /// The call succeeded: its writes apply.
    pub fn commit(&mut self) {
        for (k, v) in self.pending.drain() {
            if let Some(changed) = &mut self.changed {
                changed.push((k.clone(), v.clone()));
            }
            match v {
                Some(v) => self.live.insert(k, v),
                None => self.live.remove(&k),
            };
        }
        self.bytes = self.pending_bytes;
    }

    /// The call failed: its writes are dropped.
    pub fn discard(&mut self) {
        self.pending.clear();
        self.pending_bytes = self.bytes;
    }

    /// The writes applied since the last call, in order (`None`: removed;
    /// a key may repeat, the last one counts). Empty unless
    /// [`KeyedState::track_changes`] was called.
    pub fn take_changes(&mut self) -> Vec<(Vec<u8>, Pending)> {
        match &mut self.changed {
            Some(changed) => std::mem::take(changed),
            None => Vec::new(),
        }
    }

    /// Applies changes taken from another state (a restore).
    pub fn apply(&mut self, changes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
        for (k, v) in changes {
            let before = size(&k, self.live.get(&k).map(Vec::as_slice));
            let after = size(&k, v.as_deref());
            self.bytes = self.bytes - before + after;
            match v {
                Some(v) => self.live.insert(k, v),
                None => self.live.remove(&k),
            };
        }
        self.pending.clear();
        self.pending_bytes = self.bytes;
    }

    /// Keys held (pending writes aside).
    pub fn keys(&self) -> usize {
        self.live.len()
    }

    /// Bytes of keys and values held (pending writes aside).
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
        assert_eq!(s.keys(), 0);
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (1, 2));
        s.put(b"a", Some(b"22")).unwrap();
        s.put(b"b", Some(b"3")).unwrap();
        s.discard();
        assert_eq!(s.get(b"a"), Some(&b"1"[..]));
        assert_eq!(s.get(b"b"), None);
        assert_eq!(s.take_changes(), vec![(b"a".to_vec(), Some(b"1".to_vec()))]);
        s.put(b"a", None).unwrap();
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (0, 0));
        assert_eq!(s.take_changes(), vec![(b"a".to_vec(), None)]);
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
        let r = s.put_many([
            (&b"x"[..], Some(&b"1"[..])),
            (&b"y"[..], Some(&b"123456789"[..])),
        ]);
        assert!(matches!(r, Err(StateError::Full { .. })));
        assert_eq!(s.get(b"x"), None, "all or nothing");
        s.commit();
        assert_eq!((s.keys(), s.bytes()), (1, 2));
    }
}
