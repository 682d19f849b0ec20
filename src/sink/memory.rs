//! An in-memory sink for tests and benchmarks.

use super::{Sink, SinkError};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use weir_abi::Event;

/// Collects every event it is sent; clones share the collection.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
    count_only: bool,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl MemorySink {
    /// A sink that keeps every event.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// A sink that only counts (for benchmarks).
    pub fn counting() -> Self {
        MemorySink {
            count_only: true,
            ..MemorySink::default()
        }
    }

    /// The events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many events were received.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl Sink for MemorySink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.count
            .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if !self.count_only {
            self.events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(events);
        }
        Ok(())
    }
}
