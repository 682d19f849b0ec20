//! The core-module form of `state` (the component form is in `state`):
//! the `weir.state_*` imports of `plugins/abi/CORE-MODULE.md`, whose
//! buffers sit in the module's memory:
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

use super::super::core_module::ModuleState;
use super::keyed::StateError;
use wasmtime::{Caller, Linker};

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

/// A key and its value (`None`: a delete), where they sit in the buffer.
type Entry<'a> = (&'a [u8], Option<&'a [u8]>);

/// Reads `u32 LE length, bytes` items (`NONE` for none, when allowed).
fn items(mut buf: &[u8], pairs: bool) -> Result<Vec<Entry<'_>>, StateError> {
    fn take<'a>(buf: &mut &'a [u8], none_allowed: bool) -> Result<Option<&'a [u8]>, StateError> {
        let bad = || StateError::Malformed("the buffer ends inside an item".into());
        let len = u32::from_le_bytes(buf.get(..4).ok_or_else(bad)?.try_into().expect("4 bytes"));
        *buf = &buf[4..];
        if len == NONE && none_allowed {
            return Ok(None);
        }
        let bytes = buf.get(..len as usize).ok_or_else(bad)?;
        *buf = &buf[len as usize..];
        Ok(Some(bytes))
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = take(&mut buf, false)?.expect("a key is never none");
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
            let (key, out) = (range(data, kp, kl)?, range(data, op, oc)?);
            let found = st.host.state_op(|s| {
                Ok(match s.reachable()?.get(&data[key]) {
                    None => -1,
                    Some(v) => {
                        if v.len() <= out.len() {
                            data[out.start..out.start + v.len()].copy_from_slice(v);
                        }
                        v.len() as i64
                    }
                })
            });
            Ok(found.unwrap_or(REFUSED))
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
                let (state, keys) = (s.reachable()?, items(keys, false)?);
                let mut answer = Vec::new();
                state.get_each(keys.iter().map(|&(key, _)| key), |v| match v {
                    Some(v) => {
                        answer.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        answer.extend_from_slice(v);
                    }
                    None => answer.extend_from_slice(&NONE.to_le_bytes()),
                });
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
