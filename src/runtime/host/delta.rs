//! [`KeyedDelta`]: writes to one stage's keyed state of a partition, in
//! order, their keys and values in one buffer. A batch's changes travel
//! from the worker thread to the loop that confirms and saves them; as one
//! buffer they cost the worker no allocation per changed key, and the other
//! threads no free of one.

/// The value length that stands for a removal.
const REMOVED: u32 = u32::MAX;
/// Bytes of buffer [`KeyedDelta::clear`] keeps.
const KEEP: usize = 1 << 20;

/// Writes in order (a key may repeat; the last one counts).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyedDelta {
    bytes: Vec<u8>,
    /// Per write: where its key starts in `bytes`, the key's length, and
    /// the value's (after the key; [`REMOVED`] for a removal).
    writes: Vec<(usize, u32, u32)>,
}

impl KeyedDelta {
    /// No writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// No writes, with room for as many as `like` holds, of as many bytes.
    pub fn sized_like(like: &KeyedDelta) -> Self {
        KeyedDelta {
            bytes: Vec::with_capacity(like.bytes.len()),
            writes: Vec::with_capacity(like.writes.len()),
        }
    }

    /// Adds a write: `key` set to `value`, or removed (`None`).
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let len = match value {
            Some(v) => {
                self.bytes.extend_from_slice(v);
                u32::try_from(v.len()).expect("a value is smaller than 4 GiB")
            }
            None => REMOVED,
        };
        let key_len = u32::try_from(key.len()).expect("a key is smaller than 4 GiB");
        self.writes.push((at, key_len, len));
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
            *self = KeyedDelta::new();
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
        self.writes.iter().map(|&(at, k, v)| {
            let key_end = at + k as usize;
            let value = (v != REMOVED).then(|| &self.bytes[key_end..key_end + v as usize]);
            (&self.bytes[at..key_end], value)
        })
    }
}

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
        d.push(b"c", Some(b"3"));
        assert_eq!(
            d,
            KeyedDelta::from_iter([(b"a", Some(b"1")), (b"c", Some(b"3"))])
        );
        d.truncate(5);
        assert_eq!(d.len(), 2);
        d.clear();
        assert!(d.is_empty());
        d.push(&[0; 2 << 20], None);
        d.clear();
        assert_eq!(d.bytes.capacity(), 0, "a large buffer is let go");
    }
}
