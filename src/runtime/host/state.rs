//! `state`: keyed state the host keeps for a stage ([`KeyedState`]), bound
//! to both forms. Component form: the WIT interface `weir:plugin/state`
//! (1.1.0). Core-module form: the `weir.state_*` imports of
//! `plugins/abi/CORE-MODULE.md`, whose buffers sit in the module's memory:
//!
//! - `state_get(key_ptr, key_len, out_ptr, out_cap) -> i64`: the value's
//!   length (copied to `out` when it fits), -1 when there is none;
//! - `state_set(key_ptr, key_len, value_ptr, value_len) -> i32` and
//!   `state_delete(key_ptr, key_len) -> i32`: 0;
//! - `state_get_many(keys_ptr, keys_len, out_ptr, out_cap) -> i64`: keys
//!   as `u32 LE length, bytes` one after another; the answer, in the same
//!   order, as `u32 LE length, bytes` or `0xFFFF_FFFF` for none; returns
//!   the answer's length (written only when it fits);
//! - `state_set_many(entries_ptr, entries_len) -> i32`: entries as `u32 LE
//!   key length, key, u32 LE value length or 0xFFFF_FFFF (delete), value`;
//! - every one returns -2 when refused; `state_error(out_ptr, out_cap) ->
//!   i32` then copies the reason (as much as fits) and returns its length.

use super::super::component::{bindings, ComponentState};
use super::super::core_module::ModuleState;
use super::keyed::{KeyedState, StateError};
use super::HostState;
use wasmtime::{Caller, Linker};

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
    last_error: String,
}

impl Default for StateAccess {
    fn default() -> Self {
        StateAccess {
            state: KeyedState::default(),
            closed: Some(OUTSIDE_PROCESS.into()),
            denied: None,
            last_error: String::new(),
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

    fn reach(&mut self) -> Result<&mut KeyedState, StateError> {
        if let Some(why) = self.denied.as_ref().or(self.closed.as_ref()) {
            return Err(StateError::Closed(why.clone()));
        }
        Ok(&mut self.state)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.reach()?.get(key).map(<[u8]>::to_vec))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        self.reach()?.put(key, value)
    }
}

impl HostState {
    /// Runs a state operation; a refusal is remembered for
    /// `weir.state_error` and logged at debug level.
    fn state_op<R>(
        &mut self,
        op: impl FnOnce(&mut StateAccess) -> Result<R, StateError>,
    ) -> Result<R, String> {
        op(&mut self.state).map_err(|e| {
            let message = e.to_string();
            tracing::debug!(pipeline = %self.tag.pipeline, stage = %self.tag.stage, "{message}");
            self.state.last_error.clone_from(&message);
            message
        })
    }
}

type Entry = (Vec<u8>, Option<Vec<u8>>);

impl bindings::weir::plugin::state::Host for ComponentState {
    fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        self.host.state_op(|s| s.get(&key))
    }

    fn get_many(&mut self, keys: Vec<Vec<u8>>) -> Result<Vec<Option<Vec<u8>>>, String> {
        self.host
            .state_op(|s| keys.iter().map(|k| s.get(k)).collect())
    }

    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.host.state_op(|s| s.put(&key, Some(&value)))
    }

    fn delete(&mut self, key: Vec<u8>) -> Result<(), String> {
        self.host.state_op(|s| s.put(&key, None))
    }

    fn set_many(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        self.host.state_op(|s| s.reach()?.put_many(entries))
    }
}

/// What a core module's call returns when refused.
const REFUSED: i64 = -2;
/// Length that stands for "no value" in the core-module buffers.
const NONE: u32 = u32::MAX;

/// What a core module's write returns: 0, or [`REFUSED`].
fn status(r: Result<(), String>) -> i32 {
    if r.is_ok() {
        0
    } else {
        REFUSED as i32
    }
}

/// The module's memory as bytes, or a trap.
fn memory<'a>(
    caller: &'a mut Caller<'_, ModuleState>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut ModuleState)> {
    let mem = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("weir.state_*: the module exports no memory"))?;
    Ok(mem.data_and_store_mut(caller))
}

/// `len` bytes at `ptr`, or a trap when they are out of bounds.
fn range(data: &[u8], ptr: i32, len: i32) -> wasmtime::Result<std::ops::Range<usize>> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let end = ptr.saturating_add(len);
    if end > data.len() {
        wasmtime::bail!("weir.state_*: a buffer of {len} bytes at {ptr} is out of bounds");
    }
    Ok(ptr..end)
}

