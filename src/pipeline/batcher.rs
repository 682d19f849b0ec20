//! The batcher: groups a source's events into batches of one partition each,
//! closed by count, by bytes, or when the oldest event has lingered long
//! enough.

use super::batch::{AckToken, Batch};
use crate::config::BatchConfig;
use crate::source::{Chunk, SourceEvent};
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

struct Open {
    batch: Batch,
    bytes: usize,
    deadline: Instant,
}

/// Groups events into batches.
pub struct Batcher {
    config: BatchConfig,
    open: BTreeMap<u32, Open>,
    next_seq: BTreeMap<u32, u64>,
    /// Events taken in, for the run report and metrics.
    pub events_in: u64,
}

impl Batcher {
    /// A batcher with these limits.
    pub fn new(config: BatchConfig) -> Self {
        Batcher {
            config,
            open: BTreeMap::new(),
            next_seq: BTreeMap::new(),
            events_in: 0,
        }
    }

    /// Reads chunks until the source ends, sending batches to `out`. Waiting
    /// on a full `out` holds the source back.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Chunk>,
        out: mpsc::Sender<Batch>,
        events_in: metrics::Counter,
    ) -> u64 {
        loop {
            let deadline = self.open.values().map(|o| o.deadline).min();
            let chunk = tokio::select! {
                biased;
                chunk = input.recv() => chunk,
                _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    if self.flush_due(&out).await.is_err() { return self.events_in; }
                    continue;
                }
            };
            let Some(chunk) = chunk else { break };
            events_in.increment(chunk.len() as u64);
            self.events_in += chunk.len() as u64;
            let mut ready = Vec::new();
            for event in chunk {
                self.add(event, &mut ready);
            }
            for batch in ready {
                if out.send(batch).await.is_err() {
                    return self.events_in;
                }
            }
        }
        // The source ended: everything still open goes out.
        for (_, o) in std::mem::take(&mut self.open) {
            if out.send(o.batch).await.is_err() {
                break;
            }
        }
        self.events_in
    }

    async fn flush_due(&mut self, out: &mpsc::Sender<Batch>) -> Result<(), ()> {
        let now = Instant::now();
        let due: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            if let Some(o) = self.open.remove(&p) {
                out.send(o.batch).await.map_err(|_| ())?;
            }
        }
        Ok(())
    }

    /// Adds one event; batches it completes are pushed to `ready`.
    fn add(&mut self, se: SourceEvent, ready: &mut Vec<Batch>) {
        let size = se.event.size_hint();
        // An event that would push its batch past max_bytes starts a new one.
        if let Some(o) = self.open.get(&se.partition) {
            if o.bytes + size > self.config.max_bytes {
                ready.extend(self.open.remove(&se.partition).map(|o| o.batch));
            }
        }
        let (linger, max_events) = (self.config.linger, self.config.max_events);
        let next_seq = &mut self.next_seq;
        let o = self.open.entry(se.partition).or_insert_with(|| {
            let seq = next_seq.entry(se.partition).or_insert(0);
            let ack = AckToken {
                partition: se.partition,
                seq: *seq,
                last_position: se.position,
            };
            *seq += 1;
            let cap = max_events.min(1024);
            Open {
                batch: Batch {
                    ack,
                    events: Vec::with_capacity(cap),
                    positions: Vec::with_capacity(cap),
                    refused: Vec::new(),
                    created: std::time::Instant::now(),
                },
                bytes: 0,
                deadline: Instant::now() + linger,
            }
        });
        o.bytes += size;
        o.batch.ack.last_position = se.position;
        match se.refused {
            Some(why) => o.batch.refused.push((se.event, se.position, why)),
            None => {
                o.batch.events.push(se.event);
                o.batch.positions.push(se.position);
            }
        }
        if o.batch.events.len() + o.batch.refused.len() >= max_events
            || o.bytes >= self.config.max_bytes
        {
            ready.extend(self.open.remove(&se.partition).map(|o| o.batch));
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use weir_abi::Event;

    fn ev(partition: u32, position: u64, size: usize) -> SourceEvent {
        SourceEvent {
            partition,
            position,
            event: Event::from_value(vec![b'x'; size]),
            refused: None,
        }
    }

    async fn batches(
        config: BatchConfig,
        chunks: Vec<Chunk>,
        hold_open: Duration,
    ) -> Vec<(u32, u64, Vec<u64>)> {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let task = tokio::spawn(Batcher::new(config).run(in_rx, out_tx, metrics::Counter::noop()));
        for c in chunks {
            in_tx.send(c).await.unwrap();
        }
        tokio::time::sleep(hold_open).await;
        drop(in_tx);
        task.await.unwrap();
        let mut got = Vec::new();
        while let Some(b) = out_rx.recv().await {
            got.push((b.ack.partition, b.ack.seq, b.positions));
        }
        got
    }

    #[tokio::test]
    async fn closes_by_count_and_keeps_partitions_apart() {
        let config = BatchConfig {
            max_events: 2,
            max_bytes: 1 << 20,
            linger: Duration::from_secs(60),
        };
        let got = batches(
            config,
            vec![vec![ev(0, 1, 1), ev(1, 1, 1), ev(0, 2, 1), ev(0, 3, 1)]],
            Duration::ZERO,
        )
        .await;
        assert_eq!(got, [(0, 0, vec![1, 2]), (0, 1, vec![3]), (1, 0, vec![1])]);
    }

    #[tokio::test]
    async fn closes_by_bytes() {
        let config = BatchConfig {
            max_events: 100,
            max_bytes: 250,
            linger: Duration::from_secs(60),
        };
        let got = batches(
            config,
            vec![vec![
                ev(0, 1, 100),
                ev(0, 2, 100),
                ev(0, 3, 100),
                ev(0, 4, 10),
            ]],
            Duration::ZERO,
        )
        .await;
        assert_eq!(got, [(0, 0, vec![1, 2]), (0, 1, vec![3, 4])]);
    }

    #[tokio::test]
    async fn closes_by_linger_while_the_source_is_still_open() {
        let config = BatchConfig {
            max_events: 100,
            max_bytes: 1 << 20,
            linger: Duration::from_millis(10),
        };
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        tokio::spawn(Batcher::new(config).run(in_rx, out_tx, metrics::Counter::noop()));
        in_tx.send(vec![ev(0, 1, 1)]).await.unwrap();
        let b = tokio::time::timeout(Duration::from_secs(5), out_rx.recv())
            .await
            .expect("linger closed the batch")
            .unwrap();
        assert_eq!(b.positions, [1]);
        drop(in_tx);
    }
}
