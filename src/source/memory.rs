//! An in-memory source for tests and benchmarks: events fed through a
//! channel (or given up front), commits recorded for inspection.

use super::{Chunk, Committer, Source, SourceError, SourceEvent};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use weir_abi::Event;

/// The positions committed so far, per partition.
#[derive(Debug, Default)]
pub struct MemoryCommits(Mutex<BTreeMap<u32, u64>>);

impl MemoryCommits {
    /// The highest committed position per partition.
    pub fn snapshot(&self) -> BTreeMap<u32, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Committer for MemoryCommits {
    fn commit(&self, partition: u32, position: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let prev = m.insert(partition, position);
        assert!(
            prev.is_none_or(|p| p < position),
            "commits must move forward"
        );
    }
}

/// Sends events into a [`MemorySource`]; dropping it ends the stream.
#[derive(Debug, Clone)]
pub struct MemoryFeed {
    tx: mpsc::Sender<(u32, Event)>,
}

impl MemoryFeed {
    /// Sends one event to `partition`, waiting when the source is full.
    ///
    /// # Errors
    /// When the pipeline has stopped.
    pub async fn send(&self, partition: u32, event: Event) -> Result<(), Event> {
        self.tx.send((partition, event)).await.map_err(|e| e.0 .1)
    }
}

/// Events from memory; positions count from 1 per partition.
pub struct MemorySource {
    rx: mpsc::Receiver<(u32, Event)>,
    commits: Arc<MemoryCommits>,
}

impl MemorySource {
    /// A source fed through the returned [`MemoryFeed`].
    pub fn channel(capacity: usize) -> (MemoryFeed, MemorySource) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            MemoryFeed { tx },
            MemorySource {
                rx,
                commits: Arc::default(),
            },
        )
    }

    /// A source that yields exactly these events, then ends.
    pub fn from_events(events: Vec<(u32, Event)>) -> MemorySource {
        let (feed, source) = MemorySource::channel(events.len());
        for e in events {
            feed.tx.try_send(e).expect("capacity fits every event");
        }
        source
    }

    /// The commits this source receives.
    pub fn commits(&self) -> Arc<MemoryCommits> {
        self.commits.clone()
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let mut positions: BTreeMap<u32, u64> = BTreeMap::new();
        let mut buf = Vec::with_capacity(256);
        loop {
            let n = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => 0,
                n = self.rx.recv_many(&mut buf, 256) => n,
            };
            if n == 0 {
                return Ok(());
            }
            let chunk: Chunk = buf
                .drain(..)
                .map(|(partition, event)| {
                    let p = positions.entry(partition).or_insert(0);
                    *p += 1;
                    SourceEvent {
                        partition,
                        position: *p,
                        event,
                        refused: None,
                    }
                })
                .collect();
            if out.send(chunk).await.is_err() {
                return Ok(());
            }
        }
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.commits.clone()
    }
}
