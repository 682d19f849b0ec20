//! The `weir` subcommands.

// The doc comments of the arguments are `weir --help`'s text, where
// `<name>` is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

mod build;
mod check;
mod deploy;
mod inspect;
mod logging;
mod new;
mod replay;
mod run;
mod sign;
mod state;
mod test_plugin;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use logging::LogFormat;

/// weir: run batches of events through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `weir=debug` (or set WEIR_LOG).
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pipelines until their sources end or SIGINT/SIGTERM; SIGHUP
    /// re-reads the files and swaps changed stages.
    Run {
        /// Pipeline files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Serve the admin API on this address (state changes need
        /// WEIR_ADMIN_TOKEN as a bearer token).
        #[arg(long, num_args = 0..=1, default_missing_value = crate::admin::DEFAULT_LISTEN)]
        admin: Option<std::net::SocketAddr>,
    },
    /// Validate pipeline files and their plugins; report every problem.
    Check {
        /// Pipeline files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
    },
    /// Run a JSONL file through a pipeline locally, without any broker.
    Replay {
        /// The pipeline file (its source and sinks are replaced).
        pipeline: PathBuf,
        /// Events to replay, one JSON object per line.
        #[arg(long)]
        input: PathBuf,
        /// Expected output (events and dead letters, in order); a mismatch
        /// exits non-zero.
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Serve Prometheus metrics on this address while replaying.
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Start a plugin: a skeleton that builds and passes its own test.
    New {
        /// The language: rust, go, js, ts or python.
        language: String,
        /// The plugin's name (lowercase letters, digits, '-', '_').
        name: String,
        /// Where to put it (default: ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the plugin in a directory into one .wasm, installing its
    /// pinned toolchain into ~/.cache/weir when missing.
    Build {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The artifact (default: <dir>/<name>.wasm).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Build a core module instead of a component (Rust only).
        #[arg(long)]
        core: bool,
        /// Sign the artifact with this secret key (<artifact>.minisig).
        #[arg(long)]
        sign: Option<PathBuf>,
    },
    /// Build the plugin in a directory, run its samples.jsonl through it
    /// as `weir run` would, and compare with its expected.jsonl.
    Test {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// A setting for the plugin's init, key=value. Repeatable.
        #[arg(long = "config")]
        config: Vec<String>,
        /// Test the core-module form (Rust only).
        #[arg(long)]
        core: bool,
    },
    /// Show a plugin's form, imports, exports, ABI version and size.
    Inspect {
        /// The plugin artifact.
        plugin: PathBuf,
    },
    /// Deploy a new plugin version to a running worker through its admin
    /// API (token from WEIR_ADMIN_TOKEN; `<plugin>.minisig` is sent along).
    Deploy {
        /// The pipeline's name.
        pipeline: String,
        /// The stage's name.
        stage: String,
        /// The plugin artifact.
        plugin: PathBuf,
        /// The worker's admin API address.
        #[arg(long, default_value = crate::admin::DEFAULT_LISTEN)]
        admin: std::net::SocketAddr,
    },
    /// Create a minisign key pair: <name>.pub and <name>.key. The secret
    /// key is encrypted with WEIR_KEY_PASSWORD when that is set.
    Keygen {
        /// Path and stem of the key files.
        #[arg(long, default_value = "weir")]
        name: PathBuf,
    },
    /// Sign a plugin artifact: writes <plugin>.minisig.
    Sign {
        /// The plugin artifact.
        plugin: PathBuf,
        /// The secret key (WEIR_KEY_PASSWORD opens an encrypted one).
        #[arg(long, default_value = "weir.key")]
        key: PathBuf,
    },
    /// Show what a pipeline's [checkpoint] store holds: each partition's
    /// position and a stage's keyed state (stop the workers that hold the
    /// partitions first: the directory store is theirs while they run).
    State {
        /// The pipeline file.
        pipeline: PathBuf,
        /// The stage whose keyed state to show.
        #[arg(long)]
        stage: String,
        /// Only this partition (e.g. shard-0, orders.3).
        #[arg(long)]
        partition: Option<String>,
        /// Only this key (as UTF-8).
        #[arg(long)]
        key: Option<String>,
    },
    /// Verify a plugin artifact's <plugin>.minisig against trusted keys.
    Verify {
        /// The plugin artifact.
        plugin: PathBuf,
        /// A trusted public key: a .pub file or its base64 line. Repeatable.
        #[arg(long = "key", default_value = "weir.pub")]
        keys: Vec<String>,
    },
}

/// How the process should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: problems were found (check, replay mismatch).
    Problems,
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever stopped the command; printed by `main`.
pub fn main(cli: Cli) -> anyhow::Result<Outcome> {
    logging::init(cli.log_format, cli.log.as_deref());
    match cli.command {
        Command::Run { pipelines, admin } => run::run(&pipelines, admin),
        Command::Deploy {
            pipeline,
            stage,
            plugin,
            admin,
        } => deploy::deploy(admin, &pipeline, &stage, &plugin),
        Command::Check { pipelines } => check::check(&pipelines),
        Command::Replay {
            pipeline,
            input,
            expect,
            metrics,
        } => replay::replay(&pipeline, &input, expect.as_deref(), metrics),
        Command::Inspect { plugin } => inspect::inspect(&plugin),
        Command::New {
            language,
            name,
            dir,
        } => new::new(&language, &name, dir.as_deref()),
        Command::Build {
            dir,
            out,
            core,
            sign,
        } => build::build(&dir, out.as_deref(), core, sign.as_deref()),
        Command::Test { dir, config, core } => test_plugin::test(&dir, &config, core),
        Command::Keygen { name } => sign::keygen(&name),
        Command::Sign { plugin, key } => sign::sign(&plugin, &key),
        Command::Verify { plugin, keys } => sign::verify(&plugin, &keys),
        Command::State {
            pipeline,
            stage,
            partition,
            key,
        } => state::state(&pipeline, &stage, partition.as_deref(), key.as_deref()),
    }
}

/// The runtime every subcommand shares, with the default cache.
fn runtime() -> anyhow::Result<std::sync::Arc<crate::runtime::Runtime>> {
    Ok(crate::runtime::Runtime::new(
        crate::runtime::RuntimeOptions {
            cache_dir: crate::runtime::Runtime::default_cache_dir(),
        },
    )?)
}

/// A multi-threaded tokio runtime for the async side (sources, sinks).
fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
