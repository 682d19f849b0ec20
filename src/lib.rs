//! weir: a stream worker that runs batches of events through sandboxed
//! WebAssembly plugins.
//!
//! # Layout
//! `docs/architecture.md` explains how the parts fit together.
//!
//! - [`config`]: pipeline files → a typed, validated [`config::Pipeline`].
//! - [`runtime`]: the wasm runtime (the only module that knows wasmtime).
//! - [`pipeline`]: [`pipeline::start`] (one way to run a pipeline, in
//!   either delivery mode), batcher, worker pool, stage chain, completion
//!   tracker, swap on a worker thread, and [`pipeline::reload`]: new plugin
//!   versions (watch, verify, compile, swap, roll back).
//! - [`checkpoint`]: where stage state is persisted with its positions.
//! - [`source`] and [`sink`]: where events come from and go to; [`nats`]:
//!   the NATS connection they and the checkpoint store share.
//! - [`admin`]: the HTTP admin API; [`metrics`]: Prometheus metrics.
//! - [`signing`]: minisign keys and signatures of plugin artifacts.
//! - [`jsonl`]: the JSON Lines shape of an event (files, stdin, stdout).
//! - [`authoring`]: `weir new`, `weir build` and `weir test`: the embedded
//!   SDKs, the pinned plugin toolchains, the builds per language.
//! - [`cli`]: the `weir` subcommands.
//!
//! The plugin contract lives beside the plugins: `plugins/wit/stage.wit`
//! (component form) and `plugins/abi/CORE-MODULE.md` (core-module form);
//! `docs/decisions.md` records the choices made along the way.

#![warn(missing_docs)]

pub mod admin;
pub mod authoring;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod jsonl;
pub mod metrics;
pub mod nats;
pub mod pipeline;
pub mod runtime;
pub mod signing;
pub mod sink;
pub mod source;

pub use weir_abi::{Event, EventError, Header, Output};
