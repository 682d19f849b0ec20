//! `log(level, message)`: a line in the worker's log, tagged with pipeline
//! and stage. Component form: `weir:plugin/host.log`; core-module form:
//! `weir.log(level i32, ptr i32, len i32)`, the message in the module's
//! memory.

use super::super::component::{bindings, wit, ComponentState};
use super::super::core_module::ModuleState;
use super::super::plugin_log::{emit, PluginLevel};
use super::HostState;
use wasmtime::{Caller, Linker};

impl HostState {
    /// Logs `message` at `level`; an error also joins the plugin's recent
    /// stderr lines.
    fn log(&mut self, level: PluginLevel, message: String) {
        emit(&self.tag, level, "log", &message);
        if level == PluginLevel::Error {
            self.stderr.remember(message);
        }
    }
}

impl bindings::weir::plugin::host::Host for ComponentState {
    fn log(&mut self, level: wit::Level, message: String) {
        let level = match level {
            wit::Level::Trace => PluginLevel::Trace,
            wit::Level::Debug => PluginLevel::Debug,
            wit::Level::Info => PluginLevel::Info,
            wit::Level::Warn => PluginLevel::Warn,
            wit::Level::Error => PluginLevel::Error,
        };
        self.host.log(level, message);
    }
}

/// Adds `weir.log` to the core modules' linker.
pub(crate) fn add_to_core_linker(l: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "weir",
        "log",
        |mut caller: Caller<'_, ModuleState>, level: i32, ptr: i32, len: i32| {
            let Some(mem) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                return;
            };
            let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
            let text = mem
                .data(&caller)
                .get(ptr..ptr.saturating_add(len))
                .map(|b| String::from_utf8_lossy(b).into_owned());
            let (level, text) = match text {
                Some(t) => (PluginLevel::from_i32(level), t),
                None => (
                    PluginLevel::Warn,
                    "(log call with an out-of-bounds message)".to_owned(),
                ),
            };
            caller.data_mut().host.log(level, text);
        },
    )?;
    Ok(())
}
