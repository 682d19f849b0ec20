//! JetStream: a durable pull consumer, its messages read ahead of the
//! pipeline, held until both sinks confirmed them, then acknowledged.

mod consumer;
mod copies;
mod pending;
mod reader;

use crate::config::JetStreamSource as JsConfig;
use crate::nats::connect;
use crate::source::chunker::{Chunker, Next};
use crate::source::{Chunk, Committer, Source, SourceError};
use async_nats::jetstream;
use async_trait::async_trait;
use pending::Pending;
use reader::ReadAhead;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// A JetStream durable pull consumer.
pub struct JetStreamSource {
    config: JsConfig,
    pending: Arc<Pending>,
}

impl JetStreamSource {
    /// A source for `config`; connects when run.
    pub fn new(config: &JsConfig) -> Self {
        JetStreamSource {
            config: config.clone(),
            pending: Arc::default(),
        }
    }
}

#[async_trait]
impl Source for JetStreamSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let c = &self.config;
        let client = connect(&c.connection).await.map_err(SourceError::Broker)?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_stream(&c.stream)
            .await
            .map_err(|e| SourceError::Broker(format!("jetstream stream {}: {e}", c.stream)))?;
        let consumer = consumer::settle(&stream, c).await?;
        // Acks, and in-progress reports for messages held past a third of
        // ack_wait, until the pipeline ends.
        self.pending.start(client, c.ack_wait);
        let (ahead, mut read) = mpsc::channel(c.pull_batch.max(1));
        let reader = tokio::spawn(ReadAhead::new(consumer, c, self.pending.clone()).run(ahead));
        let mut events = futures_util::stream::poll_fn(|cx| read.poll_recv(cx));
        let mut chunker = Chunker::default();
        loop {
            let full = match chunker.next(&mut events, &mut stop).await {
                Next::Stop => break,
                Next::Idle => Some(chunker.take()),
                Next::Item(e) => chunker.push(e),
            };
            if !Chunker::forward(&out, full).await {
                reader.abort();
                return Ok(());
            }
        }
        // What was read ahead is held: it goes through the pipeline too,
        // and is acknowledged with the rest.
        reader.abort();
        let _ = reader.await;
        read.close();
        while let Ok(e) = read.try_recv() {
            let full = chunker.push(e);
            if !Chunker::forward(&out, full).await {
                return Ok(());
            }
        }
        chunker.finish(&out).await;
        Ok(())
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.pending.clone()
    }
}
