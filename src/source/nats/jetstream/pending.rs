//! The JetStream messages weir holds: delivered, not yet acknowledged.
//!
//! A message is acknowledged once the sinks confirmed it. Until then weir
//! tells the server, every third of `ack_wait`, that the message is still
//! in progress (`+WPI`), the first time a sixth to a third of `ack_wait`
//! after weir read it, so that a batch that waits longer than `ack_wait`
//! (a slow stage, a long queue, a sink retrying through a broker restart)
//! is not redelivered while weir still works on it. Redeliveries would do
//! the work twice and count towards `max_deliver`, whose last delivery goes
//! to the dead-letter sink. A message is kept in progress for at most
//! [`KEEP_IN_PROGRESS_FOR`], so a worker that hangs gives its messages back.

use super::copies::{Copies, Copy};
use crate::source::Committer;
use async_nats::jetstream::message::Acker;
use async_nats::{Client, Subject};
use futures_util::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long weir keeps telling the server that a message it holds is in
/// progress; past that, the server redelivers it after `ack_wait`.
pub const KEEP_IN_PROGRESS_FOR: Duration = Duration::from_secs(300);

/// One held message; `A` acknowledges it.
struct Held<A> {
    /// Its position in its shard (deliveries counted).
    position: u64,
    /// Its stream sequence.
    seq: u64,
    acker: A,
    /// Where progress reports go (the delivery's reply subject).
    reply: Subject,
    /// The keep-alive round weir read it in.
    since: u32,
    /// The round at whose end it is not reported: the one weir read it in,
    /// then the one after each report.
    next: u32,
}

/// The tasks of a run: one sends acknowledgements in commit order, one
/// reports held messages in progress.
struct Tasks<A> {
    acks: mpsc::UnboundedSender<Vec<A>>,
    acking: JoinHandle<()>,
    keep_alive: JoinHandle<()>,
}

/// What [`Pending`] guards.
struct State<A> {
    /// Per shard, in delivery order.
    held: HashMap<u32, VecDeque<Held<A>>>,
    copies: Copies,
}

impl<A> Default for State<A> {
    fn default() -> Self {
        State {
            held: HashMap::new(),
            copies: Copies::default(),
        }
    }
}

/// Delivered, not yet acknowledged messages, per shard, in delivery order.
pub struct Pending<A = Acker> {
    state: Mutex<State<A>>,
    /// Counts the keep-alive rounds.
    round: AtomicU32,
    tasks: Mutex<Option<Tasks<A>>>,
}

impl<A> Default for Pending<A> {
    fn default() -> Self {
        Pending {
            state: Mutex::default(),
            round: AtomicU32::new(0),
            tasks: Mutex::default(),
        }
    }
}

/// How long the end of a run waits for its last acknowledgements to go out.
const FLUSH_FOR: Duration = Duration::from_secs(5);

impl Pending<Acker> {
    /// Starts the tasks that acknowledge committed messages on `client`'s
    /// connection and report held ones in progress; they run until
    /// [`Committer::flushed`].
    pub fn start(self: &Arc<Self>, client: Client, ack_wait: Duration) {
        let (acks, mut rx) = mpsc::unbounded_channel::<Vec<Acker>>();
        let keep_alive = tokio::spawn(self.clone().keep_alive(client.clone(), ack_wait));
        let acking = tokio::spawn(async move {
            while let Some(done) = rx.recv().await {
                for a in done {
                    if let Err(e) = a.ack().await {
                        tracing::warn!("jetstream: ack failed: {e}");
                    }
                }
            }
            if let Err(e) = client.flush().await {
                tracing::warn!("jetstream: the last acks may not have reached the server: {e}");
            }
        });
        *self.tasks.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tasks {
            acks,
            acking,
            keep_alive,
        });
    }
}

impl<A> Pending<A> {
    /// Holds a delivered message (stream sequence `seq`) at `position` of
    /// `partition` until it is committed.
    pub fn hold(&self, partition: u32, position: u64, seq: u64, acker: A, reply: Subject) {
        let round = self.round.load(Ordering::Relaxed);
        let mut state = self.lock();
        state.copies.hold(seq);
        state.held.entry(partition).or_default().push_back(Held {
            position,
            seq,
            acker,
            reply,
            since: round,
            next: round,
        });
    }

    /// Whether weir holds, or has just acknowledged, a copy of the message
    /// at stream sequence `seq` (see [`super::copies`]).
    pub fn copy_of(&self, seq: u64) -> Option<Copy> {
        self.lock().copies.of(seq)
    }

