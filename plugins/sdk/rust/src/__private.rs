//! What `export_stage!` expands to calls into. Not part of the public API.

use crate::{Config, Stage};
use std::cell::RefCell;
use std::thread::LocalKey;

/// Where a plugin's one stage instance lives.
pub type Slot<S> = LocalKey<RefCell<Option<S>>>;

pub fn init<S: Stage>(slot: &'static Slot<S>, config: Vec<(String, String)>) -> Result<(), String> {
    let stage = S::init(&Config::new(config))?;
    slot.with(|s| *s.borrow_mut() = Some(stage));
    Ok(())
}

pub fn with_stage<S: Stage, R>(slot: &'static Slot<S>, f: impl FnOnce(&mut S) -> R) -> R {
    slot.with(|s| {
        let mut s = s.borrow_mut();
        let stage = s
            .as_mut()
            .expect("weir: the host called the stage before init succeeded");
        f(stage)
    })
}

pub fn checkpoint_export<S: Stage>(slot: &'static Slot<S>) -> Vec<u8> {
    with_stage(slot, |s| s.checkpoint_export())
}

pub fn checkpoint_import<S: Stage>(slot: &'static Slot<S>, state: &[u8]) -> Result<(), String> {
    with_stage(slot, |s| s.checkpoint_import(state))
}

#[cfg(target_env = "p2")]
pub mod component {
    use super::*;
    use crate::bindings::weir::plugin::types as wit;
    use crate::{Event, Header, Output};

    fn from_wit(e: wit::Event) -> Event {
        Event {
            key: e.key,
            value: e.value,
            headers: e
                .headers
                .into_iter()
                .map(|h| Header {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
            timestamp: e.timestamp,
            topic: e.topic,
        }
    }

    fn to_wit(e: Event) -> wit::Event {
        wit::Event {
            key: e.key,
            value: e.value,
            headers: e
                .headers
                .into_iter()
                .map(|h| wit::Header {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
            timestamp: e.timestamp,
            topic: e.topic,
        }
    }

    pub fn process<S: Stage>(slot: &'static Slot<S>, batch: Vec<wit::Event>) -> wit::Output {
        let batch = batch.into_iter().map(from_wit).collect();
        let Output { events, errors } = with_stage(slot, |s| s.process(batch));
        wit::Output {
            events: events.into_iter().map(to_wit).collect(),
            errors: errors
                .into_iter()
                .map(|e| wit::EventError {
                    index: e.index,
                    message: e.message,
                })
                .collect(),
        }
    }
}

/// The core-module form: CBOR in guest memory, results packed as
/// `ptr << 32 | len`. See `plugins/abi/CORE-MODULE.md`.
pub mod core {
    use super::*;
    use weir_abi::cbor;

    pub use weir_abi::ABI_VERSION;

    thread_local! {
        /// The buffer the last result lives in; the host copies it out before
        /// its next call, which may overwrite it.
        static RESULT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    fn pack(bytes: &[u8]) -> u64 {
        ((bytes.as_ptr() as u64) << 32) | bytes.len() as u64
    }

    fn keep(bytes: Vec<u8>) -> u64 {
        RESULT.with(|r| {
            let mut r = r.borrow_mut();
            *r = bytes;
            pack(&r)
        })
    }

    fn status(result: Result<(), String>) -> u64 {
        match result {
            Ok(()) => 0,
            Err(mut message) => {
                if message.is_empty() {
                    message.push_str("(no message)");
                }
                keep(message.into_bytes())
            }
        }
    }

    /// Hands the host a buffer of `len` bytes; the next call that receives
    /// it takes ownership and frees it.
    pub fn alloc(len: u32) -> u32 {
        let mut v = Vec::<u8>::with_capacity(len as usize);
        let ptr = v.as_mut_ptr();
        std::mem::forget(v);
        ptr as u32
    }

    /// # Safety
    /// `ptr`/`len` must come from `alloc` and hold `len` written bytes.
    unsafe fn take(ptr: u32, len: u32) -> Vec<u8> {
        unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) }
    }

    /// # Safety
    /// `ptr`/`len` must come from `alloc`.
    pub unsafe fn init<S: Stage>(slot: &'static Slot<S>, ptr: u32, len: u32) -> u64 {
        let buf = unsafe { take(ptr, len) };
        match cbor::decode_config(&buf) {
            Ok(pairs) => status(super::init(slot, pairs)),
            Err(e) => status(Err(format!("config is not a CBOR map of strings: {e}"))),
        }
    }

    /// # Safety
    /// `ptr`/`len` must come from `alloc`.
    pub unsafe fn process<S: Stage>(slot: &'static Slot<S>, ptr: u32, len: u32) -> u64 {
        let buf = unsafe { take(ptr, len) };
        let batch = cbor::decode_batch(&buf).expect("weir: the host sent a malformed batch");
        drop(buf);
        let out = with_stage(slot, |s| s.process(batch));
        let mut bytes = RESULT.with(|r| std::mem::take(&mut *r.borrow_mut()));
        bytes.clear();
        cbor::encode_output(&mut bytes, &out);
        keep(bytes)
    }

    pub fn checkpoint_export<S: Stage>(slot: &'static Slot<S>) -> u64 {
        keep(super::checkpoint_export(slot))
    }

    /// # Safety
    /// `ptr`/`len` must come from `alloc`.
    pub unsafe fn checkpoint_import<S: Stage>(slot: &'static Slot<S>, ptr: u32, len: u32) -> u64 {
        let buf = unsafe { take(ptr, len) };
        status(super::checkpoint_import(slot, &buf))
    }
}
