//! The typed pipeline and how a TOML file becomes one.

use super::problems::{ConfigError, Problem, Walker};
use super::units::{parse_duration, parse_positive_size};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated pipeline: everything needed to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The pipeline's name, used in logs, metrics and dead letters.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Where events come from.
    pub source: SourceConfig,
    /// How events are grouped into batches.
    pub batch: BatchConfig,
    /// The stages, in order.
    pub stages: Vec<StageConfig>,
    /// Where results go.
    pub sink: SinkConfig,
    /// Where failed events go, with the reason.
    pub dead_letter: SinkConfig,
    /// The worker pool.
    pub workers: WorkersConfig,
    /// Prometheus exporter address, when enabled.
    pub metrics: Option<SocketAddr>,
    /// What the pipeline promises about each event reaching the sinks.
    pub delivery: Delivery,
    /// Which plugin signatures are trusted, and whether they are required.
    pub trust: crate::signing::Trust,
    /// Persistent checkpoints, when configured.
    pub checkpoint: Option<super::CheckpointConfig>,
}

/// The delivery guarantee a pipeline runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Positions are committed after both sinks confirmed; a crash may
    /// deliver some events twice.
    #[default]
    AtLeastOnce,
    /// Kafka → Kafka only: events, dead letters and consumed offsets are
    /// committed in one Kafka transaction.
    ExactlyOnce,
}

/// How the batcher groups events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most events in a batch.
    pub max_events: usize,
    /// Most bytes (keys, values, headers) in a batch.
    pub max_bytes: usize,
    /// How long a partial batch may wait for more events.
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 512,
            max_bytes: 1 << 20,
            linger: Duration::from_millis(20),
        }
    }
}

/// The worker pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkersConfig {
    /// Worker threads that run wasm.
    pub threads: usize,
}

/// The number of cores, the default pool size.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

use super::endpoints::{sink_config, source, SinkConfig, SourceConfig};
use super::stage::stages;
pub use super::stage::{SmokeCheck, SmokeCompare, StageConfig, SwapPolicy};

const TOP_KEYS: &[&str] = &[
    "name",
    "source",
    "batch",
    "stage",
    "sink",
    "dead_letter",
    "workers",
    "metrics",
    "delivery",
    "trusted_keys",
    "require_signature",
    "checkpoint",
];

impl Pipeline {
    /// Reads and validates a pipeline file.
    ///
    /// # Errors
    /// A [`ConfigError`] with every problem found, each with its key path
    /// and a hint.
    pub fn load(file: &Path) -> Result<Pipeline, ConfigError> {
        match std::fs::read_to_string(file) {
            Ok(text) => Pipeline::parse(file, &text),
            Err(e) => Err(ConfigError {
                file: file.to_owned(),
                problems: vec![Problem {
                    key: "(file)".into(),
                    message: format!("cannot read: {e}"),
                    hint: "check the path".into(),
                }],
            }),
        }
    }

    /// Validates the text of a pipeline file; `file` names it in errors and
    /// anchors relative paths.
    ///
    /// # Errors
    /// As [`Pipeline::load`].
    pub fn parse(file: &Path, text: &str) -> Result<Pipeline, ConfigError> {
        let mut problems = Vec::new();
        let fail = |problems: Vec<Problem>| ConfigError {
            file: file.to_owned(),
            problems,
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
                return Err(fail(vec![Problem {
                    key: format!("(line {line}, column {col})"),
                    message: format!("not valid TOML: {}", e.message()),
                    hint: "see https://toml.io for the syntax".into(),
                }]));
            }
        };
        let base = file.parent().unwrap_or(Path::new(".")).to_owned();
        let mut w = Walker::new(&mut problems);
        w.unknown_keys("", &table, TOP_KEYS);

        let name = w
            .required_string(
                "",
                &table,
                "name",
                "give the pipeline a name: name = \"orders-enrich\"",
            )
            .unwrap_or_default();
        if table.contains_key("name") && !valid_name(&name) {
            w.problem(
                "name",
                format!("{name:?} is not a valid name"),
                "use letters, digits, '-' and '_'",
            );
        }

        let workers = match w.table("", &table, "workers") {
            Some(t) => {
                w.unknown_keys("workers", t, &["threads"]);
                WorkersConfig {
                    threads: w
                        .integer("workers", t, "threads", 1, 1024)
                        .map_or_else(default_threads, |n| n as usize),
                }
            }
            None => WorkersConfig {
                threads: default_threads(),
            },
        };

        let batch = match w.table("", &table, "batch") {
            Some(t) => batch(&mut w, t),
            None => BatchConfig::default(),
        };

        let source = match w.table("", &table, "source") {
            Some(t) => source(&mut w, t, &base, workers.threads, batch.max_events, &name),
            None => {
                w.problem(
                    "source",
                    "missing",
                    "add a [source] table, e.g. type = \"file\" and path = \"events.jsonl\"",
                );
                None
            }
        };

