//! WASI capabilities: deny everything, then open exactly what a stage's
//! grants name.

use super::plugin_log::{LogStream, LogTag, PluginLevel};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// What a stage may touch outside its sandbox. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Environment variables passed through from the worker's environment,
    /// by name. Names that are not set in the worker are left out.
    pub env: Vec<String>,
    /// Read-only directories: guest path → host directory.
    pub read_dirs: BTreeMap<String, PathBuf>,
}

/// The plugin's stdout and stderr streams, kept to explain traps.
#[derive(Debug, Clone)]
pub struct Stdio {
    /// The plugin's stderr, where a Rust panic message lands.
    pub stderr: LogStream,
}

/// A WASI context builder with no ambient authority: no preopened
/// directories, no environment, no arguments, no network, an empty stdin;
/// stdout and stderr go to the log. Then the grants are applied.
///
/// # Errors
/// Fails when a granted directory cannot be opened.
pub fn sandbox(grants: &Grants, tag: &Arc<LogTag>) -> std::io::Result<(WasiCtxBuilder, Stdio)> {
    let mut b = WasiCtxBuilder::new();
    let stderr = LogStream::new(tag.clone(), "stderr", PluginLevel::Warn);
    b.stdout(LogStream::new(tag.clone(), "stdout", PluginLevel::Info));
    b.stderr(stderr.clone());
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            b.env(name, value);
        }
    }
    for (guest, host) in &grants.read_dirs {
        b.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| {
                std::io::Error::other(format!(
                    "cannot open granted directory {}: {e}",
                    host.display()
                ))
            })?;
    }
    Ok((b, Stdio { stderr }))
}
