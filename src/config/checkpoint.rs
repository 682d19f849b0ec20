//! The `[checkpoint]` table: where stage state is persisted with the source
//! positions it belongs to.
//!
//! ```toml
//! [checkpoint]
//! store = "dir"                  # or "nats" (a JetStream key-value bucket)
//! path = "state"                 # dir: relative to the pipeline file
//! interval = "5s"                # also on graceful shutdown and on request
//! # nats: url, bucket = "weir-checkpoints", token / user + password / credentials
//! ```

use super::nats::{connection, keys, NatsConnection};
use super::pipeline::resolve;
use super::problems::{join, Walker};
use super::units::parse_positive_duration;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where checkpoints go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStoreConfig {
    /// One file per pipeline in a local directory.
    Dir(PathBuf),
    /// One key per pipeline in a JetStream key-value bucket.
    Nats {
        /// The connection.
        connection: NatsConnection,
        /// The bucket (created when missing).
        bucket: String,
    },
}

/// Persistent checkpoints of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// The store.
    pub store: CheckpointStoreConfig,
    /// How often a checkpoint is saved while running.
    pub interval: Duration,
}

pub(super) fn checkpoint(w: &mut Walker, t: &toml::Table, base: &Path) -> Option<CheckpointConfig> {
    let path = "checkpoint";
    let interval = w
        .parsed(path, t, "interval", parse_positive_duration, "5s")
        .unwrap_or(Duration::from_secs(5));
    let store = match w.string(path, t, "store").as_deref().unwrap_or("dir") {
        "dir" => {
            w.unknown_keys(path, t, &["store", "path", "interval"]);
            CheckpointStoreConfig::Dir(resolve(
                base,
                &w.string(path, t, "path").unwrap_or_else(|| "state".into()),
            ))
        }
        "nats" => {
            let mut k = keys(&["store", "bucket", "interval"]);
            k.retain(|k| *k != "type");
            w.unknown_keys(path, t, &k);
            CheckpointStoreConfig::Nats {
                connection: connection(w, path, t, base)?,
                bucket: w
                    .string(path, t, "bucket")
                    .unwrap_or_else(|| "weir-checkpoints".into()),
            }
        }
        other => {
            w.problem(
                &join(path, "store"),
                format!("unknown checkpoint store {other:?}"),
                "use \"dir\" or \"nats\"",
            );
            return None;
        }
    };
    Some(CheckpointConfig { store, interval })
}
