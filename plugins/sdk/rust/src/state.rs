//! Keyed state the host keeps for the stage: values under keys, scoped to
//! the stage and to the partition the instance serves.
//!
//! The host holds the state beside the worker thread, persists only what
//! changed, and hands it to every new instance and version of the stage:
//! the plugin needs no checkpoint functions for it, and what a batch costs
//! depends on the keys it changes, not on how many the state holds. It is
//! reachable while [`Stage::process`](crate::Stage::process) runs, in a
//! stage that is not `stateless`. The writes of a batch take effect when
//! `process` returns; a batch that traps leaves no trace in the state.
//!
//! [`load`] and [`store`] read and write typed values ([`Value`]); [`get`],
//! [`set`] and [`delete`] work on bytes; the `_many` forms do a whole batch
//! in one host call.
//!
//! ```ignore
//! let seen: u64 = weir_plugin::state::load(key)?.unwrap_or(0);
//! weir_plugin::state::store(key, &(seen + 1))?;
//! ```
//!
//! Keys are at most 4 KiB and values at most 1 MiB; a partition's state at
//! most the stage's `state_max_bytes`. A write past a limit returns a
//! [`StateError`] that says which.
//!
//! Outside wasm (a plugin's own unit tests) the state is a map in the
//! test's thread.

/// Why a state operation failed: the host's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

impl From<StateError> for String {
    fn from(e: StateError) -> String {
        e.0
    }
}

/// The value under `key`.
///
/// # Errors
/// When state cannot be reached (outside `process`, a stateless stage).
pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
    imp::get(key)
}

/// The values under `keys`, in their order, in one host call.
///
/// # Errors
/// As [`get`].
pub fn get_many(keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
    imp::get_many(keys)
}

/// Sets `key` to `value`.
///
/// # Errors
/// When the key, the value or the partition's state would be too large, or
/// state cannot be reached.
pub fn set(key: &[u8], value: &[u8]) -> Result<(), StateError> {
    imp::set(key, value)
}

/// Removes `key`.
///
/// # Errors
/// When state cannot be reached.
pub fn delete(key: &[u8]) -> Result<(), StateError> {
    imp::delete(key)
}

/// Several writes in one host call, in order: `Some` sets its key, `None`
/// removes it. All or nothing.
///
/// # Errors
/// As [`set`], for the first write that fails; then none applies.
pub fn set_many(entries: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
    imp::set_many(entries)
}

/// A value kept in state, as bytes.
pub trait Value: Sized {
    /// Its bytes.
    fn to_bytes(&self) -> Vec<u8>;
    /// Appends its bytes to `out` (what [`store_many`] uses, so a batch's
    /// values share one buffer).
    fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    /// Back from bytes.
    ///
    /// # Errors
    /// When `bytes` do not hold such a value.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StateError>;
}

macro_rules! le_value {
    ($($t:ty),*) => {$(
        /// Little-endian, fixed width.
        impl Value for $t {
            fn to_bytes(&self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
            fn write_bytes(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
                bytes.try_into().map(<$t>::from_le_bytes).map_err(|_| {
                    StateError(format!(
                        "state: {} bytes do not hold a {}",
                        bytes.len(),
                        stringify!($t)
                    ))
                })
            }
        }
    )*};
}

le_value!(u32, u64, i32, i64, f64);

/// UTF-8.
impl Value for String {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| StateError(format!("state: {e}")))
    }
}

/// As they are.
impl Value for Vec<u8> {
    fn to_bytes(&self) -> Vec<u8> {
        self.clone()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        Ok(bytes.to_vec())
    }
}

/// The value under `key`, decoded.
///
/// # Errors
/// As [`get`], or when the bytes do not decode.
pub fn load<T: Value>(key: &[u8]) -> Result<Option<T>, StateError> {
    get(key)?.map(|b| T::from_bytes(&b)).transpose()
}