/// Reads `u32 LE length, bytes` items (`NONE` for none, when allowed).
fn items(mut buf: &[u8], pairs: bool) -> Result<Vec<Entry>, StateError> {
    let bad = || StateError::Malformed("the buffer ends inside an item".into());
    let take = |buf: &mut &[u8], none_allowed: bool| -> Result<Option<Vec<u8>>, StateError> {
        let len = u32::from_le_bytes(buf.get(..4).ok_or_else(bad)?.try_into().expect("4 bytes"));
        *buf = &buf[4..];
        if len == NONE && none_allowed {
            return Ok(None);
        }
        let bytes = buf.get(..len as usize).ok_or_else(bad)?.to_vec();
        *buf = &buf[len as usize..];
        Ok(Some(bytes))
    };
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = take(&mut buf, false)?.ok_or_else(bad)?;
        let value = if pairs { take(&mut buf, true)? } else { None };
        out.push((key, value));
    }
    Ok(out)
}

/// Adds the `weir.state_*` functions to the core modules' linker.
pub(crate) fn add_to_core_linker(l: &mut Linker<ModuleState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "weir",
        "state_get",
        |mut caller: Caller<'_, ModuleState>,
         kp: i32,
         kl: i32,
         op: i32,
         oc: i32|
         -> wasmtime::Result<i64> {
            let (data, st) = memory(&mut caller)?;
            let key = data[range(data, kp, kl)?].to_vec();
            let out = range(data, op, oc)?;
            Ok(match st.host.state_op(|s| s.get(&key)) {
                Err(_) => REFUSED,
                Ok(None) => -1,
                Ok(Some(v)) => {
                    if v.len() <= out.len() {
                        data[out.start..out.start + v.len()].copy_from_slice(&v);
                    }
                    v.len() as i64
                }
            })
        },
    )?;
    l.func_wrap(
        "weir",
        "state_set",
        |mut caller: Caller<'_, ModuleState>,
         kp: i32,
         kl: i32,
         vp: i32,
         vl: i32|
         -> wasmtime::Result<i32> {
            let (data, st) = memory(&mut caller)?;
            let (key, value) = (&data[range(data, kp, kl)?], &data[range(data, vp, vl)?]);
            Ok(status(st.host.state_op(|s| s.put(key, Some(value)))))
        },
    )?;
    l.func_wrap(
        "weir",
        "state_delete",
        |mut caller: Caller<'_, ModuleState>, kp: i32, kl: i32| -> wasmtime::Result<i32> {
            let (data, st) = memory(&mut caller)?;
            let key = &data[range(data, kp, kl)?];
            Ok(status(st.host.state_op(|s| s.put(key, None))))
        },
    )?;
    l.func_wrap(
        "weir",
        "state_get_many",
        |mut caller: Caller<'_, ModuleState>,
         kp: i32,
         kl: i32,
         op: i32,
         oc: i32|
         -> wasmtime::Result<i64> {
            let (data, st) = memory(&mut caller)?;
            let keys = &data[range(data, kp, kl)?];
            let answer = st.host.state_op(|s| {
                let mut answer = Vec::new();
                for (key, _) in items(keys, false)? {
                    match s.get(&key)? {
                        Some(v) => {
                            answer.extend_from_slice(&(v.len() as u32).to_le_bytes());
                            answer.extend_from_slice(&v);
                        }
                        None => answer.extend_from_slice(&NONE.to_le_bytes()),
                    }
                }
                Ok(answer)
            });
            let Ok(answer) = answer else {
                return Ok(REFUSED);
            };
            let out = range(data, op, oc)?;
            if answer.len() <= out.len() {
                data[out.start..out.start + answer.len()].copy_from_slice(&answer);
            }
            Ok(answer.len() as i64)
        },
    )?;
    l.func_wrap(
        "weir",
        "state_set_many",
        |mut caller: Caller<'_, ModuleState>, ep: i32, el: i32| -> wasmtime::Result<i32> {
            let (data, st) = memory(&mut caller)?;
            let entries = &data[range(data, ep, el)?];
            let r = st
                .host
                .state_op(|s| s.reach()?.put_many(items(entries, true)?));
            Ok(status(r))
        },
    )?;
    l.func_wrap(
        "weir",
        "state_error",
        |mut caller: Caller<'_, ModuleState>, op: i32, oc: i32| -> wasmtime::Result<i32> {
            let (data, st) = memory(&mut caller)?;
            let message = st.host.state.last_error.as_bytes();
            let out = range(data, op, oc)?;
            let n = message.len().min(out.len());
            data[out.start..out.start + n].copy_from_slice(&message[..n]);
            Ok(message.len() as i32)
        },
    )?;
    Ok(())
}

/// The `weir.state_*` imports a core module may have.
pub(crate) const CORE_IMPORTS: &[&str] = &[
    "state_get",
    "state_set",
    "state_delete",
    "state_get_many",
    "state_set_many",
    "state_error",
];
