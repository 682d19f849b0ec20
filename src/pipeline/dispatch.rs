//! Which worker thread runs a batch. A partition's batches run one after
//! another, in source order: every partition has an owner thread, and its
//! batches go to the owner's queue.
//!
//! A thread holds per-partition state only for stages that are not
//! stateless (their instances, checkpoints and keyed state). While every
//! stage of the pipeline is stateless, partitions are *movable*: a
//! partition has at most one batch on the threads at a time, its next
//! batches wait here, and when one is done (its output sent on, so outputs
//! stay in order) the next goes to the thread with the fewest batches.
//! Three partitions over two threads then share both threads' time,
//! instead of one thread running two partitions while the other waits.
//! Otherwise a partition stays on the thread it was first given (its number
//! modulo the threads).
//!
//! The table also bounds the batches held by the pool (queued, running or
//! waiting here): [`Dispatch::route`] waits for room. Movable partitions
//! get more room, bounded in bytes too: a source hands out runs of batches
//! of one partition (a Kafka fetch holds a megabyte or more of one
//! partition), and the batches of the other partitions behind such a run
//! are only reached by taking the run in.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

/// A partition's owner thread, the bytes of its batches on the threads
/// (in order: a thread finishes them in order) and the batches waiting
/// for them, with their bytes.
struct Flight<T> {
    owner: usize,
    in_flight: VecDeque<usize>,
    waiting: VecDeque<(T, usize)>,
}

struct Table<T> {
    /// Batches queued or running, per thread.
    loads: Vec<usize>,
    flights: HashMap<u32, Flight<T>>,
    /// Batches held by the pool, waiting ones included, and their bytes.
    held: usize,
    held_bytes: usize,
    /// Whether partitions may change threads (every stage stateless).
    movable: bool,
    /// The pool is stopping: nobody waits for room or for the end.
    closed: bool,
}

/// The routing table of one worker pool, for batches of type `T`.
pub struct Dispatch<T> {
    table: Mutex<Table<T>>,
    changed: Condvar,
    /// The most batches held while partitions stay on their threads.
    pinned_limit: usize,
    /// The most batches held while partitions move.
    movable_limit: usize,
    /// The most bytes held while partitions move (one batch always fits).
    movable_bytes: usize,
}

impl<T> Table<T> {
    /// The thread with the fewest batches, `current` on a tie.
    fn least_busy(&self, current: usize) -> usize {
        let mut best = current;
        for (k, &load) in self.loads.iter().enumerate() {
            if load < self.loads[best] {
                best = k;
            }
        }
        best
    }

    /// Puts a batch of `partition` (of `bytes`) on its owner (moved first
    /// when it may move and has nothing on the threads); returns the
    /// thread.
    fn send(&mut self, partition: u32, bytes: usize) -> usize {
        let (owner, idle) = match self.flights.get(&partition) {
            Some(f) => (f.owner, f.in_flight.is_empty()),
            None => (partition as usize % self.loads.len(), true),
        };
        let owner = if self.movable && idle {
            self.least_busy(owner)
        } else {
            owner
        };
        let flight = self.flights.entry(partition).or_insert_with(|| Flight {
            owner,
            in_flight: VecDeque::new(),
            waiting: VecDeque::new(),
        });
        flight.owner = owner;
        flight.in_flight.push_back(bytes);
        self.loads[owner] += 1;
        owner
    }
}