/// The values under `keys`, decoded, in one host call.
///
/// # Errors
/// As [`load`].
pub fn load_many<T: Value>(keys: &[&[u8]]) -> Result<Vec<Option<T>>, StateError> {
    get_many(keys)?
        .into_iter()
        .map(|v| v.map(|b| T::from_bytes(&b)).transpose())
        .collect()
}

/// Stores `value` under `key`.
///
/// # Errors
/// As [`set`].
pub fn store<T: Value>(key: &[u8], value: &T) -> Result<(), StateError> {
    set(key, &value.to_bytes())
}

/// Stores every `(key, value)` in one host call, all or nothing.
///
/// # Errors
/// As [`set_many`].
pub fn store_many<T: Value>(entries: &[(&[u8], T)]) -> Result<(), StateError> {
    let mut bytes = Vec::new();
    let ends: Vec<usize> = entries
        .iter()
        .map(|(_, v)| {
            v.write_bytes(&mut bytes);
            bytes.len()
        })
        .collect();
    let starts = std::iter::once(0).chain(ends.iter().copied());
    let writes: Vec<(&[u8], Option<&[u8]>)> = entries
        .iter()
        .zip(starts.zip(&ends))
        .map(|((k, _), (start, &end))| (*k, Some(&bytes[start..end])))
        .collect();
    set_many(&writes)
}

#[cfg(target_env = "p2")]
mod imp {
    use super::StateError;
    use crate::bindings::weir::plugin::state;
    use crate::small_alloc::Lowering;

    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let _results = Lowering::host_call();
        state::get(key).map_err(StateError)
    }

    pub fn get_many(keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        let _results = Lowering::host_call();
        state::get_many(keys).map_err(StateError)
    }

    pub fn set(key: &[u8], value: &[u8]) -> Result<(), StateError> {
        let _results = Lowering::host_call();
        state::set(key, value).map_err(StateError)
    }

    pub fn delete(key: &[u8]) -> Result<(), StateError> {
        let _results = Lowering::host_call();
        state::delete(key).map_err(StateError)
    }

    pub fn set_many(entries: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        let _results = Lowering::host_call();
        state::set_many(entries).map_err(StateError)
    }
}

#[cfg(all(target_family = "wasm", not(target_env = "p2")))]
mod imp {
    //! The `weir.state_*` imports of the core-module ABI
    //! (`plugins/abi/CORE-MODULE.md`).
    use super::StateError;

    #[link(wasm_import_module = "weir")]
    unsafe extern "C" {
        fn state_get(kp: *const u8, kl: usize, op: *mut u8, oc: usize) -> i64;
        fn state_get_many(kp: *const u8, kl: usize, op: *mut u8, oc: usize) -> i64;
        fn state_set(kp: *const u8, kl: usize, vp: *const u8, vl: usize) -> i32;
        fn state_delete(kp: *const u8, kl: usize) -> i32;
        fn state_set_many(ep: *const u8, el: usize) -> i32;
        fn state_error(op: *mut u8, oc: usize) -> i32;
    }

    /// Stands for "no value" in the buffers.
    const NONE: u32 = u32::MAX;
    /// What a refused call returns.
    const REFUSED: i64 = -2;

    /// The host's reason for the last refusal.
    fn refused() -> StateError {
        let mut buf = vec![0u8; 256];
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { state_error(buf.as_mut_ptr(), buf.len()) } as usize;
        if n > buf.len() {
            buf.resize(n, 0);
            // SAFETY: as above, with the buffer the reason needs.
            unsafe { state_error(buf.as_mut_ptr(), buf.len()) };
        }
        buf.truncate(n);
        StateError(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Calls `f` with an output buffer until the answer fits; `None` for
    /// -1 (no value).
    fn answer(f: impl Fn(*mut u8, usize) -> i64) -> Result<Option<Vec<u8>>, StateError> {
        let mut buf = Vec::with_capacity(64);
        loop {
            let n = f(buf.as_mut_ptr(), buf.capacity());
            if n == -1 {
                return Ok(None);
            }
            if n < 0 {
                return Err(refused());
            }
            let n = n as usize;
            if n <= buf.capacity() {
                // SAFETY: the host wrote `n` bytes.
                unsafe { buf.set_len(n) };
                return Ok(Some(buf));
            }
            buf.reserve(n);
        }
    }

    fn push(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => {
                buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
                buf.extend_from_slice(b);
            }
            None => buf.extend_from_slice(&NONE.to_le_bytes()),
        }
    }

    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        // SAFETY: the host reads the key and writes at most `oc` bytes.
        answer(|op, oc| unsafe { state_get(key.as_ptr(), key.len(), op, oc) })
    }