    /// Acknowledges a second copy of a message whose first copy was
    /// acknowledged already, in case that ack was lost.
    pub fn ack_again(&self, acker: A) {
        if let Some(t) = &*self.tasks.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = t.acks.send(vec![acker]);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<A>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends a round: the reply subjects of the messages held since before
    /// it began and not reported at the end of the round before, for fewer
    /// than `max_rounds` rounds.
    fn due(&self, max_rounds: u32) -> Vec<Subject> {
        let round = self.round.fetch_add(1, Ordering::Relaxed);
        let mut due = Vec::new();
        for h in self.lock().held.values_mut().flat_map(|q| q.iter_mut()) {
            if h.next != round && round.wrapping_sub(h.since) < max_rounds {
                due.push(h.reply.clone());
                h.next = round.wrapping_add(1);
            }
        }
        due
    }

    /// The acknowledgers of `partition`'s messages up to `position`, no
    /// longer held.
    fn release(&self, partition: u32, position: u64) -> Vec<A> {
        let mut state = self.lock();
        let State { held, copies } = &mut *state;
        let Some(q) = held.get_mut(&partition) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        while let Some(h) = q.pop_front_if(|h| h.position <= position) {
            copies.release(h.seq);
            done.push(h.acker);
        }
        done
    }

    /// Reports the messages held for a whole round as in progress, each
    /// every second round; a round lasts `ack_wait / 6`. So a message's
    /// first report comes a sixth to a third of `ack_wait` after weir read
    /// it, which leaves the rest for the time it waited in the client
    /// before. Runs until the task is aborted.
    async fn keep_alive(self: Arc<Self>, client: Client, ack_wait: Duration) {
        let every = (ack_wait / 6).max(Duration::from_millis(10));
        let max_rounds = (KEEP_IN_PROGRESS_FOR.as_millis() / every.as_millis())
            .try_into()
            .unwrap_or(u32::MAX);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tick.tick().await;
            let due = self.due(max_rounds);
            let mut failed = 0usize;
            for reply in &due {
                if client.publish(reply.clone(), "+WPI".into()).await.is_err() {
                    failed += 1;
                }
            }
            if failed > 0 {
                tracing::warn!(
                    "jetstream: {failed} of {} in-progress reports not sent; the server may \
                     redeliver those messages",
                    due.len()
                );
            }
        }
    }
}

impl Committer for Pending<Acker> {
    fn commit(&self, partition: u32, position: u64) {
        let done = self.release(partition, position);
        if done.is_empty() {
            return;
        }
        // A lost ack means a redelivery after ack_wait (at-least-once).
        if let Some(t) = &*self.tasks.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = t.acks.send(done);
        }
    }

    fn flushed(&self) -> BoxFuture<'_, ()> {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            let Some(Tasks {
                acks,
                acking,
                keep_alive,
            }) = tasks
            else {
                return;
            };
            keep_alive.abort();
            drop(acks);
            if tokio::time::timeout(FLUSH_FOR, acking).await.is_err() {
                tracing::warn!(
                    "jetstream: the last acks were not sent within {FLUSH_FOR:?}; the server \
                     redelivers those messages after ack_wait"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(due: Vec<Subject>) -> Vec<String> {
        due.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_held_message_is_reported_from_the_round_after_it_was_read_on_every_second_round() {
        let p = Pending::<()>::default();
        p.hold(0, 1, 11, (), "a".into());
        assert!(p.due(100).is_empty(), "not in the round it came in");
        p.hold(0, 2, 12, (), "b".into());
        assert_eq!(replies(p.due(100)), ["a"]);
        assert_eq!(replies(p.due(100)), ["b"]);
        assert_eq!(replies(p.due(100)), ["a"]);
        assert_eq!(replies(p.due(100)), ["b"]);
        assert_eq!(p.release(0, 1).len(), 1);
        assert!(p.due(100).is_empty());
        assert_eq!(replies(p.due(100)), ["b"], "an acknowledged one no more");
        assert_eq!(p.release(0, 2).len(), 1);
        assert!(p.due(100).is_empty());
        assert!(p.due(100).is_empty());
    }

    #[test]
    fn a_message_is_kept_in_progress_for_a_bounded_number_of_rounds() {
        let p = Pending::<()>::default();
        p.hold(3, 1, 31, (), "a".into());
        let reported: Vec<usize> = (0..10).map(|_| p.due(6).len()).collect();
        assert_eq!(
            reported,
            [0, 1, 0, 1, 0, 1, 0, 0, 0, 0],
            "rounds 1, 3 and 5 after it was read"
        );
    }
}
