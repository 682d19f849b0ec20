//! Grouping a source's events into chunks for the batcher: a chunk goes out
//! when it is full, or when no new event came for a moment, so a slow trickle
//! is never held back.

use super::{Chunk, SourceEvent};
use futures_util::{FutureExt, Stream, StreamExt};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

/// Events per chunk.
pub const CHUNK: usize = 256;
/// How long a partial chunk waits for more events.
pub const CHUNK_IDLE: Duration = Duration::from_millis(1);

/// What a source's read loop does next.
pub enum Next<T> {
    /// Handle this item of the stream.
    Item(T),
    /// The partial chunk is due: send it.
    Idle,
    /// Stop: `stop` became true, or the stream ended.
    Stop,
}

/// The chunk being filled.
pub struct Chunker {
    chunk: Chunk,
    due: Option<Instant>,
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker {
            chunk: Vec::with_capacity(CHUNK),
            due: None,
        }
    }
}

impl Chunker {
    /// Adds an event; returns the chunk when it is full.
    pub fn push(&mut self, e: SourceEvent) -> Option<Chunk> {
        self.chunk.push(e);
        if self.chunk.len() == 1 {
            self.due = Some(Instant::now() + CHUNK_IDLE);
        }
        (self.chunk.len() == CHUNK).then(|| self.take())
    }

    /// Takes what is waiting (possibly nothing).
    pub fn take(&mut self) -> Chunk {
        self.due = None;
        std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK))
    }

    /// Sends a ready chunk, if there is one with events in it. `false` when
    /// the batcher is gone and the source should stop.
    pub async fn forward(out: &mpsc::Sender<Chunk>, ready: Option<Chunk>) -> bool {
        match ready.filter(|c| !c.is_empty()) {
            Some(c) => out.send(c).await.is_ok(),
            None => true,
        }
    }

    /// Sends what is left when the source stops.
    pub async fn finish(mut self, out: &mpsc::Sender<Chunk>) {
        Self::forward(out, Some(self.take())).await;
    }

    /// The next item of `stream`. One that is ready is taken at once;
    /// otherwise this waits for an item, for `stop`, or for the partial
    /// chunk to fall due. (Waiting on all three builds a `stop` future that
    /// registers a waiter and drops it again, which costs more per event
    /// than the rest of the read when events come fast.) `stream`'s `next`
    /// must be cancel-safe.
    pub async fn next<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        stop: &mut watch::Receiver<bool>,
    ) -> Next<S::Item> {
        if *stop.borrow() {
            return Next::Stop;
        }
        let item = match stream.next().now_or_never() {
            Some(item) => item,
            None => tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return Next::Stop,
                item = stream.next() => item,
                _ = self.idle() => return Next::Idle,
            },
        };
        item.map_or(Next::Stop, Next::Item)
    }

    /// Resolves when a partial chunk is due; never, when none waits. Select
    /// on it beside a read that is not a stream (see [`Chunker::next`]).
    pub async fn idle(&self) {
        match self.due {
            Some(t) => sleep_until(t).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use weir_abi::Event;

    fn event(n: u64) -> SourceEvent {
        SourceEvent {
            partition: 0,
            position: n,
            event: Event::from_value(n.to_string()),
            refused: None,
        }
    }

    #[tokio::test]
    async fn ready_items_come_first_then_the_due_chunk_then_the_end() {
        let (_tx, mut stop) = watch::channel(false);
        let mut chunker = Chunker::default();
        let mut s = stream::iter([1, 2]).chain(stream::pending());
        assert!(matches!(
            chunker.next(&mut s, &mut stop).await,
            Next::Item(1)
        ));
        chunker.push(event(1));
        assert!(matches!(
            chunker.next(&mut s, &mut stop).await,
            Next::Item(2)
        ));
        // Nothing more comes: the partial chunk falls due.
        assert!(matches!(chunker.next(&mut s, &mut stop).await, Next::Idle));
        assert_eq!(chunker.take().len(), 1);
        let mut ended = stream::iter([3]);
        assert!(matches!(
            chunker.next(&mut ended, &mut stop).await,
            Next::Item(3)
        ));
        assert!(matches!(
            chunker.next(&mut ended, &mut stop).await,
            Next::Stop
        ));
    }

    #[tokio::test]
    async fn stop_wins_over_ready_items_and_ends_a_wait() {
        let (tx, mut stop) = watch::channel(false);
        let chunker = Chunker::default();
        let waiting = tokio::spawn(async move {
            let mut s = stream::pending::<u32>();
            matches!(chunker.next(&mut s, &mut stop).await, Next::Stop)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(true).unwrap();
        assert!(waiting.await.unwrap(), "a waiting read stops");
        let mut stop = tx.subscribe();
        let mut ready = stream::iter([1]);
        assert!(matches!(
            Chunker::default().next(&mut ready, &mut stop).await,
            Next::Stop
        ));
    }
}
