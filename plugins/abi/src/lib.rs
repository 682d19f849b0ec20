//! The weir plugin ABI, shared by the host and the Rust plugin SDK.
//!
//! - [`Event`], [`Output`] and [`EventError`]: the data every stage sees, in
//!   both binary forms (component and core module).
//! - [`cbor`]: the CBOR encoding that carries batches, outputs and the init
//!   configuration across the core-module boundary. The schema is written
//!   down in `plugins/abi/CORE-MODULE.md`.
//!
//! This crate has no dependencies so that it builds for every wasm target.
#![forbid(unsafe_code)]

pub mod cbor;
mod event;

pub use event::{Event, EventError, Header, Output};

/// The ABI version a core module reports from `weir_abi_version`.
pub const ABI_VERSION: i32 = 1;
