//! Grouping a source's events into chunks for the batcher: a chunk goes out
//! when it is full, or when no new event came for a moment, so a slow trickle
//! is never held back.

use super::{Chunk, SourceEvent};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// Events per chunk.
pub const CHUNK: usize = 256;
/// How long a partial chunk waits for more events.
pub const CHUNK_IDLE: Duration = Duration::from_millis(1);

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

    /// Resolves when a partial chunk is due; never, when none waits. Select
    /// on it beside the source's own (cancel-safe) read.
    pub async fn idle(&self) {
        match self.due {
            Some(t) => sleep_until(t).await,
            None => std::future::pending().await,
        }
    }
}
