//! [`KeyedDelta`]: writes to one stage's keyed state of a partition, in
//! order, their keys and values in one buffer. A batch's changes travel
//! from the worker thread to the loop that confirms and saves them; as one
//! buffer they cost the worker no allocation per changed key, and the other
//! threads no free of one.
//!
//! A write may be marked as one of a key the state did not hold: the
//! worker's map found that out already, and the save's index of changed
//! keys need not look such a key up again ([`KeyedDelta::iter_marked`]).

/// The value length that stands for a removal.
const REMOVED: u32 = u32::MAX;
/// The bit of a key's length that marks a write of a key new to the map.
const NEW: u32 = 1 << 31;
/// Bytes of buffer [`KeyedDelta::clear`] keeps.
const KEEP: usize = 1 << 20;

/// Writes in order (a key may repeat; the last one counts).
#[derive(Clone, Default)]
pub struct KeyedDelta {
    bytes: Vec<u8>,
    /// Per write: where its key starts in `bytes`, the key's length (with
    /// [`NEW`] for a key new to the map), and the value's (after the key;
    /// [`REMOVED`] for a removal).
    writes: Vec<(usize, u32, u32)>,
    /// The map the writes went to ([`KeyedDelta::origin`]).
    origin: u64,
}

impl KeyedDelta {
    /// No writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// No writes, with room for as many as `like` holds, of as many bytes,
    /// for writes to the map `like`'s went to.
    pub fn sized_like(like: &KeyedDelta) -> Self {
        KeyedDelta {
            bytes: Vec::with_capacity(like.bytes.len()),
            writes: Vec::with_capacity(like.writes.len()),
            origin: like.origin,
        }
    }

    /// No writes yet, of the map `origin` names ([`KeyedDelta::origin`]).
    pub fn of(origin: u64) -> Self {
        KeyedDelta {
            origin,
            ..KeyedDelta::default()
        }
    }

    /// The map the writes went to: an id no other map of the process
    /// shares, or 0 when unknown. Marks of writes of new keys
    /// ([`KeyedDelta::push_new`]) mean something only among the deltas of
    /// one map.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Adds a write: `key` set to `value`, or removed (`None`).
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.push_marked(key, value, false);
    }

    /// Adds a write that set `key`, which the map did not hold, to `value`.
    pub fn push_new(&mut self, key: &[u8], value: &[u8]) {
        self.push_marked(key, Some(value), true);
    }

    fn push_marked(&mut self, key: &[u8], value: Option<&[u8]>, new: bool) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let len = match value {
            Some(v) => {
                self.bytes.extend_from_slice(v);
                u32::try_from(v.len()).expect("a value is smaller than 4 GiB")
            }
            None => REMOVED,
        };
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|&l| l < NEW)
            .expect("a key is smaller than 2 GiB");
        self.writes
            .push((at, key_len | if new { NEW } else { 0 }, len));
    }

    /// From now on the writes are of the map `origin` names, and none is
    /// marked as one of a new key: for a map that changed without a write
    /// being tracked.
    pub fn unmark(&mut self, origin: u64) {
        self.origin = origin;
        for w in &mut self.writes {
            w.1 &= !NEW;
        }
    }

    /// Keeps the first `n` writes.
    pub fn truncate(&mut self, n: usize) {
        if let Some(&(at, _, _)) = self.writes.get(n) {
            self.bytes.truncate(at);
            self.writes.truncate(n);
        }
    }

    /// Drops every write. The buffers stay for the next ones, unless a
    /// large call grew them past 1 MiB.
    pub fn clear(&mut self) {
        self.truncate(0);
        if self.bytes.capacity() > KEEP {
            *self = KeyedDelta::of(self.origin);
        }
    }

    /// Writes held.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether it holds no write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Each write's key and value (`None`: removed), in order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&[u8], Option<&[u8]>)> + ExactSizeIterator + Clone + '_
    {
        self.iter_marked().map(|(k, v, _)| (k, v))
    }

    /// Each write's key and value (`None`: removed), and whether it set a
    /// key the map did not hold, in order.
    pub fn iter_marked(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&[u8], Option<&[u8]>, bool)> + ExactSizeIterator + Clone + '_
    {
        self.writes.iter().map(|&(at, k, v)| {
            let key_end = at + (k & !NEW) as usize;
            let value = (v != REMOVED).then(|| &self.bytes[key_end..key_end + v as usize]);
            (&self.bytes[at..key_end], value, k & NEW != 0)
        })
    }
}

/// The same writes in the same order; marks and origins aside.
impl PartialEq for KeyedDelta {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for KeyedDelta {}

impl std::fmt::Debug for KeyedDelta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, Option<V>)> for KeyedDelta {
    fn from_iter<I: IntoIterator<Item = (K, Option<V>)>>(writes: I) -> Self {
        let mut d = KeyedDelta::new();
        for (k, v) in writes {
            d.push(k.as_ref(), v.as_ref().map(AsRef::as_ref));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_read_back_in_order_and_truncate_to_a_mark() {
        let mut d = KeyedDelta::new();
        d.push(b"a", Some(b"1"));
        d.push(b"", None);
        d.push(b"b", Some(b""));
        let all: Vec<_> = d.iter().collect();
        assert_eq!(
            all,
            vec![
                (&b"a"[..], Some(&b"1"[..])),
                (&b""[..], None),
                (&b"b"[..], Some(&b""[..]))
            ]
        );
        d.truncate(1);
        d.push_new(b"c", b"3");
        assert_eq!(
            d,
            KeyedDelta::from_iter([(b"a", Some(b"1")), (b"c", Some(b"3"))])
        );
        let marks: Vec<_> = d.iter_marked().map(|(_, _, new)| new).collect();
        assert_eq!(marks, [false, true]);
        d.truncate(5);
        assert_eq!(d.len(), 2);
        d.clear();
        assert!(d.is_empty());
        let mut d = KeyedDelta::of(7);
        d.push(&[0; 2 << 20], None);
        d.clear();
        assert_eq!(d.bytes.capacity(), 0, "a large buffer is let go");
        assert_eq!(d.origin(), 7, "of the same map still");
    }
}