impl<T> Dispatch<T> {
    /// The table of `threads` threads holding at most `pinned_limit`
    /// batches, or `movable_limit` while partitions move; `movable` when
    /// every stage is stateless.
    pub fn new(
        threads: usize,
        pinned_limit: usize,
        (movable_limit, movable_bytes): (usize, usize),
        movable: bool,
    ) -> Self {
        Dispatch {
            table: Mutex::new(Table {
                loads: vec![0; threads.max(1)],
                flights: HashMap::new(),
                held: 0,
                held_bytes: 0,
                movable,
                closed: false,
            }),
            changed: Condvar::new(),
            pinned_limit: pinned_limit.max(1),
            movable_limit: movable_limit.max(1),
            movable_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table<T>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets partitions move between threads, or keeps each on its owner
    /// from the next batch on (a stage with per-partition state is
    /// coming).
    pub fn set_movable(&self, movable: bool) {
        self.lock().movable = movable;
    }

    /// Takes a batch of `partition` (of `bytes`) in, once the pool has
    /// room: the thread to queue it on, or `None` when it waits here for the partition's
    /// batch on the threads (then [`Dispatch::done`] hands it out). `None`
    /// with the batch dropped when the pool is stopping.
    pub fn route(&self, partition: u32, bytes: usize, batch: T) -> Option<(usize, T)> {
        let mut table = self.lock();
        let full = |t: &Table<T>| {
            if t.movable {
                t.held >= self.movable_limit
                    || (t.held > 0 && t.held_bytes + bytes > self.movable_bytes)
            } else {
                t.held >= self.pinned_limit
            }
        };
        while full(&table) && !table.closed {
            table = self.changed.wait(table).unwrap_or_else(|p| p.into_inner());
        }
        if table.closed {
            return None;
        }
        table.held += 1;
        table.held_bytes += bytes;
        let movable = table.movable;
        if let Some(f) = table.flights.get_mut(&partition) {
            if !f.waiting.is_empty() || (movable && !f.in_flight.is_empty()) {
                f.waiting.push_back((batch, bytes));
                return None;
            }
        }
        Some((table.send(partition, bytes), batch))
    }

    /// Thread `thread` sent the oldest batch of `partition` on the threads
    /// on: the partition's next waiting batch and the thread to queue it
    /// on, if one waits.
    pub fn done(&self, thread: usize, partition: u32) -> Option<(usize, T)> {
        let mut table = self.lock();
        table.loads[thread] = table.loads[thread].saturating_sub(1);
        self.changed.notify_all();
        let f = table.flights.get_mut(&partition)?;
        let bytes = f.in_flight.pop_front().unwrap_or(0);
        let more = !f.in_flight.is_empty();
        let next = if more { None } else { f.waiting.pop_front() };
        table.held = table.held.saturating_sub(1);
        table.held_bytes = table.held_bytes.saturating_sub(bytes);
        let (next, bytes) = next?;
        Some((table.send(partition, bytes), next))
    }

    /// Waits until every batch taken in is done (or the pool stops).
    pub fn drain(&self) {
        let mut table = self.lock();
        while table.held > 0 && !table.closed {
            table = self.changed.wait(table).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The pool is stopping: whoever waits for room or for the end goes on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_partition_keeps_its_thread() {
        let d = Dispatch::new(2, 10, (10, 1000), false);
        assert_eq!(d.route(0, 1, "a"), Some((0, "a")));
        assert_eq!(d.route(2, 1, "b"), Some((0, "b")), "2 modulo 2");
        assert_eq!(d.route(2, 1, "c"), Some((0, "c")), "queued behind b");
        assert_eq!(d.done(0, 0), None);
        assert_eq!(d.done(0, 2), None);
        assert_eq!(d.done(0, 2), None);
        assert_eq!(d.route(2, 1, "d"), Some((0, "d")), "thread 1 idle, still 0");
    }

    #[test]
    fn a_movable_partition_waits_for_its_batch_then_goes_to_the_least_busy_thread() {
        let d = Dispatch::new(2, 10, (10, 1000), true);
        assert_eq!(d.route(0, 1, "a0"), Some((0, "a0")));
        assert_eq!(d.route(1, 1, "b0"), Some((1, "b0")));
        // Partition 2 would be thread 0's: both are busy, so it is.
        assert_eq!(d.route(2, 1, "c0"), Some((0, "c0")));
        assert_eq!(d.route(0, 1, "a1"), None, "waits for a0");
        assert_eq!(d.route(0, 1, "a2"), None, "waits behind a1");
        // b0 done: thread 1 is free, partition 1 has nothing waiting.
        assert_eq!(d.done(1, 1), None);
        // a0 done: a1 goes to the least busy thread, 1.
        assert_eq!(d.done(0, 0), Some((1, "a1")));
        // Paused partitions keep their order: a2 after a1, on a thread
        // once a1 is done.
        assert_eq!(d.done(1, 0), Some((1, "a2")));
        assert_eq!(d.done(0, 2), None);
        assert_eq!(d.done(1, 0), None);
        d.set_movable(false);
        assert_eq!(d.route(0, 1, "a3"), Some((1, "a3")), "pinned where it was");
    }

    #[test]
    fn route_waits_for_room_and_drain_for_the_end() {
        let d = std::sync::Arc::new(Dispatch::new(1, 5, (1, 1000), true));
        assert_eq!(d.route(0, 1, 1), Some((0, 1)));
        let d2 = d.clone();
        let waiter = std::thread::spawn(move || d2.route(1, 1, 2));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "no room until batch 1 is done");
        assert_eq!(d.done(0, 0), None);
        assert_eq!(waiter.join().unwrap(), Some((0, 2)));
        let d3 = d.clone();
        let drained = std::thread::spawn(move || d3.drain());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!drained.is_finished());
        assert_eq!(d.done(0, 1), None);
        drained.join().unwrap();
    }

    #[test]
    fn movable_room_is_bounded_in_bytes_and_one_batch_always_fits() {
        let d = std::sync::Arc::new(Dispatch::new(2, 5, (10, 100), true));
        assert_eq!(d.route(0, 500, "big"), Some((0, "big")), "alone, it fits");
        let d2 = d.clone();
        let waiter = std::thread::spawn(move || d2.route(1, 10, "small"));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "past the bytes");
        assert_eq!(d.done(0, 0), None);
        assert_eq!(waiter.join().unwrap(), Some((1, "small")));
    }
}
