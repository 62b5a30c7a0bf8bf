//! The bytes the process holds, and the most it held, for `kubenat bench` and `kubenat
//! simulate --generate`. The binary installs [`CountingAllocator`] as its global allocator;
//! a library user that does not reads zeros.
//!
//! The packet path never allocates, so the count costs nothing there. Underneath is
//! mimalloc: compiling a million Services makes a few million small allocations, and
//! glibc's malloc took 2.5 times as long over them (docs/benchmarks.md, "Compile and the
//! allocator").

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

static HELD_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);

/// mimalloc, counting what it hands out.
pub struct CountingAllocator;

/// Bytes held now.
pub fn held() -> u64 {
    HELD_BYTES.load(Ordering::Relaxed)
}

/// The most bytes held at once so far.
pub fn peak() -> u64 {
    PEAK_BYTES.load(Ordering::Relaxed)
}

/// Counts `grown` more bytes held.
fn held_more(grown: u64) {
    let held = HELD_BYTES.fetch_add(grown, Ordering::Relaxed) + grown;
    PEAK_BYTES.fetch_max(held, Ordering::Relaxed);
}

// SAFETY: every call is passed on unchanged to mimalloc; the counters are only statistics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        held_more(layout.size() as u64);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        held_more(new_size as u64);
        HELD_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
