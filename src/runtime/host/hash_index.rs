//! [`HashIndex`]: finds entries that its owner keeps elsewhere (a vector)
//! by a 32-bit hash. An open-addressing table of 8-byte slots, each a hash
//! and the entry's place, probed linearly and at most half full: a lookup
//! mostly reads one cache line, and the insert of a key just looked up
//! writes the line the lookup read.
//!
//! What it adds over a general hash table is [`HashIndex::prefetch`]: a
//! batch of lookups in a table larger than the cache can ask for each
//! slot some keys ahead, so it waits for memory about once per batch, not
//! once per key.

/// A slot that holds nothing.
const EMPTY: u64 = 0;

/// Places (`u32`) of entries by their hash (`u32`).
#[derive(Default)]
pub(super) struct HashIndex {
    /// `hash << 32 | place + 1`, or [`EMPTY`]; a power of two of them, or
    /// none.
    slots: Vec<u64>,
    len: usize,
}

/// Where a lookup of `hash` starts among `slots` slots.
fn home(hash: u32, slots: usize) -> usize {
    hash as usize & (slots - 1)
}

/// The slot of the entry at `place` under `hash`.
fn slot_of(hash: u32, place: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(place + 1)
}

fn hash_of(slot: u64) -> u32 {
    (slot >> 32) as u32
}

fn place_of(slot: u64) -> u32 {
    slot as u32 - 1
}

/// Asks the processor to bring `slot`'s cache line in; only a hint.
#[inline]
fn prefetch(slot: &u64) {
    // SAFETY: the build enables SSE (every x86-64 has it), which the
    // intrinsic requires; a prefetch reads nothing the program sees and
    // never faults, and `slot` is a valid reference besides.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (slot as *const u64).cast(),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = slot;
}

impl HashIndex {
    /// Writes `slot` into the first free slot from its hash's home.
    fn put(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = home(hash_of(slot), self.slots.len());
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// The slot that holds `place` under `hash`.
    fn slot(&self, hash: u32, place: u32) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let want = slot_of(hash, place);
        let mut i = home(hash, self.slots.len());
        loop {
            match self.slots[i] {
                EMPTY => return None,
                s if s == want => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Makes room for one more entry.
    fn grow(&mut self) {
        if (self.len + 1) * 2 <= self.slots.len() {
            return;
        }
        let slots = (self.slots.len() * 2).max(16);
        // Written, not allocated zeroed: a fresh zeroed page that the
        // rehash below reads before it writes would fault twice, and the
        // second fault (replacing the shared zero page) stops the other
        // cores to flush their view of it.
        let mut fresh = Vec::with_capacity(slots);
        fresh.resize(slots, EMPTY);
        let old = std::mem::replace(&mut self.slots, fresh);
        for slot in old.into_iter().filter(|&s| s != EMPTY) {
            self.put(slot);
        }
    }

    /// Brings in the slot where a lookup of `hash` starts.
    #[inline]
    pub(super) fn prefetch(&self, hash: u32) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[home(hash, self.slots.len())]);
        }
    }

    /// The place of the entry under `hash` that `is` says is the one.
    #[inline]
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = home(hash, self.slots.len());
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return None;
            }
            if hash_of(slot) == hash && is(place_of(slot)) {
                return Some(place_of(slot));
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds the entry at `place` under `hash`; its owner knows it is not
    /// in yet.
    ///
    /// # Panics
    /// When `place` is `u32::MAX`.
    pub(super) fn insert(&mut self, hash: u32, place: u32) {
        assert!(place < u32::MAX, "fewer than 2^32 - 1 entries");
        self.grow();
        self.put(slot_of(hash, place));
        self.len += 1;
    }

    /// The entry at `place` under `hash` is now at `to`.
    pub(super) fn moved(&mut self, hash: u32, place: u32, to: u32) {
        let i = self.slot(hash, place).expect("a moved entry is indexed");
        self.slots[i] = slot_of(hash, to);
    }

    /// Forgets the entry at `place` under `hash`: the slots after it that
    /// would no longer be found from their home move back into the gap.
    pub(super) fn remove(&mut self, hash: u32, place: u32) {
        let Some(mut gap) = self.slot(hash, place) else {
            return;
        };
        let mask = self.slots.len() - 1;
        let mut i = gap;
        loop {
            i = (i + 1) & mask;
            let slot = self.slots[i];
            if slot == EMPTY {
                break;
            }
            // The slot stays when its home lies after the gap, up to it.
            let h = home(hash_of(slot), self.slots.len());
            let stays = if gap <= i {
                gap < h && h <= i
            } else {
                gap < h || h <= i
            };
            if !stays {
                self.slots[gap] = slot;
                gap = i;
            }
        }
        self.slots[gap] = EMPTY;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_hashes_are_found_moved_and_removed_in_any_order() {
        let mut index = HashIndex::default();
        assert_eq!(index.find(7, |_| true), None);
        // Hashes that share their low bits probe past each other, and
        // runs wrap past the end of the table.
        let hash = |p: u32| (p % 7) << 20 | 15;
        for place in 0..1_000u32 {
            index.insert(hash(place), place);
        }
        for place in (0..1_000u32).step_by(37) {
            index.prefetch(hash(place));
            assert_eq!(index.find(hash(place), |p| p == place), Some(place));
        }
        assert_eq!(index.find(1 << 20 | 15, |p| p == 2), None, "hash differs");
        for place in (0..1_000u32).filter(|p| p % 3 == 0) {
            index.remove(hash(place), place);
        }
        index.moved(hash(1), 1, 5_000);
        for place in 0..1_000u32 {
            let found = index.find(hash(place), |p| p == place);
            let expected = (place % 3 != 0 && place != 1).then_some(place);
            assert_eq!(found, expected, "place {place}");
        }
        assert_eq!(index.find(hash(1), |p| p == 5_000), Some(5_000));
        assert_eq!(index.len, 1_000 - 334);
    }
}
