//! Log lines that the host writes to the worker's log, tagged with the
//! pipeline and stage.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the stage handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one log line through the host.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

#[cfg(target_env = "p2")]
mod imp {
    use super::Level;
    use crate::bindings::weir::plugin::{host, types};

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => types::Level::Trace,
            Level::Debug => types::Level::Debug,
            Level::Info => types::Level::Info,
            Level::Warn => types::Level::Warn,
            Level::Error => types::Level::Error,
        };
        host::log(level, message);
    }
}

#[cfg(all(target_family = "wasm", not(target_env = "p2")))]
mod imp {
    use super::Level;

    #[link(wasm_import_module = "weir")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn host_log(level: i32, ptr: *const u8, len: usize);
    }

    pub fn log(level: Level, message: &str) {
        // SAFETY: the host only reads `len` bytes at `ptr` during the call.
        unsafe { host_log(level as i32, message.as_ptr(), message.len()) }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::Level;

    /// Outside wasm (unit tests of a plugin) lines go to stderr.
    pub fn log(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
}
