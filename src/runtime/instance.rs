//! The instance tier: one plugin instance in its own `Store`, owned by one
//! worker thread. Every call gets fresh limits; every failure is typed.

use super::component::{ComponentInstance, ComponentState};
use super::core_module::{ModuleInstance, ModuleState};
use super::engine::{Runtime, EPOCH_TICK};
use super::error::CallError;
use super::grants::{sandbox, Grants, Stdio};
use super::host::{HostState, KeyedState};
use super::limits::{classify, CallKind, Limiter, StageLimits};
use super::plugin::{CompiledPlugin, Prepared};
use super::plugin_log::LogTag;
use std::sync::Arc;
use wasmtime::Store;
use weir_abi::{Event, Output};

/// Everything an instance is created with besides the plugin.
#[derive(Debug, Clone, Default)]
pub struct InstanceSettings {
    /// Limits applied to every call.
    pub limits: StageLimits,
    /// Capabilities beyond the sandbox.
    pub grants: Grants,
    /// The stage's `config` table, handed to `init`.
    pub config: Vec<(String, String)>,
    /// Which pipeline and stage, for log lines.
    pub tag: Arc<LogTag>,
}

enum Inner {
    Component(ComponentInstance),
    Module(Box<ModuleInstance>),
}

/// A live, initialised plugin instance.
pub struct StageInstance {
    inner: Inner,
    limits: StageLimits,
    last_fuel: u64,
}

/// Access to what every store's data holds, whatever the form.
trait Limited {
    fn limiter(&mut self) -> &mut Limiter;
}

impl Limited for ComponentState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
}

impl Limited for ModuleState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
}

/// Resets fuel, deadline and the memory flag before a call; returns the
/// fuel budget.
fn arm<T: Limited>(store: &mut Store<T>, limits: &StageLimits, kind: CallKind) -> u64 {
    let budget = limits.fuel_for(kind);
    let ticks = limits.timeout_for(kind).as_nanos() / EPOCH_TICK.as_nanos() + 1;
    // Neither can fail with fuel and epoch interruption enabled.
    let _ = store.set_fuel(budget);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.data_mut().limiter().hit = false;
    budget
}

/// After a call: the fuel it used and its result, with wasmtime's error
/// classified into a [`CallError`].
fn settle<T: Limited, R>(
    store: &mut Store<T>,
    stdio: &Stdio,
    limits: &StageLimits,
    kind: CallKind,
    budget: u64,
    result: wasmtime::Result<Result<R, CallError>>,
) -> (Result<R, CallError>, u64) {
    let used = budget.saturating_sub(store.get_fuel().unwrap_or(0));
    let result = match result {
        Ok(r) => {
            stdio.stderr.forget();
            r
        }
        Err(err) => Err(failure(store, stdio, limits, kind, err)),
    };
    (result, used)
}

/// Classifies what wasmtime reported for a failed call.
fn failure<T: Limited>(
    store: &mut Store<T>,
    stdio: &Stdio,
    limits: &StageLimits,
    kind: CallKind,
    err: wasmtime::Error,
) -> CallError {
    let hit = store.data_mut().limiter().hit;
    classify(err, limits, kind, hit, stdio.stderr.take_recent())
}

impl StageInstance {
    /// Instantiates `plugin` in a fresh sandbox and calls its `init`.
    ///
    /// # Errors
    /// A [`CallError`]: instantiation failed, a limit was hit during
    /// start-up, or `init` refused.
    pub fn new(
        runtime: &Runtime,
        plugin: &CompiledPlugin,
        settings: &InstanceSettings,
    ) -> Result<Self, CallError> {
        let limits = settings.limits;
        let instantiate_err = |e: std::io::Error| CallError::Instantiate {
            message: e.to_string(),
        };
        let (mut wasi, stdio) =
            sandbox(&settings.grants, &settings.tag).map_err(instantiate_err)?;
        let limiter = Limiter::new(limits.memory);
        let tag = settings.tag.clone();
        let setup = CallKind::Setup;
        let inner = match &plugin.prepared {
            Prepared::Component(pre) => {
                let host = HostState::new(tag, stdio.stderr.clone());
                let state = ComponentState::new(wasi.build(), limiter, host);
                let mut store = Store::new(&runtime.engine, state);
                store.limiter(|s| &mut s.limiter);
                arm(&mut store, &limits, setup);
                match ComponentInstance::instantiate(pre, store, stdio.clone()) {
                    Ok(i) => Inner::Component(i),
                    Err((mut store, e)) => {
                        return Err(failure(&mut store, &stdio, &limits, setup, e))
                    }
                }
            }
            Prepared::Module(pre) => {
                let host = HostState::new(tag, stdio.stderr.clone());
                let state = ModuleState::new(wasi.build_p1(), limiter, host);
                let mut store = Store::new(&runtime.engine, state);
                store.limiter(|s| &mut s.limiter);
                arm(&mut store, &limits, setup);
                match ModuleInstance::instantiate(pre, store, stdio.clone()) {
                    Ok(Ok(i)) => Inner::Module(Box::new(i)),
                    Ok(Err(e)) => return Err(e),
                    Err((mut store, e)) => {
                        return Err(failure(&mut store, &stdio, &limits, setup, e))
                    }
                }
            }
        };
        let mut this = StageInstance {
            inner,
            limits,
            last_fuel: 0,
        };
        let config = settings.config.clone();
        this.call(CallKind::Setup, move |inner| match inner {
            Inner::Component(c) => c.init(&config).map(|r| {
                r.map_err(|message| CallError::Refused {
                    operation: "init",
                    message,
                })
            }),
            Inner::Module(m) => m.init(&config),
        })?;
        Ok(this)
    }

