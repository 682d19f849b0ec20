//! `state`: keyed state the host keeps for a stage ([`KeyedState`]), bound
//! to both forms: here the component form's WIT interface
//! `weir:plugin/state` (1.1.0), in `state_core` the core-module form's
//! `weir.state_*` imports.
//!
//! `get-many` and `set-many` carry a batch's keys. Lifted by the bindings,
//! each key and each value would become a `Vec` of its own; the linker
//! holds versions of the two that read the lists where they sit, in the
//! plugin's memory ([`add_to_component_linker`]).

use super::super::component::{bindings, ComponentState};
use super::delta::KeyedDelta;
use super::keyed::{KeyedState, StateError};
use super::HostState;
use wasmtime::component::{Linker, WasmList};
use wasmtime::StoreContextMut;

/// Why state cannot be reached outside a `process` call.
const OUTSIDE_PROCESS: &str = "keyed state is reachable during process only";

/// Where an instance's keyed state stands.
#[derive(Debug)]
pub(crate) struct StateAccess {
    /// The state the next calls work on: the partition's, lent by the
    /// worker thread for its calls, or the instance's own.
    pub(crate) state: KeyedState,
    /// `None` while a `process` call runs.
    closed: Option<String>,
    /// Set for a stateless stage: state is never reachable.
    denied: Option<String>,
    /// The reason of the last refusal, for `weir.state_error`.
    pub(super) last_error: String,
    /// `set-many`'s entries, copied out of the plugin's memory: kept from
    /// call to call so a batch's writes cost no allocation.
    scratch: KeyedDelta,
}

impl Default for StateAccess {
    fn default() -> Self {
        StateAccess {
            state: KeyedState::default(),
            closed: Some(OUTSIDE_PROCESS.into()),
            denied: None,
            last_error: String::new(),
            scratch: KeyedDelta::new(),
        }
    }
}

impl StateAccess {
    /// A `process` call starts.
    pub(crate) fn open(&mut self) {
        self.closed = None;
    }

    /// The call ended: its writes apply when it succeeded.
    pub(crate) fn close(&mut self, succeeded: bool) {
        if succeeded {
            self.state.commit();
        } else {
            self.state.discard();
        }
        self.closed = Some(OUTSIDE_PROCESS.into());
    }

    /// State is never reachable, for `why`.
    pub(crate) fn deny(&mut self, why: String) {
        self.denied = Some(why);
    }

    /// The state, when it may be reached now.
    pub(super) fn reachable(&self) -> Result<&KeyedState, StateError> {
        match self.denied.as_ref().or(self.closed.as_ref()) {
            Some(why) => Err(StateError::Closed(why.clone())),
            None => Ok(&self.state),
        }
    }

    /// The state to write, when it may be reached now.
    pub(super) fn reach(&mut self) -> Result<&mut KeyedState, StateError> {
        self.reachable()?;
        Ok(&mut self.state)
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.reachable()?.get(key).map(<[u8]>::to_vec))
    }

    pub(super) fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.reach()?.put(key, value)
    }
}

impl HostState {
    /// Runs a state operation; a refusal is remembered for
    /// `weir.state_error` and logged at debug level.
    pub(super) fn state_op<R>(
        &mut self,
        op: impl FnOnce(&mut StateAccess) -> Result<R, StateError>,
    ) -> Result<R, String> {
        let result = op(&mut self.state);
        result.map_err(|e| self.refused(e))
    }

    /// Remembers and logs a refusal; its message for the plugin.
    pub(super) fn refused(&mut self, e: StateError) -> String {
        let message = e.to_string();
        tracing::debug!(pipeline = %self.tag.pipeline, stage = %self.tag.stage, "{message}");
        self.state.last_error.clone_from(&message);
        message
    }
}

/// The interface whose `get-many` and `set-many` the linker replaces.
const INTERFACE: &str = "weir:plugin/state@1.1.0";

type Entry = (WasmList<u8>, Option<WasmList<u8>>);

/// Defines `get-many` and `set-many` over the bindings' versions (added
/// first, by `Stage::add_to_linker`); the bindings' versions are the
/// reference these must agree with.
pub(crate) fn add_to_component_linker(l: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    l.allow_shadowing(true);
    let mut state = l.instance(INTERFACE)?;
    state.func_wrap(
        "get-many",
        |mut store: StoreContextMut<'_, ComponentState>, (keys,): (WasmList<WasmList<u8>>,)| {
            let keys: Vec<WasmList<u8>> = keys.iter(&mut store)?.collect::<Result<_, _>>()?;
            let found = {
                let access = &store.data().host.state;
                access.reachable().map(|state| {
                    let mut found = Vec::with_capacity(keys.len());
                    let keys = keys.iter().map(|k| k.as_le_slice(&store));
                    state.get_each(keys, |v| found.push(v.map(<[u8]>::to_vec)));
                    found
                })
            };
            Ok((found.map_err(|e| store.data_mut().host.refused(e)),))
        },
    )?;
    state.func_wrap(
        "set-many",
        |mut store: StoreContextMut<'_, ComponentState>, (entries,): (WasmList<Entry>,)| {
            let entries: Vec<Entry> = entries.iter(&mut store)?.collect::<Result<_, _>>()?;
            let mut writes = std::mem::take(&mut store.data_mut().host.state.scratch);
            for (key, value) in &entries {
                let value = value.as_ref().map(|v| v.as_le_slice(&store));
                writes.push(key.as_le_slice(&store), value);
            }
            let host = &mut store.data_mut().host;
            let r = host.state_op(|s| s.reach()?.put_many(writes.iter()));
            writes.clear();
            host.state.scratch = writes;
            Ok((r,))
        },
    )?;
    l.allow_shadowing(false);
    Ok(())
}

/// The bindings' versions, which the linker's replace for `get-many` and
/// `set-many`.
impl bindings::weir::plugin::state::Host for ComponentState {
    fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        self.host.state_op(|s| s.get(&key))
    }

    fn get_many(&mut self, keys: Vec<Vec<u8>>) -> Result<Vec<Option<Vec<u8>>>, String> {
        self.host.state_op(|s| {
            let mut found = Vec::with_capacity(keys.len());
            let keys = keys.iter().map(Vec::as_slice);
            s.reachable()?
                .get_each(keys, |v| found.push(v.map(<[u8]>::to_vec)));
            Ok(found)
        })
    }

    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.host.state_op(|s| s.put(&key, Some(&value)))
    }

    fn delete(&mut self, key: Vec<u8>) -> Result<(), String> {
        self.host.state_op(|s| s.put(&key, None))
    }

    fn set_many(&mut self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        let entries = entries.iter().map(|(k, v)| (&k[..], v.as_deref()));
        self.host.state_op(|s| s.reach()?.put_many(entries))
    }
}
