//! Where a plugin's output goes: its stdout and stderr, and the host `log`
//! function, become log lines tagged with the pipeline and stage.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which pipeline and stage a plugin instance serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTag {
    /// Pipeline name.
    pub pipeline: String,
    /// Stage name.
    pub stage: String,
}

/// Severity of a plugin log line, as in the WIT `level` enum (0 = trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginLevel {
    /// Very fine detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected.
    Warn,
    /// A failure.
    Error,
}

impl PluginLevel {
    /// The level for a core-module `weir.log` level number; out-of-range
    /// numbers are treated as `info`.
    pub fn from_i32(level: i32) -> Self {
        match level {
            0 => PluginLevel::Trace,
            1 => PluginLevel::Debug,
            3 => PluginLevel::Warn,
            4 => PluginLevel::Error,
            _ => PluginLevel::Info,
        }
    }
}

/// A plugin line longer than this is cut, so a plugin cannot flood the log.
const MAX_LINE: usize = 4096;

/// Writes one plugin log line.
pub fn emit(tag: &LogTag, level: PluginLevel, source: &str, line: &str) {
    let line = if line.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        &line[..end]
    } else {
        line
    };
    let (p, s) = (tag.pipeline.as_str(), tag.stage.as_str());
    match level {
        PluginLevel::Trace => {
            tracing::trace!(target: "weir::plugin", pipeline = p, stage = s, source, "{line}")
        }
        PluginLevel::Debug => {
            tracing::debug!(target: "weir::plugin", pipeline = p, stage = s, source, "{line}")
        }
        PluginLevel::Info => {
            tracing::info!(target: "weir::plugin", pipeline = p, stage = s, source, "{line}")
        }
        PluginLevel::Warn => {
            tracing::warn!(target: "weir::plugin", pipeline = p, stage = s, source, "{line}")
        }
        PluginLevel::Error => {
            tracing::error!(target: "weir::plugin", pipeline = p, stage = s, source, "{line}")
        }
    }
}

/// How many recent lines explain a trap.
const RECENT: usize = 4;

#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    /// The last few lines written since the last call ended.
    recent: std::collections::VecDeque<String>,
}

impl Lines {
    fn remember(&mut self, line: String) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }
}

/// A WASI stdout or stderr that turns what the plugin writes into log lines.
/// Cloning it shares the line buffer.
#[derive(Debug, Clone)]
pub struct LogStream {
    tag: Arc<LogTag>,
    source: &'static str,
    level: PluginLevel,
    lines: Arc<Mutex<Lines>>,
}

impl LogStream {
    /// A stream for `source` ("stdout" or "stderr") logged at `level`.
    pub fn new(tag: Arc<LogTag>, source: &'static str, level: PluginLevel) -> Self {
        LogStream {
            tag,
            source,
            level,
            lines: Arc::default(),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.partial.extend_from_slice(bytes);
        while let Some(nl) = lines.partial.iter().position(|b| *b == b'\n') {
            let rest = lines.partial.split_off(nl + 1);
            let line = std::mem::replace(&mut lines.partial, rest);
            let text = String::from_utf8_lossy(&line[..nl]).trim_end().to_string();
            if !text.is_empty() {
                emit(&self.tag, self.level, self.source, &text);
                lines.remember(text);
            }
        }
        if lines.partial.len() > MAX_LINE {
            let text = String::from_utf8_lossy(&lines.partial).to_string();
            emit(&self.tag, self.level, self.source, &text);
            lines.partial.clear();
            lines.remember(text);
        }
    }

    /// Keeps `line` among the recent lines that explain a trap, as if the
    /// plugin had written it to this stream.
    pub fn remember(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.remember(line);
    }

    /// Takes the last few lines written since [`LogStream::forget`] (and any
    /// unterminated rest), joined, to explain a trap that follows them.
    /// Rust's "run with RUST_BACKTRACE" hint is left out.
    pub fn take_recent(&self) -> Option<String> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if !lines.partial.is_empty() {
            let text = String::from_utf8_lossy(&lines.partial)
                .trim_end()
                .to_string();
            lines.partial.clear();
            if !text.is_empty() {
                emit(&self.tag, self.level, self.source, &text);
                lines.remember(text);
            }
        }
        let recent: Vec<String> = lines
            .recent
            .drain(..)
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        (!recent.is_empty()).then(|| recent.join(" / "))
    }

    /// Forgets the recent lines: a call ended well.
    pub fn forget(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.recent.clear();
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
