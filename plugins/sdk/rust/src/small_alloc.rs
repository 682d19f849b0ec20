//! The plugin's global allocator: small blocks (up to 2 KiB) come from
//! per-size-class free lists carved out of 64 KiB slabs, larger ones from the
//! system allocator (wasi-libc's malloc).
//!
//! Every event a plugin decodes or emits is a few small allocations, and
//! wasi-libc's dlmalloc makes each of them expensive. Slabs are themselves
//! allocated through wasi-libc, so this allocator never grows the memory
//! behind libc's back. Freed small blocks are kept for reuse by their class,
//! never returned: a plugin's small-object memory stays at its peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// Size classes 16, 32, …, 2048 bytes.
const CLASSES: usize = 8;
const MIN_SHIFT: u32 = 4;
const MAX_SMALL: usize = 16 << (CLASSES - 1);
/// Every small block is aligned to this; stricter alignments go to the
/// system allocator.
const ALIGN: usize = 16;
const SLAB: usize = 64 * 1024;

struct State {
    /// Heads of the free lists; a free block holds the next pointer.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current slab.
    next: *mut u8,
    end: *mut u8,
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
            let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, ALIGN)) };
            if slab.is_null() {
                return null_mut();
            }
            s.next = slab;
            s.end = unsafe { slab.add(SLAB) };
        }
        let p = s.next;
        s.next = unsafe { p.add(size) };
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout) {
            None => unsafe { System.dealloc(ptr, layout) },
            Some(c) => {
                let s = unsafe { &mut *self.0.get() };
                unsafe { *(ptr as *mut *mut u8) = s.free[c] };
                s.free[c] = ptr;
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            (Some(a), Some(b)) if a == b => ptr,
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
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
