//! Write a weir stage in Rust.
//!
//! Implement [`Stage`] for a type and name it in [`export_stage!`]. Built for
//! `wasm32-wasip2` the crate becomes a component of the world
//! `weir:plugin/stage@1.1.0`; built for `wasm32-wasip1` it becomes a core
//! module of the weir core-module ABI. The same code gives the same results
//! in both forms.
//!
//! ```ignore
//! use weir_plugin::{Config, Event, Output, Stage};
//!
//! struct Upper;
//!
//! impl Stage for Upper {
//!     fn init(_config: &Config) -> Result<Self, String> {
//!         Ok(Upper)
//!     }
//!     fn process(&mut self, batch: Vec<Event>) -> Output {
//!         let events = batch
//!             .into_iter()
//!             .map(|mut e| { e.value.make_ascii_uppercase(); e })
//!             .collect();
//!         Output { events, errors: vec![] }
//!     }
//! }
//!
//! weir_plugin::export_stage!(Upper);
//! ```
//!
//! A stage that counts, sums or remembers per key keeps that in [`state`]:
//! the host holds it, persists what changed and hands it to every new
//! instance and version.

pub use weir_abi::{Event, EventError, Header, Output};

mod config;
pub mod json;
pub mod log;
pub mod state;

#[doc(hidden)]
pub mod __private;

pub use config::Config;

pub mod small_alloc;

#[cfg(all(
    feature = "small-alloc",
    target_family = "wasm",
    any(target_env = "p1", target_env = "p2"),
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: small_alloc::SmallAlloc = small_alloc::SmallAlloc::new();

/// The component's `cabi_realloc`, where the host puts what it hands the
/// plugin (std's own is weak, and gives way to this one). See
/// [`small_alloc::Lowering`]: the batch and the state the host returns
/// come from the size classes; what WASI hands wasi-libc, which frees it
/// with `free()`, from libc's `malloc`.
///
/// # Safety
/// Called by the canonical ABI only.
#[cfg(all(
    feature = "small-alloc",
    target_family = "wasm",
    target_env = "p2",
    not(target_feature = "atomics")
))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use std::alloc::{GlobalAlloc, Layout, System};
    let allocator: &dyn GlobalAlloc = if small_alloc::Lowering::for_rust() {
        &ALLOCATOR
    } else {
        &System
    };
    let ptr = unsafe {
        if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            allocator.alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            allocator.realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        std::process::abort();
    }
    ptr
}

#[cfg(target_env = "p2")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "stage",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "weir_plugin::bindings",
        // Imports take borrowed lists: a batch's keys and values go to the
        // host without a copy of each first.
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}

/// A stage: what a plugin author implements.
pub trait Stage: Sized + 'static {
    /// Builds the stage from its `config` table. An `Err` refuses the
    /// instance with that message.
    fn init(config: &Config) -> Result<Self, String>;

    /// Transforms one batch. Return zero or more events per input, and an
    /// [`EventError`] for every input that cannot be processed.
    fn process(&mut self, batch: Vec<Event>) -> Output;

    /// The stage's state as bytes. Stateless stages keep the default.
    fn checkpoint_export(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores state written by `checkpoint_export` of this or an earlier
    /// version. Stateless stages keep the default.
    fn checkpoint_import(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// Exports a [`Stage`] implementation as this plugin's stage.
#[macro_export]
macro_rules! export_stage {
    ($stage:ty) => {
        ::std::thread_local! {
            static __WEIR_STAGE: ::std::cell::RefCell<::std::option::Option<$stage>> =
                const { ::std::cell::RefCell::new(::std::option::Option::None) };
        }

        #[cfg(target_env = "p2")]
        struct __WeirComponent;

        #[cfg(target_env = "p2")]
        impl $crate::bindings::exports::weir::plugin::transform::Guest for __WeirComponent {
            fn init(config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                -> ::std::result::Result<(), ::std::string::String> {
                let _lowering = $crate::small_alloc::Lowering::export();
                $crate::__private::init(&__WEIR_STAGE, config)
            }
            fn process(
                batch: ::std::vec::Vec<$crate::bindings::weir::plugin::types::Event>,
            ) -> $crate::bindings::weir::plugin::types::Output {
                let _lowering = $crate::small_alloc::Lowering::export();
                $crate::__private::component::process(&__WEIR_STAGE, batch)
            }
            fn checkpoint_export() -> ::std::vec::Vec<u8> {
                let _lowering = $crate::small_alloc::Lowering::export();
                $crate::__private::checkpoint_export(&__WEIR_STAGE)
            }
            fn checkpoint_import(state: ::std::vec::Vec<u8>)
                -> ::std::result::Result<(), ::std::string::String> {
                let _lowering = $crate::small_alloc::Lowering::export();
                $crate::__private::checkpoint_import(&__WEIR_STAGE, &state)
            }
        }

        #[cfg(target_env = "p2")]
        $crate::bindings::export!(__WeirComponent with_types_in $crate::bindings);

        #[cfg(not(target_env = "p2"))]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_abi_version() -> i32 {
                $crate::__private::core::ABI_VERSION
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_alloc(len: u32) -> u32 {
                $crate::__private::core::alloc(len)
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_init(ptr: u32, len: u32) -> u64 {
                unsafe { $crate::__private::core::init(&__WEIR_STAGE, ptr, len) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_process(ptr: u32, len: u32) -> u64 {
                unsafe { $crate::__private::core::process(&__WEIR_STAGE, ptr, len) }
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn weir_checkpoint_export() -> u64 {
                $crate::__private::core::checkpoint_export(&__WEIR_STAGE)
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn weir_checkpoint_import(ptr: u32, len: u32) -> u64 {
                unsafe { $crate::__private::core::checkpoint_import(&__WEIR_STAGE, ptr, len) }
            }
        };
    };
}
