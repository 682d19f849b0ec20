//! The only part of weir that knows wasmtime, in three tiers (see
//! `README.md` in this folder):
//!
//! - [`Runtime`]: one per process: the engine (fuel, epochs, pooling
//!   allocator), its epoch ticker, the linkers, the artifact cache.
//! - [`CompiledPlugin`]: one per artifact: checked against the ABI,
//!   compiled or loaded from the cache, imports resolved.
//! - [`StageInstance`]: one per stage and partition (or worker thread): a
//!   `Store` with its own limits and sandbox, owned by one worker thread.

mod cache;
mod component;
mod core_module;
mod engine;
mod error;
mod grants;
mod host;
mod inspect;
mod instance;
mod limits;
mod plugin;
mod plugin_log;

pub use engine::{Runtime, RuntimeError, RuntimeOptions, EPOCH_TICK, PROFILER_ENV};
pub use error::{CallError, LoadError};
pub use grants::Grants;
pub use host::{KeyedDelta, KeyedState, StateError, DEFAULT_STATE_MAX_BYTES, MAX_KEY, MAX_VALUE};
pub use inspect::{inspect, Form, PluginInfo};
pub use instance::{InstanceSettings, StageInstance};
pub use limits::{
    CallKind, StageLimits, CALL_FUEL_EVENTS, DEFAULT_FUEL_PER_EVENT, DEFAULT_MEMORY,
    DEFAULT_TIMEOUT, SETUP_FUEL_EVENTS,
};
pub use plugin::CompiledPlugin;
pub use plugin_log::LogTag;
