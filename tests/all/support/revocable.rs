//! A memory source whose worker gives partition 1 up when told, as a Kafka
//! worker does on a revocation.

/// A memory source whose worker holds partition 1 until told otherwise, as
/// a Kafka worker until a revocation.
pub struct Revocable {
    /// The source.
    pub source: weir::source::MemorySource,
    /// Whether the worker still holds partition 1.
    pub holds_one: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

struct RevocableHolds {
    inner: std::sync::Arc<dyn weir::source::Committer>,
    holds_one: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl weir::source::Committer for RevocableHolds {
    fn commit(&self, partition: u32, position: u64) {
        self.inner.commit(partition, position);
    }

    fn holds(&self, partition: u32) -> bool {
        partition != 1 || self.holds_one.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl weir::source::Source for Revocable {
    async fn run(
        &mut self,
        out: tokio::sync::mpsc::Sender<weir::source::Chunk>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), weir::source::SourceError> {
        self.source.run(out, stop).await
    }

    fn committer(&self) -> std::sync::Arc<dyn weir::source::Committer> {
        std::sync::Arc::new(RevocableHolds {
            inner: self.source.committer(),
            holds_one: self.holds_one.clone(),
        })
    }
}