    fn call<R>(
        &mut self,
        kind: CallKind,
        f: impl FnOnce(&mut Inner) -> wasmtime::Result<Result<R, CallError>>,
    ) -> Result<R, CallError> {
        let limits = self.limits;
        let budget = match &mut self.inner {
            Inner::Component(c) => arm(&mut c.store, &limits, kind),
            Inner::Module(m) => arm(&mut m.store, &limits, kind),
        };
        let raw = f(&mut self.inner);
        let (result, used) = match &mut self.inner {
            Inner::Component(c) => settle(&mut c.store, &c.stdio, &limits, kind, budget, raw),
            Inner::Module(m) => settle(&mut m.store, &m.stdio, &limits, kind, budget, raw),
        };
        self.last_fuel = used;
        result
    }

    /// Runs one batch through the stage. `batch` is lent, not consumed: it
    /// holds the same events afterwards, so that failed ones can be
    /// dead-lettered or retried without a copy.
    ///
    /// # Errors
    /// A [`CallError`]; after any error but [`CallError::Refused`] the
    /// instance must be replaced.
    ///
    /// The keyed state the instance holds (see [`StageInstance::swap_state`])
    /// is reachable during the call; its writes apply when the call
    /// succeeds and are dropped when it fails.
    pub fn process(&mut self, batch: &mut Vec<Event>) -> Result<Output, CallError> {
        self.host().state.open();
        let r = self.call(CallKind::Process(batch.len()), |inner| match inner {
            Inner::Component(c) => c.process(batch),
            Inner::Module(m) => m.process(batch),
        });
        self.host().state.close(r.is_ok());
        r
    }

    fn host(&mut self) -> &mut HostState {
        match &mut self.inner {
            Inner::Component(c) => &mut c.store.data_mut().host,
            Inner::Module(m) => &mut m.store.data_mut().host,
        }
    }

    /// Exchanges the keyed state the instance works on with `state`: a
    /// worker thread lends an instance its partition's state for its calls
    /// and takes it back after. An instance starts with an empty state of
    /// its own, which `weir test` and the smoke checks use.
    pub fn swap_state(&mut self, state: &mut KeyedState) {
        let limit = self.limits.state_max_bytes;
        let own = &mut self.host().state.state;
        std::mem::swap(own, state);
        own.set_max_bytes(limit);
    }

    /// Makes keyed state unreachable for this instance, for `why` (its
    /// stage is stateless: one instance serves every partition).
    pub fn deny_state(&mut self, why: impl Into<String>) {
        self.host().state.deny(why.into());
    }

    /// The plugin's state.
    ///
    /// # Errors
    /// A [`CallError`] when the export traps or returns garbage.
    pub fn checkpoint_export(&mut self) -> Result<Vec<u8>, CallError> {
        self.call(CallKind::Setup, |inner| match inner {
            Inner::Component(c) => c.checkpoint_export().map(Ok),
            Inner::Module(m) => m.checkpoint_export(),
        })
    }

    /// Restores state exported earlier.
    ///
    /// # Errors
    /// [`CallError::Refused`] when the plugin rejects the state, or a trap.
    pub fn checkpoint_import(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.call(CallKind::Setup, |inner| match inner {
            Inner::Component(c) => c.checkpoint_import(state).map(|r| {
                r.map_err(|message| CallError::Refused {
                    operation: "checkpoint-import",
                    message,
                })
            }),
            Inner::Module(m) => m.checkpoint_import(state),
        })
    }

    /// Fuel used by the last call.
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// The bytes of linear memory the instance holds, all its memories
    /// together. Linear memory never shrinks: this is the most the
    /// instance needed at once so far.
    pub fn memory(&mut self) -> u64 {
        let held = match &mut self.inner {
            Inner::Component(c) => c.store.data_mut().limiter().held,
            Inner::Module(m) => m.store.data_mut().limiter().held,
        };
        held as u64
    }
}
