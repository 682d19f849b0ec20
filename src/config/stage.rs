//! `[[stage]]` tables: a stage's plugin, limits, config, grants and swap
//! policy.

use super::pipeline::{resolve, valid_name};
use super::problems::{join, Walker};
use super::units::{parse_positive_duration, parse_size};
use crate::runtime::{
    Grants, StageLimits, DEFAULT_FUEL_PER_EVENT, DEFAULT_MEMORY, DEFAULT_STATE_MAX_BYTES,
    DEFAULT_TIMEOUT,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Sample events every new version must handle before it is swapped in.
    pub smoke: Option<SmokeCheck>,
}

/// `[stage.smoke]`: before a swap, the running and the new version each
/// process these sample events on fresh instances off the worker threads;
/// the new version is refused when it does worse.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeCheck {
    /// A JSON Lines file of events, as the file source reads them.
    pub events: PathBuf,
    /// What the new version's results must keep of the old one's.
    pub compare: SmokeCompare,
}

/// How a smoke check compares the two versions' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmokeCompare {
    /// No sample the old version handled may fail (error or trap) in the
    /// new one; outputs may differ. The default.
    Errors,
    /// Besides, every sample's output events must equal the old version's.
    Output,
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

const STAGE_KEYS: &[&str] = &[
    "name",
    "plugin",
    "fuel_per_event",
    "memory",
    "timeout",
    "state_max_bytes",
    "config",
    "grants",
    "stateless",
    "watch",
    "probation_batches",
    "max_failure_share",
    "smoke",
];

pub(super) fn stages(w: &mut Walker, table: &toml::Table, base: &Path) -> Vec<StageConfig> {
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
        if t.contains_key("fuel") {
            // The per-call budget of earlier versions: say what replaced it
            // rather than calling it unknown.
            w.problem(
                &join(&path, "fuel"),
                "`fuel` (a budget per call) is replaced by `fuel_per_event`: a call of n events gets (n + 16) × fuel_per_event",
                "write fuel_per_event = <the old fuel divided by batch.max_events>, or leave it out for the default (10,000,000)",
            );
        }
        let mut known = STAGE_KEYS.to_vec();
        known.push("fuel");
        w.unknown_keys(&path, t, &known);
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
            fuel_per_event: w
                .integer(&path, t, "fuel_per_event", 1, i64::MAX / 1_000_000)
                .unwrap_or(DEFAULT_FUEL_PER_EVENT),
            memory: w
                .parsed(&path, t, "memory", parse_size, "64MiB")
                .unwrap_or(DEFAULT_MEMORY),
            timeout: w
                .parsed(&path, t, "timeout", parse_positive_duration, "200ms")
                .unwrap_or(DEFAULT_TIMEOUT),
            state_max_bytes: w
                .parsed(&path, t, "state_max_bytes", parse_size, "256MiB")
                .unwrap_or(DEFAULT_STATE_MAX_BYTES),
        };
        if limits.state_max_bytes < 1 << 10 {
            w.problem(
                &join(&path, "state_max_bytes"),
                "less than 1KiB: not even one key of keyed state would fit",
                "use at least \"1MiB\", or leave it out for the default (256MiB)",
            );
        }
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
        let smoke = w
            .table(&path, t, "smoke")
            .and_then(|sm| smoke(w, &join(&path, "smoke"), sm, base));
        if let (Some(name), Some(plugin)) = (name, plugin) {
            out.push(StageConfig {
                name,
                plugin,
                limits,
                config,
                grants,
                stateless,
                swap,
                smoke,
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

/// `[stage.smoke]`: `events` (a JSON Lines file whose every line must be an
/// event) and `compare`.
fn smoke(w: &mut Walker, path: &str, t: &toml::Table, base: &Path) -> Option<SmokeCheck> {
    w.unknown_keys(path, t, &["events", "compare"]);
    let compare = match w.string(path, t, "compare").as_deref() {
        None | Some("errors") => SmokeCompare::Errors,
        Some("output") => SmokeCompare::Output,
        Some(other) => {
            w.problem(
                &join(path, "compare"),
                format!("{other:?} is not a comparison"),
                "\"errors\" (the new version fails no sample the old one handled) or \"output\" (and gives the same output)",
            );
            SmokeCompare::Errors
        }
    };
    let events = w.required_string(
        path,
        t,
        "events",
        "sample events as JSON Lines: events = \"samples/enrich.jsonl\"",
    )?;
    let events = resolve(base, &events);
    let key = join(path, "events");
    match std::fs::read_to_string(&events) {
        Err(e) => w.problem(
            &key,
            format!("cannot read {}: {e}", events.display()),
            "relative paths are resolved against the pipeline file's directory",
        ),
        Ok(text) => match crate::pipeline::reload::sample_events(&text) {
            Err(why) => w.problem(
                &key,
                format!("{}: {why}", events.display()),
                "one event per line, as the file source reads them (see the README's \"Events as JSON Lines\")",
            ),
            Ok(v) if v.is_empty() => w.problem(
                &key,
                format!("{} holds no events", events.display()),
                "give the smoke check at least one sample event",
            ),
            Ok(_) => {}
        },
    }
    Some(SmokeCheck { events, compare })
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
