//! The typed pipeline and how a TOML file becomes one.

use super::problems::{join, ConfigError, Problem, Walker};
use super::units::{parse_duration, parse_size};
use crate::runtime::{Grants, StageLimits, DEFAULT_FUEL, DEFAULT_MEMORY, DEFAULT_TIMEOUT};
use std::collections::BTreeMap;
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

/// One stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// The stage's name, unique in the pipeline.
    pub name: String,
    /// The plugin artifact.
    pub plugin: PathBuf,
    /// Per-call limits.
    pub limits: StageLimits,
    /// Handed to the plugin's `init`.
    pub config: Vec<(String, String)>,
    /// Capabilities beyond the sandbox.
    pub grants: Grants,
    /// One instance per worker thread instead of one per partition.
    pub stateless: bool,
    /// How new versions of the plugin are taken on.
    pub swap: SwapPolicy,
}

/// How a stage takes on a new version of its plugin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwapPolicy {
    /// Swap to the plugin file whenever it changes on disk.
    pub watch: bool,
    /// Batches each worker thread watches after a swap.
    pub probation_batches: u32,
    /// More failed batches than this share of `probation_batches` roll the
    /// stage back to the previous version.
    pub max_failure_share: f64,
}

impl Default for SwapPolicy {
    fn default() -> Self {
        SwapPolicy {
            watch: false,
            probation_batches: 10,
            max_failure_share: 0.0,
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

        let source = match w.table("", &table, "source") {
            Some(t) => source(&mut w, t, &base, workers.threads, &name),
            None => {
                w.problem(
                    "source",
                    "missing",
                    "add a [source] table, e.g. type = \"file\" and path = \"events.jsonl\"",
                );
                None
            }
        };

        let batch = match w.table("", &table, "batch") {
            Some(t) => batch(&mut w, t),
            None => BatchConfig::default(),
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
            let resumable = matches!(source, Some(SourceConfig::File { .. }) | None);
            if !resumable || delivery == Delivery::ExactlyOnce {
                w.problem(
                    "checkpoint",
                    "persistent checkpoints need a source that can resume from a checkpoint's positions, and at-least-once delivery",
                    "in this build: a file source; remove [checkpoint] otherwise",
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

/// `max_failure_share`: a number from 0 to 1.
fn share(w: &mut Walker, path: &str, t: &toml::Table) -> Option<f64> {
    let v = t.get("max_failure_share")?;
    let n = match v {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    match n {
        Some(n) if (0.0..=1.0).contains(&n) => Some(n),
        _ => {
            w.problem(
                &join(path, "max_failure_share"),
                format!("{v} is not a share"),
                "a number from 0 to 1, e.g. 0.2",
            );
            None
        }
    }
}

fn valid_name(s: &str) -> bool {
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
            .parsed("batch", t, "max_bytes", parse_size, "1MiB")
            .map_or(d.max_bytes, |n| n as usize),
        linger: w
            .parsed("batch", t, "linger", parse_duration, "20ms")
            .unwrap_or(d.linger),
    }
}

const STAGE_KEYS: &[&str] = &[
    "name",
    "plugin",
    "fuel",
    "memory",
    "timeout",
    "config",
    "grants",
    "stateless",
    "watch",
    "probation_batches",
    "max_failure_share",
];

fn stages(w: &mut Walker, table: &toml::Table, base: &Path) -> Vec<StageConfig> {
    let list = match table.get("stage") {
        None => return Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            w.problem(
                "stage",
                "expected [[stage]] tables",
                "write each stage as [[stage]] with name and plugin",
            );
            return Vec::new();
        }
    };
    let mut out: Vec<StageConfig> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let path = format!("stage[{}]", i + 1);
        let Some(t) = v.as_table() else {
            w.problem(&path, "expected a table", "write each stage as [[stage]]");
            continue;
        };
        w.unknown_keys(&path, t, STAGE_KEYS);
        let name = w.required_string(&path, t, "name", "name the stage: name = \"parse\"");
        if let Some(n) = &name {
            if !valid_name(n) {
                w.problem(
                    &join(&path, "name"),
                    format!("{n:?} is not a valid name"),
                    "use letters, digits, '-' and '_'",
                );
            } else if out.iter().any(|s| &s.name == n) {
                w.problem(
                    &join(&path, "name"),
                    format!("a stage named {n:?} already exists"),
                    "stage names must be unique",
                );
            }
        }
        let plugin = w.required_string(
            &path,
            t,
            "plugin",
            "the plugin artifact: plugin = \"../plugins/dist/filter.wasm\"",
        );
        let plugin = plugin.map(|p| resolve(base, &p));
        if let Some(p) = &plugin {
            if !p.is_file() {
                w.problem(&join(&path, "plugin"), format!("{} does not exist", p.display()), "build the plugins (plugins/build.sh); relative paths are resolved against the pipeline file's directory");
            }
        }
        let limits = StageLimits {
            fuel: w
                .integer(&path, t, "fuel", 1, i64::MAX)
                .unwrap_or(DEFAULT_FUEL),
            memory: w
                .parsed(&path, t, "memory", parse_size, "64MiB")
                .unwrap_or(DEFAULT_MEMORY),
            timeout: w
                .parsed(&path, t, "timeout", parse_duration, "200ms")
                .unwrap_or(DEFAULT_TIMEOUT),
        };
        if limits.memory < 64 << 10 {
            w.problem(
                &join(&path, "memory"),
                "less than one wasm page (64KiB)",
                "use at least \"1MiB\"",
            );
        }
        let config = stage_config(w, &path, t);
        let grants = match w.table(&path, t, "grants") {
            Some(g) => grants(w, &join(&path, "grants"), g, base),
            None => Grants::default(),
        };
        let stateless = w.boolean(&path, t, "stateless").unwrap_or(false);
        let defaults = SwapPolicy::default();
        let swap = SwapPolicy {
            watch: w.boolean(&path, t, "watch").unwrap_or(false),
            probation_batches: w
                .integer(&path, t, "probation_batches", 1, 1_000_000)
                .map_or(defaults.probation_batches, |n| n as u32),
            max_failure_share: share(w, &path, t).unwrap_or(defaults.max_failure_share),
        };
        if let (Some(name), Some(plugin)) = (name, plugin) {
            out.push(StageConfig {
                name,
                plugin,
                limits,
                config,
                grants,
                stateless,
                swap,
            });
        }
    }
    out
}

fn stage_config(w: &mut Walker, path: &str, t: &toml::Table) -> Vec<(String, String)> {
    let Some(c) = w.table(path, t, "config") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in c {
        let value = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                w.problem(
                    &format!("{path}.config.{k}"),
                    format!(
                        "expected a string, number or boolean, found {}",
                        other.type_str()
                    ),
                    "plugins receive their config as string pairs",
                );
                continue;
            }
        };
        out.push((k.clone(), value));
    }
    out
}

fn grants(w: &mut Walker, path: &str, g: &toml::Table, base: &Path) -> Grants {
    w.unknown_keys(path, g, &["env", "read_dirs"]);
    let env = w.strings(path, g, "env").unwrap_or_default();
    let mut read_dirs = BTreeMap::new();
    if let Some(dirs) = w.table(path, g, "read_dirs") {
        for (guest, host) in dirs {
            let key = format!("{path}.read_dirs.\"{guest}\"");
            let Some(host) = host.as_str() else {
                w.problem(
                    &key,
                    "expected a host directory path",
                    "write it like read_dirs = { \"/ref\" = \"data/reference\" }",
                );
                continue;
            };
            let host = resolve(base, host);
            if !host.is_dir() {
                w.problem(
                    &key,
                    format!("{} is not a directory", host.display()),
                    "relative paths are resolved against the pipeline file's directory",
                );
            }
            if !guest.starts_with('/') {
                w.problem(
                    &key,
                    format!("guest path {guest:?} is not absolute"),
                    "the plugin sees the directory at this absolute path, e.g. \"/ref\"",
                );
            }
            read_dirs.insert(guest.clone(), host);
        }
    }
    Grants { env, read_dirs }
}
