//! The plugin's global allocator: small blocks (up to 2 KiB) come from
//! per-size-class free lists carved out of 64 KiB slabs, larger ones from the
//! system allocator (wasi-libc's malloc).
//!
//! Every event a plugin decodes or emits is a few small allocations, and
//! wasi-libc's dlmalloc makes each of them expensive. Slabs are themselves
//! allocated through wasi-libc, so this allocator never grows the memory
//! behind libc's back. Freed small blocks are kept for reuse by their class,
//! never returned: a plugin's small-object memory stays at its peak.
//!
//! In a component, the host writes everything it hands the plugin through
//! one `cabi_realloc`: the batch and the results of weir's host calls,
//! which the bindings hand to Rust as `Vec`s freed through this allocator,
//! and the results of WASI calls, which wasi-libc frees with `free()`. So
//! the SDK's `cabi_realloc` takes from the size classes only what the host
//! hands Rust code ([`Lowering`]): the arguments of the next export,
//! between two exports, and the results of the SDK's own calls to weir's
//! host interfaces. Anything else, WASI's results above all, comes from
//! libc's `malloc`, and some of it (the first export's arguments) reaches
//! Rust code all the same. So slabs sit on 64 KiB boundaries and a bitmap
//! of the 65,536 such regions of a 32-bit memory says which are slabs: a
//! block outside them goes back to libc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether what the host writes into the plugin now is for Rust code (and
/// freed through this allocator) rather than for wasi-libc.
static FOR_RUST: AtomicBool = AtomicBool::new(false);

#[doc(hidden)]
/// Who the memory the host writes into the plugin is for, kept by the
/// SDK's export functions and host calls.
#[derive(Debug)]
pub struct Lowering(bool);

impl Lowering {
    /// Whether the host's `cabi_realloc` calls now serve Rust code.
    pub fn for_rust() -> bool {
        FOR_RUST.load(Ordering::Relaxed)
    }

    /// An export function runs: WASI calls in it return memory libc frees.
    /// When the guard drops, the export is done, and the host's next
    /// writes are the next export's arguments, for Rust.
    pub fn export() -> Self {
        FOR_RUST.store(false, Ordering::Relaxed);
        Lowering(true)
    }

    /// A call to a weir host interface: its results are for Rust code.
    pub fn host_call() -> Self {
        Lowering(FOR_RUST.swap(true, Ordering::Relaxed))
    }
}

impl Drop for Lowering {
    fn drop(&mut self) {
        FOR_RUST.store(self.0, Ordering::Relaxed);
    }
}

/// Size classes 16, 32, …, 2048 bytes.
const CLASSES: usize = 8;
const MIN_SHIFT: u32 = 4;
const MAX_SMALL: usize = 16 << (CLASSES - 1);
/// Every small block is aligned to this; stricter alignments go to the
/// system allocator.
const ALIGN: usize = 16;
const SLAB: usize = 64 * 1024;

/// 64 KiB regions of a 32-bit address space.
const REGIONS: usize = 1 << (32 - SLAB.trailing_zeros());

struct State {
    /// Heads of the free lists; a free block holds the next pointer.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current slab.
    next: *mut u8,
    end: *mut u8,
    /// One bit per 64 KiB region of memory: set for the slabs.
    slabs: [u64; REGIONS / 64],
}

/// The word of the slab bitmap and the bit in it for `ptr`'s region.
fn region(ptr: *mut u8) -> (usize, u64) {
    let region = (ptr as usize / SLAB) % REGIONS;
    (region / 64, 1 << (region % 64))
}

impl State {
    fn owns(&self, ptr: *mut u8) -> bool {
        let (word, bit) = region(ptr);
        self.slabs[word] & bit != 0
    }
}

/// A size-class allocator for single-threaded wasm.
pub struct SmallAlloc(UnsafeCell<State>);

// SAFETY: wasm32 without the atomics feature runs a single thread.
unsafe impl Sync for SmallAlloc {}

impl SmallAlloc {
    /// An empty allocator, for a `static`.
    pub const fn new() -> Self {
        SmallAlloc(UnsafeCell::new(State {
            free: [null_mut(); CLASSES],
            next: null_mut(),
            end: null_mut(),
            slabs: [0; REGIONS / 64],
        }))
    }
}

impl Default for SmallAlloc {
    fn default() -> Self {
        Self::new()
    }
}

fn class(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() > MAX_SMALL {
        return None;
    }
    let size = layout.size().max(1 << MIN_SHIFT).next_power_of_two();
    Some((size.trailing_zeros() - MIN_SHIFT) as usize)
}

unsafe impl GlobalAlloc for SmallAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded, and no allocation happens while `s` lives.
        let s = unsafe { &mut *self.0.get() };
        let head = s.free[c];
        if !head.is_null() {
            s.free[c] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        let size = 1usize << (c as u32 + MIN_SHIFT);
        if (s.end as usize) - (s.next as usize) < size {
            let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, SLAB)) };
            if slab.is_null() {
                return null_mut();
            }
            let (word, bit) = region(slab);
            s.slabs[word] |= bit;
            s.next = slab;
            s.end = unsafe { slab.add(SLAB) };
        }
        let p = s.next;
        s.next = unsafe { p.add(size) };
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let s = unsafe { &mut *self.0.get() };
        match class(layout) {
            Some(c) if s.owns(ptr) => {
                unsafe { *(ptr as *mut *mut u8) = s.free[c] };
                s.free[c] = ptr;
            }
            _ => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let mine = class(layout).is_some() && unsafe { &*self.0.get() }.owns(ptr);
        match (mine, class(layout), class(new)) {
            (true, Some(a), Some(b)) if a == b => ptr,
            (false, _, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                let p = unsafe { self.alloc(new) };
                if !p.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                p
            }
        }
    }
}
