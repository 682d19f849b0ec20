//! Sources and sinks in pipeline files.

use super::kafka::{kafka_sink, kafka_source, KafkaSink, KafkaSource};
use super::nats::{
    jetstream_source, nats_sink, nats_source, JetStreamSource, NatsSink, NatsSource,
};
use super::pipeline::resolve;
use super::problems::{join, Walker};
use std::path::{Path, PathBuf};

/// Where events come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// A JSONL file, one event per line.
    File {
        /// The file (relative paths are resolved against the pipeline file).
        path: PathBuf,
        /// Key-hash shards standing in for partitions.
        shards: u32,
    },
    /// JSONL on standard input.
    Stdin {
        /// Key-hash shards standing in for partitions.
        shards: u32,
    },
    /// A Kafka consumer group.
    Kafka(KafkaSource),
    /// A core NATS subject in a queue group (at-most-once).
    Nats(NatsSource),
    /// A JetStream durable pull consumer.
    JetStream(JetStreamSource),
}

/// Where events go.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// A JSONL file, appended to.
    File {
        /// The file (relative paths are resolved against the pipeline file).
        path: PathBuf,
    },
    /// JSONL on standard output.
    Stdout,
    /// JSONL on standard error.
    Stderr,
    /// A Kafka topic.
    Kafka(KafkaSink),
    /// A core NATS subject.
    Nats(NatsSink),
    /// A JetStream subject; waits for the publish acknowledgement.
    JetStream(NatsSink),
}

const SOURCE_TYPES: &[&str] = &["file", "stdin", "kafka", "nats", "jetstream"];
const SINK_TYPES: &[&str] = &["file", "stdout", "stderr", "kafka", "nats", "jetstream"];

fn kind(w: &mut Walker, path: &str, t: &toml::Table, allowed: &[&str]) -> Option<String> {
    let hint = format!("one of: {}", allowed.join(", "));
    let ty = w.required_string(path, t, "type", &hint)?;
    if !allowed.contains(&ty.as_str()) {
        w.problem(&join(path, "type"), format!("unknown type {ty:?}"), hint);
        return None;
    }
    Some(ty)
}

pub(super) fn source(
    w: &mut Walker,
    t: &toml::Table,
    base: &Path,
    threads: usize,
    max_events: usize,
    pipeline: &str,
) -> Option<SourceConfig> {
    let ty = kind(w, "source", t, SOURCE_TYPES);
    let shards = w
        .integer("source", t, "shards", 1, 65_536)
        .map_or(threads as u32, |n| n as u32);
    match ty.as_deref()? {
        "file" => {
            w.unknown_keys("source", t, &["type", "path", "shards"]);
            let path = w.required_string(
                "source",
                t,
                "path",
                "the JSONL file to read: path = \"events.jsonl\"",
            )?;
            let path = resolve(base, &path);
            if !path.exists() || path.is_dir() {
                w.problem(
                    "source.path",
                    format!("{} does not exist", path.display()),
                    "relative paths are resolved against the pipeline file's directory",
                );
            }
            Some(SourceConfig::File { path, shards })
        }
        "kafka" => kafka_source(w, t).map(SourceConfig::Kafka),
        "nats" => nats_source(w, t, base, pipeline, shards).map(SourceConfig::Nats),
        "jetstream" => {
            jetstream_source(w, t, base, pipeline, shards, max_events).map(SourceConfig::JetStream)
        }
        _ => {
            w.unknown_keys("source", t, &["type", "shards"]);
            Some(SourceConfig::Stdin { shards })
        }
    }
}

pub(super) fn sink_config(
    w: &mut Walker,
    path: &str,
    t: &toml::Table,
    base: &Path,
) -> Option<SinkConfig> {
    let ty = kind(w, path, t, SINK_TYPES);
    match ty.as_deref()? {
        "file" => {
            w.unknown_keys(path, t, &["type", "path"]);
            let p = w.required_string(
                path,
                t,
                "path",
                "the JSONL file to append to: path = \"out.jsonl\"",
            )?;
            Some(SinkConfig::File {
                path: resolve(base, &p),
            })
        }
        "kafka" => kafka_sink(w, path, t).map(SinkConfig::Kafka),
        "nats" => nats_sink(w, path, t, base).map(SinkConfig::Nats),
        "jetstream" => nats_sink(w, path, t, base).map(SinkConfig::JetStream),
        "stdout" => {
            w.unknown_keys(path, t, &["type"]);
            Some(SinkConfig::Stdout)
        }
        _ => {
            w.unknown_keys(path, t, &["type"]);
            Some(SinkConfig::Stderr)
        }
    }
}

impl SourceConfig {
    /// The source's kind as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File { .. } => "file",
            SourceConfig::Stdin { .. } => "stdin",
            SourceConfig::Kafka(_) => "kafka",
            SourceConfig::Nats(_) => "nats",
            SourceConfig::JetStream(_) => "jetstream",
        }
    }
}

impl SinkConfig {
    /// The sink's kind as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::File { .. } => "file",
            SinkConfig::Stdout => "stdout",
            SinkConfig::Stderr => "stderr",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::Nats(_) => "nats",
            SinkConfig::JetStream(_) => "jetstream",
        }
    }
}

/// Whether one Kafka transaction can hold a pipeline's events, dead letters
/// and consumed offsets: a Kafka source, and a Kafka sink and dead-letter
/// sink that one producer can write (same brokers, same properties).
///
/// # Errors
/// Why not, in words.
pub fn transactional(
    source: &SourceConfig,
    sink: &SinkConfig,
    dead_letter: &SinkConfig,
) -> Result<(), String> {
    let (SourceConfig::Kafka(_), SinkConfig::Kafka(out), SinkConfig::Kafka(dead)) =
        (source, sink, dead_letter)
    else {
        return Err(format!(
            "it needs a kafka source, sink and dead-letter sink, and this pipeline has a {} source, a {} sink and a {} dead-letter sink",
            source.kind(),
            sink.kind(),
            dead_letter.kind()
        ));
    };
    if out.brokers != dead.brokers || out.properties != dead.properties {
        return Err(
            "the sink and the dead-letter sink must name the same brokers and properties, since one transactional producer writes both"
                .into(),
        );
    }
    Ok(())
}
