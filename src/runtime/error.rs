//! Errors of the runtime, split by whose fault they are: the artifact is
//! unusable ([`LoadError`]) or one call into a plugin failed ([`CallError`]).

use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// A plugin artifact could not be turned into something runnable.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The artifact's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are neither a core module nor a component.
    #[error("{path} is not a WebAssembly module or component")]
    NotWasm {
        /// The artifact's path.
        path: PathBuf,
    },
    /// The artifact does not implement the plugin contract.
    #[error("{path} does not implement the weir plugin ABI: {reason}")]
    Abi {
        /// The artifact's path.
        path: PathBuf,
        /// What is missing or wrong, by name.
        reason: String,
    },
    /// wasmtime refused to compile or link it.
    #[error("cannot compile {path}: {message}")]
    Compile {
        /// The artifact's path.
        path: PathBuf,
        /// wasmtime's explanation.
        message: String,
    },
}

/// One call into a plugin failed. Every variant except [`CallError::Refused`]
/// leaves the instance unusable: the caller replaces it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CallError {
    /// The call used up its fuel budget.
    #[error("ran out of fuel ({})", fuel_budget(*budget, *events))]
    OutOfFuel {
        /// The budget that was exhausted.
        budget: u64,
        /// The events of the `process` call; `None` for a start-up or
        /// checkpoint call.
        events: Option<usize>,
    },
    /// The call ran past its wall-clock timeout.
    #[error("exceeded its timeout of {timeout:?}")]
    Deadline {
        /// The configured timeout.
        timeout: Duration,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("tried to grow its memory past the limit of {limit} bytes")]
    MemoryLimit {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The plugin exhausted its call stack.
    #[error("overflowed its call stack")]
    StackOverflow,
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access…).
    #[error("trapped: {message}")]
    Trap {
        /// The trap and, when the plugin wrote one, its last stderr line.
        message: String,
    },
    /// The plugin returned something that does not follow the ABI.
    #[error("returned malformed output: {message}")]
    BadOutput {
        /// What was wrong with it.
        message: String,
    },
    /// The plugin refused, with its own message (`init` or
    /// `checkpoint-import` returned an error).
    #[error("refused {operation}: {message}")]
    Refused {
        /// The operation that was refused.
        operation: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// A new instance could not be created.
    #[error("cannot instantiate: {message}")]
    Instantiate {
        /// wasmtime's explanation.
        message: String,
    },
}

fn fuel_budget(budget: u64, events: Option<usize>) -> String {
    match events {
        Some(1) => format!("budget {budget} for 1 event"),
        Some(n) => format!("budget {budget} for {n} events"),
        None => format!("budget {budget} for start-up or a checkpoint"),
    }
}

impl CallError {
    /// A short, stable label for metrics and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::OutOfFuel { .. } => "out_of_fuel",
            CallError::Deadline { .. } => "deadline",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::StackOverflow => "stack_overflow",
            CallError::Trap { .. } => "trap",
            CallError::BadOutput { .. } => "bad_output",
            CallError::Refused { .. } => "refused",
            CallError::Instantiate { .. } => "instantiate",
        }
    }
}
