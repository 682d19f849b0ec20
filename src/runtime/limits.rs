//! Per-call limits: fuel, memory and a wall-clock deadline.

use super::error::CallError;
use std::time::Duration;
use wasmtime::{ResourceLimiter, Trap};

/// The limits of one stage, reset before every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    /// Fuel for one `process` call (roughly one unit per wasm instruction).
    pub fuel: u64,
    /// Largest linear memory, in bytes, per memory of the instance.
    pub memory: u64,
    /// Wall-clock backstop for one `process` call.
    pub timeout: Duration,
}

impl Default for StageLimits {
    fn default() -> Self {
        StageLimits {
            fuel: DEFAULT_FUEL,
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Default fuel per call: about a tenth of a second of wasm on one core.
pub const DEFAULT_FUEL: u64 = 100_000_000;
/// Default memory limit per instance memory.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Default wall-clock timeout per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// `init`, instantiation and checkpoint calls run interpreters' start-up code
/// (JS and Python runtimes initialise for millions of instructions): they get
/// this many times the per-call fuel…
pub const SETUP_FUEL_FACTOR: u64 = 100;
/// …and this many times the per-call timeout.
pub const SETUP_TIMEOUT_FACTOR: u32 = 10;

/// What a call is, for its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A `process` call.
    Process,
    /// Instantiation, `init`, checkpoint export or import.
    Setup,
}

impl StageLimits {
    /// Fuel budget for a call of `kind`.
    pub fn fuel_for(&self, kind: CallKind) -> u64 {
        match kind {
            CallKind::Process => self.fuel,
            CallKind::Setup => self.fuel.saturating_mul(SETUP_FUEL_FACTOR),
        }
    }

    /// Timeout for a call of `kind`.
    pub fn timeout_for(&self, kind: CallKind) -> Duration {
        match kind {
            CallKind::Process => self.timeout,
            CallKind::Setup => self.timeout * SETUP_TIMEOUT_FACTOR,
        }
    }
}

/// Enforces the memory limit and remembers that it was hit, so that the
/// resulting trap is reported as [`CallError::MemoryLimit`].
#[derive(Debug)]
pub struct Limiter {
    memory: usize,
    /// Set when a growth was refused; cleared before every call.
    pub hit: bool,
}

/// Largest table a plugin may grow to; interpreters need tens of thousands.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    /// A limiter for `memory` bytes per linear memory.
    pub fn new(memory: u64) -> Self {
        Limiter {
            memory: usize::try_from(memory).unwrap_or(usize::MAX),
            hit: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.memory);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Turns what wasmtime reported into a typed [`CallError`].
pub fn classify(
    err: wasmtime::Error,
    limits: &StageLimits,
    kind: CallKind,
    memory_hit: bool,
    last_stderr: Option<String>,
) -> CallError {
    if memory_hit {
        return CallError::MemoryLimit {
            limit: limits.memory,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel {
            budget: limits.fuel_for(kind),
        },
        Some(Trap::Interrupt) => CallError::Deadline {
            timeout: limits.timeout_for(kind),
        },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        trap => {
            let mut message = match trap {
                Some(t) => t.to_string(),
                None => err.root_cause().to_string(),
            };
            if let Some(line) = last_stderr {
                message.push_str(&format!(" (plugin stderr: {line})"));
            }
            CallError::Trap { message }
        }
    }
}