        let stages = stages(&mut w, &table, &base);

        let sink = match w.table("", &table, "sink") {
            Some(t) => sink_config(&mut w, "sink", t, &base),
            None => {
                w.problem(
                    "sink",
                    "missing",
                    "add a [sink] table, e.g. type = \"stdout\"",
                );
                None
            }
        };
        let dead_letter = match w.table("", &table, "dead_letter") {
            Some(t) => sink_config(&mut w, "dead_letter", t, &base),
            None => Some(SinkConfig::Stderr),
        };

        let metrics = match w.table("", &table, "metrics") {
            Some(t) => {
                w.unknown_keys("metrics", t, &["listen"]);
                w.parsed(
                    "metrics",
                    t,
                    "listen",
                    |s| s.parse::<SocketAddr>().map_err(|e| format!("{s:?}: {e}")),
                    "127.0.0.1:9464",
                )
            }
            None => None,
        };

        let delivery = match w.string("", &table, "delivery").as_deref() {
            None | Some("at-least-once") => Delivery::AtLeastOnce,
            Some("exactly-once") => {
                if let (Some(source), Some(sink), Some(dead_letter)) =
                    (&source, &sink, &dead_letter)
                {
                    if let Err(why) = super::endpoints::transactional(source, sink, dead_letter) {
                        w.problem(
                            "delivery",
                            format!("exactly-once is not possible here: {why}"),
                            "use delivery = \"at-least-once\", or read from Kafka and write events and dead letters to Kafka on one cluster",
                        );
                    }
                }
                Delivery::ExactlyOnce
            }
            Some(other) => {
                w.problem(
                    "delivery",
                    format!("unknown delivery mode {other:?}"),
                    "use \"at-least-once\" (the default) or \"exactly-once\"",
                );
                Delivery::AtLeastOnce
            }
        };

        let trust = trust(&mut w, &table, &base);
        let checkpoint = w
            .table("", &table, "checkpoint")
            .and_then(|t| super::checkpoint::checkpoint(&mut w, t, &base));

        if checkpoint.is_some() {
            let resumable = matches!(
                source,
                Some(SourceConfig::File { .. } | SourceConfig::Kafka(_)) | None
            );
            if !resumable {
                w.problem(
                    "checkpoint",
                    "persistent checkpoints need a source that can resume from a checkpoint's positions",
                    "use a file or Kafka source, or remove [checkpoint]",
                );
            } else if delivery == Delivery::ExactlyOnce {
                w.problem(
                    "checkpoint",
                    "in exactly-once mode keyed state is kept in changelog topics, inside the Kafka transactions; a checkpoint store is not part of a Kafka transaction, so resuming from it would re-publish committed events",
                    "remove [checkpoint] (keyed state needs nothing more), or use delivery = \"at-least-once\"",
                );
            }
        }

        match (problems.is_empty(), source, sink, dead_letter) {
            (true, Some(source), Some(sink), Some(dead_letter)) => Ok(Pipeline {
                name,
                file: file.to_owned(),
                source,
                batch,
                stages,
                sink,
                dead_letter,
                workers,
                metrics,
                delivery,
                trust,
                checkpoint,
            }),
            _ => Err(fail(problems)),
        }
    }
}

/// `trusted_keys` and `require_signature`.
fn trust(w: &mut Walker, table: &toml::Table, base: &Path) -> crate::signing::Trust {
    let mut keys = Vec::new();
    for (i, spec) in w
        .strings("", table, "trusted_keys")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match crate::signing::TrustedKey::parse(spec, base) {
            Ok(k) => keys.push(k),
            Err(e) => w.problem(
                &format!("trusted_keys[{}]", i + 1),
                e.to_string(),
                "a minisign public key: its base64 line (RW…) or a .pub file made by `weir keygen` or `minisign -G`",
            ),
        }
    }
    let require_signature = w.boolean("", table, "require_signature").unwrap_or(false);
    if require_signature && keys.is_empty() && !table.contains_key("trusted_keys") {
        w.problem(
            "require_signature",
            "no key is trusted, so no plugin could run",
            "add trusted_keys = [\"weir.pub\"] (make one with `weir keygen`)",
        );
    }
    crate::signing::Trust {
        keys,
        require_signature,
    }
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn batch(w: &mut Walker, t: &toml::Table) -> BatchConfig {
    w.unknown_keys("batch", t, &["max_events", "max_bytes", "linger"]);
    let d = BatchConfig::default();
    BatchConfig {
        max_events: w
            .integer("batch", t, "max_events", 1, 1_000_000)
            .map_or(d.max_events, |n| n as usize),
        max_bytes: w
            .parsed("batch", t, "max_bytes", parse_positive_size, "1MiB")
            .map_or(d.max_bytes, |n| n as usize),
        linger: w
            .parsed("batch", t, "linger", parse_duration, "20ms")
            .unwrap_or(d.linger),
    }
}
