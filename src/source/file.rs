//! JSONL from a file or standard input, split into key-hash shards.

use super::chunker::Chunker;
use super::{shard_name, shard_of, Chunk, Committer, Refusal, Source, SourceError, SourceEvent};
use crate::checkpoint::Restorer;
use crate::jsonl::parse_event;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use weir_abi::Event;

/// Remembers the highest delivered line per shard.
#[derive(Debug, Default)]
pub struct LineCommits(Mutex<BTreeMap<u32, u64>>);

impl Committer for LineCommits {
    fn commit(&self, partition: u32, position: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(partition).or_insert(position);
        *e = (*e).max(position);
    }
}

/// Reads lines from `reader`; positions are line numbers (from 1).
/// Lines at or before `resume[shard]` were delivered by an earlier run and
/// are skipped.
async fn read_lines<R: AsyncBufRead + Unpin>(
    reader: R,
    shards: u32,
    resume: &BTreeMap<u32, u64>,
    out: mpsc::Sender<Chunk>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let mut lines = reader.lines();
    let mut chunker = Chunker::default();
    let mut n = 0u64;
    loop {
        // `next_line` is cancel-safe: losing the race to the idle timer or
        // to `stop` loses no input.
        let line = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            line = lines.next_line() => Some(line?),
            _ = chunker.idle() => None,
        };
        let ready = match line {
            Some(None) => break,
            Some(Some(line)) => {
                n += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let (event, refused) = match parse_event(&line) {
                    Ok(e) => (e, None),
                    Err(e) => (
                        Event::from_value(line.into_bytes()),
                        Some(Refusal::malformed(format!("line {n}: {e}"))),
                    ),
                };
                let partition = shard_of(&event, n, shards);
                if resume.get(&partition).is_some_and(|&done| n <= done) {
                    continue;
                }
                chunker.push(SourceEvent {
                    partition,
                    position: n,
                    event,
                    refused,
                })
            }
            None => Some(chunker.take()),
        };
        if !Chunker::forward(&out, ready).await {
            return Ok(());
        }
    }
    chunker.finish(&out).await;
    Ok(())
}

/// A JSONL file.
pub struct FileSource {
    file: Option<tokio::fs::File>,
    shards: u32,
    commits: Arc<LineCommits>,
    restorer: Option<Restorer>,
}

impl FileSource {
    /// Opens the file.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub async fn open(path: &Path, shards: u32) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(FileSource {
            file: Some(file),
            shards,
            commits: Arc::default(),
            restorer: None,
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let mut resume = BTreeMap::new();
        if let Some(r) = &self.restorer {
            for shard in 0..self.shards.max(1) {
                if let Some(position) = r.restore(shard, &shard_name(shard)).await? {
                    resume.insert(shard, position);
                }
            }
        }
        let reader = BufReader::with_capacity(1 << 16, f);
        read_lines(reader, self.shards, &resume, out, stop).await
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.commits.clone()
    }

    fn restore_with(&mut self, restorer: Restorer) -> bool {
        self.restorer = Some(restorer);
        true
    }
}

/// JSONL on standard input.
pub struct StdinSource {
    shards: u32,
    commits: Arc<LineCommits>,
}

impl StdinSource {
    /// Standard input, split into `shards`.
    pub fn new(shards: u32) -> Self {
        StdinSource {
            shards,
            commits: Arc::default(),
        }
    }
}

#[async_trait]
impl Source for StdinSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let reader = BufReader::new(tokio::io::stdin());
        read_lines(reader, self.shards, &BTreeMap::new(), out, stop).await
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.commits.clone()
    }
}
