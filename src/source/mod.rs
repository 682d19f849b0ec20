//! Where events come from. A source is a config, a build function and an
//! implementation of [`Source`]: it sends [`SourceEvent`]s in chunks and is
//! told, through its [`Committer`], which positions were delivered.

mod chunker;
mod file;
mod kafka;
mod memory;
mod nats;

pub use file::{FileSource, StdinSource};
pub use kafka::{CommitNow, ConsumedOffsets, KafkaSource, Revoked};
pub use memory::{MemoryCommits, MemoryFeed, MemorySource};
pub use nats::{JetStreamSource, NatsSource};

use crate::config::SourceConfig;
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use weir_abi::Event;

/// One event and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEvent {
    /// The partition (or key-hash shard): the unit of order and of state.
    pub partition: u32,
    /// Position within the partition (Kafka offset, line number…),
    /// increasing.
    pub position: u64,
    /// The event.
    pub event: Event,
    /// Set when the source hands the event straight to the dead-letter
    /// sink instead of the stages (unreadable input, too many deliveries).
    pub refused: Option<Refusal>,
}

/// Why a source sends an event to the dead-letter sink itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short, stable label for `weir-error-kind`.
    pub kind: &'static str,
    /// The reason, in words.
    pub reason: String,
}

impl Refusal {
    /// Input the source could not read (its raw bytes become the value).
    pub fn malformed(reason: String) -> Self {
        Refusal {
            kind: "malformed",
            reason,
        }
    }
}

/// What sources send: several events at once, to keep channel costs low.
pub type Chunk = Vec<SourceEvent>;

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("source I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The broker client failed or refused its configuration.
    #[error("{0}")]
    Broker(String),
    /// A partition's checkpoint could not be loaded.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::StoreError),
}

/// Told which positions were delivered.
pub trait Committer: Send + Sync {
    /// Every event of `partition` up to and including `position` was
    /// confirmed by the sink and the dead-letter sink.
    fn commit(&self, partition: u32, position: u64);

    /// Resolves once what [`commit`](Committer::commit) was told has been
    /// handed to the broker. Called when the pipeline ends, after the last
    /// commit.
    fn flushed(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// The name under which `partition`'s checkpoint is stored, or `None`
    /// when the partition is no longer this worker's (its checkpoint must
    /// then not be written). Sources with fixed shards use `shard-<n>`.
    fn checkpoint_name(&self, partition: u32) -> Option<String> {
        Some(shard_name(partition))
    }

    /// Whether this worker still holds `partition`. The batches of a
    /// partition it gave up (a Kafka revocation) are abandoned: neither
    /// processed nor published, as its new owner reads them again.
    fn holds(&self, _partition: u32) -> bool {
        true
    }

    /// Requests, from a rebalance about to take partitions away, to save
    /// the checkpoints of what was confirmed first; each is answered with
    /// [`CommitNow::done`] once saved. `None` for sources whose partitions
    /// never move. A later call takes the requests over.
    fn revoke_requests(&self) -> Option<mpsc::UnboundedReceiver<CommitNow>> {
        None
    }
}

/// The checkpoint name of shard `n`.
pub fn shard_name(n: u32) -> String {
    format!("shard-{n}")
}

/// A stream of events.
#[async_trait]
pub trait Source: Send {
    /// Reads until the stream ends or `stop` becomes true, sending chunks to
    /// `out`. Waiting on a full `out` is the backpressure.
    ///
    /// # Errors
    /// A [`SourceError`] when reading fails.
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError>;

    /// The handle that learns about delivered positions.
    fn committer(&self) -> Arc<dyn Committer>;

    /// Has the source restore each partition from its checkpoint before it
    /// sends the partition's first event, and resume after the checkpoint's
    /// position; `false` when this source cannot.
    fn restore_with(&mut self, restorer: crate::checkpoint::Restorer) -> bool {
        let _ = restorer;
        false
    }
}

/// Builds the source a pipeline names.
///
/// # Errors
/// When a file cannot be opened.
pub async fn build(config: &SourceConfig) -> Result<Box<dyn Source>, SourceError> {
    Ok(match config {
        SourceConfig::File { path, shards } => Box::new(FileSource::open(path, *shards).await?),
        SourceConfig::Stdin { shards } => Box::new(StdinSource::new(*shards)),
        SourceConfig::Kafka(k) => Box::new(KafkaSource::new(k)?),
        SourceConfig::Nats(n) => Box::new(NatsSource::new(n)),
        SourceConfig::JetStream(j) => Box::new(JetStreamSource::new(j)),
    })
}

/// The shard of an event for sources without partitions: keyed events by a
/// hash of the key (so each key keeps its order), unkeyed ones round-robin by
/// position.
pub fn shard_of(event: &Event, position: u64, shards: u32) -> u32 {
    let shards = shards.max(1);
    match &event.key {
        Some(k) => key_shard(k, shards),
        None => (position % shards as u64) as u32,
    }
}

/// The shard of `key` among `shards`: FNV-1a, a stable hash, the same on
/// every machine and version. The one hash of keys and subjects.
pub(crate) fn key_shard(key: &[u8], shards: u32) -> u32 {
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (h % shards.max(1) as u64) as u32
}
