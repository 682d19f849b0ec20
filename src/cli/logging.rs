//! Logging to stderr, as text or JSON.

use clap::ValueEnum;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter when none is given: async-nats logs every connection event
/// (one line per dropped message, too) at `info`; weir logs those events
/// itself, spaced out and with what to do about them.
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Installs the global subscriber. The filter comes from `--log`, else
/// `WEIR_LOG`, else [`DEFAULT_FILTER`]. Text is coloured only when stderr
/// is a terminal, so a log file or a collector gets plain text.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("WEIR_LOG").ok())
        .unwrap_or_else(|| DEFAULT_FILTER.into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
