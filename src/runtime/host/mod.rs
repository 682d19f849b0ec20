//! What weir offers a plugin, one module per host interface (`log` now),
//! over one [`HostState`] that the store of either plugin form carries. Each
//! interface binds itself to both forms: the component form's WIT `host`
//! interface and the core-module form's `weir.*` imports, so the two behave
//! alike.

mod log;

pub(crate) use log::add_to_core_linker as add_log_to_core_linker;

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
}

impl HostState {
    /// The host state of an instance tagged `tag`, whose stderr is `stderr`.
    pub(crate) fn new(tag: Arc<LogTag>, stderr: LogStream) -> Self {
        HostState { tag, stderr }
    }
}
