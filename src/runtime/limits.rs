//! Per-call limits: fuel, memory and a wall-clock deadline.

use super::error::CallError;
use std::time::Duration;
use wasmtime::{ResourceLimiter, Trap};

/// The limits of one stage, reset before every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    /// Fuel per event (roughly one unit per wasm instruction): a `process`
    /// call of `n` events gets `(n + CALL_FUEL_EVENTS) ×` this.
    pub fuel_per_event: u64,
    /// Largest linear memory, in bytes, per memory of the instance.
    pub memory: u64,
    /// Wall-clock backstop for one `process` call.
    pub timeout: Duration,
    /// The most bytes of keys and values one partition's keyed state may
    /// hold.
    pub state_max_bytes: u64,
}

impl Default for StageLimits {
    fn default() -> Self {
        StageLimits {
            fuel_per_event: DEFAULT_FUEL_PER_EVENT,
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            state_max_bytes: super::host::DEFAULT_STATE_MAX_BYTES,
        }
    }
}

/// Default fuel per event: room for an interpreted stage (Python, JS) to
/// parse and rewrite a JSON event many times over (BENCHMARKS.md has what
/// each example needs). A batch of 512 gets 5.12 billion, which an endless
/// loop burns in seconds: the timeout usually stops it first.
pub const DEFAULT_FUEL_PER_EVENT: u64 = 10_000_000;
/// Default memory limit per instance memory.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Default wall-clock timeout per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Every `process` call gets this many events' worth of fuel on top of its
/// events, for what a call costs whatever its size (an interpreter's first
/// call on a fresh instance warms up its code).
pub const CALL_FUEL_EVENTS: u64 = 16;

/// `init`, instantiation and checkpoint calls run interpreters' start-up code
/// (JS and Python runtimes initialise for millions of instructions): they get
/// the fuel of a call of this many events…
pub const SETUP_FUEL_EVENTS: u64 = 1000;
/// …and this many times the per-call timeout.
pub const SETUP_TIMEOUT_FACTOR: u32 = 10;

/// What a call is, for its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A `process` call of this many events.
    Process(usize),
    /// Instantiation, `init`, checkpoint export or import.
    Setup,
}

impl StageLimits {
    /// Fuel budget for a call of `kind`.
    pub fn fuel_for(&self, kind: CallKind) -> u64 {
        let events = match kind {
            CallKind::Process(n) => (n as u64).saturating_add(CALL_FUEL_EVENTS),
            CallKind::Setup => SETUP_FUEL_EVENTS,
        };
        self.fuel_per_event.saturating_mul(events)
    }

    /// Timeout for a call of `kind`.
    pub fn timeout_for(&self, kind: CallKind) -> Duration {
        match kind {
            CallKind::Process(_) => self.timeout,
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
    /// The bytes of linear memory the instance holds, all its memories
    /// together (linear memory never shrinks).
    pub held: usize,
}

/// Largest table a plugin may grow to; interpreters need tens of thousands.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    /// A limiter for `memory` bytes per linear memory.
    pub fn new(memory: u64) -> Self {
        Limiter {
            memory: usize::try_from(memory).unwrap_or(usize::MAX),
            hit: false,
            held: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.memory);
        }
        self.held += desired.saturating_sub(current);
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
            events: match kind {
                CallKind::Process(n) => Some(n),
                CallKind::Setup => None,
            },
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