    pub fn get_many(keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        let mut request = Vec::new();
        for k in keys {
            push(&mut request, Some(k));
        }
        // SAFETY: as in `get`.
        let answer =
            answer(|op, oc| unsafe { state_get_many(request.as_ptr(), request.len(), op, oc) })?
                .unwrap_or_default();
        let mut rest = answer.as_slice();
        let mut out = Vec::with_capacity(keys.len());
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
            rest = &rest[4..];
            if len == NONE {
                out.push(None);
            } else {
                let (v, r) = rest.split_at((len as usize).min(rest.len()));
                out.push(Some(v.to_vec()));
                rest = r;
            }
        }
        Ok(out)
    }

    fn status(r: i32) -> Result<(), StateError> {
        if i64::from(r) == REFUSED {
            Err(refused())
        } else {
            Ok(())
        }
    }

    pub fn set(key: &[u8], value: &[u8]) -> Result<(), StateError> {
        // SAFETY: the host only reads the two buffers during the call.
        status(unsafe { state_set(key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
    }

    pub fn delete(key: &[u8]) -> Result<(), StateError> {
        // SAFETY: as in `set`.
        status(unsafe { state_delete(key.as_ptr(), key.len()) })
    }

    pub fn set_many(entries: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        let mut buf = Vec::new();
        for (k, v) in entries {
            push(&mut buf, Some(k));
            push(&mut buf, *v);
        }
        // SAFETY: as in `set`.
        status(unsafe { state_set_many(buf.as_ptr(), buf.len()) })
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    //! Outside wasm: a map in the test's thread.
    use super::StateError;
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static STATE: RefCell<HashMap<Vec<u8>, Vec<u8>>> = RefCell::new(HashMap::new());
    }

    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(STATE.with(|s| s.borrow().get(key).cloned()))
    }

    pub fn get_many(keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        keys.iter().map(|k| get(k)).collect()
    }

    pub fn set(key: &[u8], value: &[u8]) -> Result<(), StateError> {
        STATE.with(|s| s.borrow_mut().insert(key.to_vec(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &[u8]) -> Result<(), StateError> {
        STATE.with(|s| s.borrow_mut().remove(key));
        Ok(())
    }

    pub fn set_many(entries: &[(&[u8], Option<&[u8]>)]) -> Result<(), StateError> {
        for (k, v) in entries {
            match v {
                Some(v) => set(k, v)?,
                None => delete(k)?,
            }
        }
        Ok(())
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_typed_values_reads_back_as_stored() {
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        store_many(&[(keys[0], 1u64), (keys[1], u64::MAX)]).unwrap();
        store_many(&[(keys[2], "three".to_string())]).unwrap();
        assert_eq!(
            load_many::<u64>(&keys[..2]).unwrap(),
            vec![Some(1), Some(u64::MAX)]
        );
        assert_eq!(load::<String>(keys[2]).unwrap().as_deref(), Some("three"));
        assert!(load::<u64>(keys[2]).is_err(), "five bytes are not a u64");
        delete(keys[0]).unwrap();
        assert_eq!(
            load_many::<u64>(&[b"a", b"none"]).unwrap(),
            vec![None, None]
        );
    }
}
