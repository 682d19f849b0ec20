//! What weir offers a plugin, one module per host interface (`log`,
//! `state`), over one [`HostState`] that the store of either plugin form
//! carries. Each interface binds itself to both forms: the component form's
//! WIT interfaces and the core-module form's `weir.*` imports, so the two
//! behave alike.

mod delta;
mod hash_index;
mod keyed;
mod live_map;
mod log;
mod state;
mod state_core;

pub use delta::KeyedDelta;
pub use keyed::{KeyedState, StateError, DEFAULT_STATE_MAX_BYTES, MAX_KEY, MAX_VALUE};
pub(crate) use log::add_to_core_linker as add_log_to_core_linker;
pub(crate) use state::{add_to_component_linker as add_state_to_component_linker, StateAccess};
pub(crate) use state_core::{
    add_to_core_linker as add_state_to_core_linker, CORE_IMPORTS as STATE_CORE_IMPORTS,
};

use super::plugin_log::{LogStream, LogTag};
use std::sync::Arc;

/// The host's side of one instance: what its host functions work with.
pub(crate) struct HostState {
    /// Pipeline and stage, for every line the plugin logs.
    tag: Arc<LogTag>,
    /// The plugin's stderr: error lines logged through the host join its
    /// recent lines, so a trap that follows them is explained (a
    /// JavaScript plugin has no stderr of its own).
    stderr: LogStream,
    /// The keyed state the instance reaches, and whether it may now.
    pub(crate) state: StateAccess,
}

impl HostState {
    /// The host state of an instance tagged `tag`, whose stderr is `stderr`.
    pub(crate) fn new(tag: Arc<LogTag>, stderr: LogStream) -> Self {
        HostState {
            tag,
            stderr,
            state: StateAccess::default(),
        }
    }
}
