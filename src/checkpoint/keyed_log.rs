//! Keyed-state changes as bytes, for the stores that keep a partition's
//! keyed state as a log of its saves' changes: `stage, key, value` per
//! changed key, each length-prefixed, a removed key's value written as a
//! length of [`NONE`]. Read back in order, later entries win; folding the
//! log (dropping overwritten and removed keys) gives the state.

use super::{KeyedChanges, KeyedEntries, StoreError};
use std::collections::BTreeMap;

/// The length that stands for a removed key.
const NONE: u32 = u32::MAX;

fn put(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
            buf.extend_from_slice(b);
        }
        None => buf.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Changes as one run of bytes.
pub(super) fn encode(changes: &KeyedChanges) -> Vec<u8> {
    let mut chunks = encode_chunks(changes, usize::MAX);
    chunks.pop().unwrap_or_default()
}

/// Changes as runs of bytes of about `chunk` bytes each (a run ends after
/// the key that takes it to `chunk` or past), each readable on its own.
/// None when nothing changed.
pub(super) fn encode_chunks(changes: &KeyedChanges, chunk: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut buf = Vec::new();
    for (stage, entries) in changes {
        for (k, v) in entries.iter() {
            put(&mut buf, Some(stage.as_bytes()));
            put(&mut buf, Some(k));
            put(&mut buf, v);
            if buf.len() >= chunk {
                chunks.push(std::mem::take(&mut buf));
            }
        }
    }
    if !buf.is_empty() {
        chunks.push(buf);
    }
    chunks
}

fn cut_short() -> StoreError {
    StoreError::Damaged("a keyed-state log entry is cut short".into())
}

/// The next length-prefixed item of `bytes`; `None` for a removed key
/// where `none` allows it.
fn take<'a>(bytes: &mut &'a [u8], none: bool) -> Result<Option<&'a [u8]>, StoreError> {
    let len = u32::from_le_bytes(
        bytes
            .get(..4)
            .ok_or_else(cut_short)?
            .try_into()
            .expect("4 bytes"),
    );
    *bytes = &bytes[4..];
    if len == NONE && none {
        return Ok(None);
    }
    let b = bytes.get(..len as usize).ok_or_else(cut_short)?;
    *bytes = &bytes[len as usize..];
    Ok(Some(b))
}

/// Applies encoded changes to `state`, in order.
///
/// # Errors
/// [`StoreError::Damaged`] when `bytes` end inside a change.
pub(super) fn apply(mut bytes: &[u8], state: &mut KeyedChanges) -> Result<(), StoreError> {
    while !bytes.is_empty() {
        let stage = take(&mut bytes, false)?.ok_or_else(cut_short)?;
        let key = take(&mut bytes, false)?.ok_or_else(cut_short)?;
        let value = take(&mut bytes, true)?;
        let stage = std::str::from_utf8(stage).map_err(|_| {
            StoreError::Damaged("a keyed-state log entry names a stage that is not UTF-8".into())
        })?;
        let entries = match state.get_mut(stage) {
            Some(e) => e,
            None => state.entry(stage.to_owned()).or_default(),
        };
        entries.insert(key, value);
    }
    Ok(())
}

/// A folded log without its removals: what a compaction writes.
pub(super) fn drop_removed(changes: &mut KeyedChanges) {
    for entries in changes.values_mut() {
        entries.retain(|_, v| v.is_some());
    }
}

/// What a folded log holds: each stage's keys that have a value.
pub(super) fn live(changes: KeyedChanges) -> BTreeMap<String, KeyedEntries> {
    changes
        .into_iter()
        .map(|(stage, entries)| {
            let live = entries
                .iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_vec(), v.to_vec())))
                .collect();
            (stage, live)
        })
        .filter(|(_, entries): &(String, KeyedEntries)| !entries.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::ChangedKeys;

    fn changes(entries: &[(&[u8], Option<&[u8]>)]) -> KeyedChanges {
        let mut c = KeyedChanges::new();
        c.entry("count".into()).or_default().extend(
            entries
                .iter()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))),
        );
        c
    }

    #[test]
    fn changes_read_back_in_order_and_later_ones_win() {
        let first = changes(&[(b"a", Some(b"1")), (b"b", Some(b""))]);
        let second = changes(&[(b"a", None)]);
        let mut state = KeyedChanges::new();
        apply(&encode(&first), &mut state).unwrap();
        apply(&encode(&second), &mut state).unwrap();
        assert_eq!(
            state["count"],
            ChangedKeys::from_iter([(b"a".to_vec(), None), (b"b".to_vec(), Some(vec![]))])
        );
        assert_eq!(live(state)["count"], vec![(b"b".to_vec(), vec![])]);
        assert!(apply(&encode(&first)[..5], &mut KeyedChanges::new()).is_err());
    }

    #[test]
    fn chunks_end_between_changes_and_read_back_on_their_own() {
        let many: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..100u32)
            .map(|i| (i.to_le_bytes().to_vec(), Some(vec![1; i as usize])))
            .collect();
        let mut c = KeyedChanges::new();
        c.entry("count".into()).or_default().extend(many.clone());
        let chunks = encode_chunks(&c, 500);
        assert!(chunks.len() > 5, "{}", chunks.len());
        let mut state = KeyedChanges::new();
        for chunk in &chunks {
            apply(chunk, &mut state).unwrap();
        }
        assert_eq!(state["count"], ChangedKeys::from_iter(many));
        assert!(encode_chunks(&KeyedChanges::new(), 500).is_empty());
    }
}
