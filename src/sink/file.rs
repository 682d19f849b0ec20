//! JSONL to a file (appended), standard output or standard error.

use super::{Sink, SinkError};
use crate::jsonl::write_event;
use async_trait::async_trait;
use std::path::Path;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use weir_abi::Event;

async fn write_lines<W: AsyncWrite + Unpin>(w: &mut W, events: &[Event]) -> Result<(), SinkError> {
    let mut buf = String::new();
    for e in events {
        buf.push_str(&write_event(e));
        buf.push('\n');
    }
    w.write_all(buf.as_bytes()).await?;
    w.flush().await?;
    Ok(())
}

/// A JSONL file, appended to; a batch is confirmed once written to the
/// operating system.
pub struct FileSink {
    file: tokio::fs::File,
}

impl FileSink {
    /// Opens (creates) the file for appending.
    ///
    /// # Errors
    /// When it cannot be opened.
    pub async fn open(path: &Path) -> Result<Self, SinkError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(FileSink { file })
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        write_lines(&mut self.file, &events).await
    }
}

/// Standard output or standard error. Writes go through the locked
/// standard handle, so lines from different sinks and log lines never mix.
pub struct StdioSink {
    stderr: bool,
}

impl StdioSink {
    /// JSONL on standard output.
    pub fn stdout() -> Self {
        StdioSink { stderr: false }
    }

    /// JSONL on standard error.
    pub fn stderr() -> Self {
        StdioSink { stderr: true }
    }
}

#[async_trait]
impl Sink for StdioSink {
    async fn send(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        use std::io::Write;
        let mut buf = String::new();
        for e in &events {
            buf.push_str(&write_event(e));
            buf.push('\n');
        }
        // A reader that does not keep up blocks the write: on a thread of
        // its own, so the runtime's threads go on with the rest (acks,
        // JetStream in-progress reports, the other partitions).
        let stderr = self.stderr;
        let write = move || -> std::io::Result<()> {
            let mut w: Box<dyn Write> = if stderr {
                Box::new(std::io::stderr().lock())
            } else {
                Box::new(std::io::stdout().lock())
            };
            w.write_all(buf.as_bytes())?;
            w.flush()
        };
        tokio::task::spawn_blocking(write).await.map_err(|e| {
            std::io::Error::other(format!("the write to standard output stopped: {e}"))
        })??;
        Ok(())
    }
}
