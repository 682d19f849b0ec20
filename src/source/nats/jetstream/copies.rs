//! Which JetStream messages weir already has a copy of, by stream sequence.
//!
//! The server delivers a message again when its ack has not come within
//! `ack_wait`. That can happen to messages weir still holds or has only just
//! acknowledged, too: an in-progress report or an ack that came late (a
//! worker whose threads were blocked, a connection that was lost and came
//! back), a message held for longer than weir keeps reporting it. Such a second copy
//! is dropped. The first one is processed and acknowledged (an ack names
//! the stream sequence, so the first copy's ack settles the message);
//! processing the second would publish the event twice, and on its last
//! delivery (`max_deliver`) put a healthy event into the dead-letter sink.

use std::collections::{HashSet, VecDeque};

/// How many acknowledged sequences are remembered. A second copy arrives
/// soon after the first is read: both waited in the client, one behind the
/// other.
const RECENT: usize = 16_384;

/// What weir has of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// A copy that is not yet acknowledged.
    Held,
    /// A copy that was acknowledged a moment ago.
    Done,
}

/// Stream sequences held, and the last [`RECENT`] acknowledged.
#[derive(Debug, Default)]
pub struct Copies {
    held: HashSet<u64>,
    done: VecDeque<u64>,
    done_set: HashSet<u64>,
}

impl Copies {
    /// What weir has of the message at stream sequence `seq`.
    pub fn of(&self, seq: u64) -> Option<Copy> {
        if self.held.contains(&seq) {
            Some(Copy::Held)
        } else if self.done_set.contains(&seq) {
            Some(Copy::Done)
        } else {
            None
        }
    }

    /// A copy of `seq` is held (never a second one: that is dropped).
    pub fn hold(&mut self, seq: u64) {
        self.held.insert(seq);
    }

    /// The held copy of `seq` was acknowledged.
    pub fn release(&mut self, seq: u64) {
        if self.held.remove(&seq) && self.done_set.insert(seq) {
            self.done.push_back(seq);
            if self.done.len() > RECENT {
                if let Some(old) = self.done.pop_front() {
                    self.done_set.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_known_while_held_and_for_a_while_after_its_ack() {
        let mut c = Copies::default();
        assert_eq!(c.of(7), None);
        c.hold(7);
        assert_eq!(c.of(7), Some(Copy::Held));
        c.release(7);
        assert_eq!(c.of(7), Some(Copy::Done));
        for seq in 100..100 + RECENT as u64 {
            c.hold(seq);
            c.release(seq);
        }
        assert_eq!(c.of(7), None, "forgotten after RECENT more acks");
        assert_eq!(c.of(100 + RECENT as u64 - 1), Some(Copy::Done));
        assert!(c.done.len() == RECENT && c.done_set.len() == RECENT);
    }
}
