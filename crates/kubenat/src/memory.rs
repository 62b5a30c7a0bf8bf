//! The bytes the process holds, and the most it held, for `kubenat bench` and `kubenat
//! simulate --generate`. The binary installs [`CountingAllocator`] as its global allocator;
//! a library user that does not reads zeros.
//!
//! The packet path never allocates, so the count costs nothing there. Underneath is
//! mimalloc: compiling a million Services makes a few million small allocations, and
//! glibc's malloc took 2.5 times as long over them (docs/benchmarks.md, "Compile and the
//! allocator").

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`; the sys crate names only
/// older options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Has mimalloc keep the pages freed from now on, rather than hand them back to the kernel
/// after a second: a command that reads a dump frees gigabytes of parsed trees while it
/// allocates more, and each page handed back was faulted in and zeroed again (a fifth of
/// the CPU time of importing 1M Services; docs/benchmarks.md). Not for `kubenat run`,
/// which lives on after its import.
pub fn keep_freed_pages() {
    // SAFETY: setting an option is a plain store into mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// How long mimalloc waits before handing freed pages back, in milliseconds (-1: never).
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reading an option is a plain load from mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

/// Has the kernel back this process's memory with 4 KiB pages only (`PR_SET_THP_DISABLE`),
/// whatever mimalloc advises: for `kubenat run`, whose connection table grows while live
/// traffic waits. A batch that first touches a 2 MiB transparent huge page waits for all
/// of it to be zeroed (5 ms and more on the development VM, whose host backs guest memory
/// lazily), and the loop's CPU went a fifth into that zeroing; with base pages the same
/// memory comes 4 KiB at a time. The TLB misses this costs the engine are small beside
/// the TUN's system calls (docs/benchmarks.md, issue 14).
pub fn base_pages_only() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

static HELD_BYTES: AtomicI64 = AtomicI64::new(0);
static PEAK_BYTES: AtomicI64 = AtomicI64::new(0);

/// Bytes each thread's allocations changed since it last added them to [`HELD_BYTES`]: two
/// threads counting every allocation on one shared counter fought over its cache line (the
/// import's parsing and converting threads ran 1.7 times slower).
const FLUSH_BYTES: i64 = 16 << 10;

thread_local! {
    static UNCOUNTED: Cell<i64> = const { Cell::new(0) };
}

/// mimalloc, counting what it hands out.
pub struct CountingAllocator;

/// Bytes held now (to within 16 KiB per other thread that allocates).
pub fn held() -> u64 {
    flush();
    HELD_BYTES.load(Ordering::Relaxed).max(0) as u64
}

/// The most bytes held at once so far (to within 16 KiB per thread).
pub fn peak() -> u64 {
    flush();
    PEAK_BYTES.load(Ordering::Relaxed).max(0) as u64
}

/// Adds this thread's uncounted bytes to the totals.
fn flush() {
    let delta = UNCOUNTED.with(|uncounted| uncounted.replace(0));
    let held = HELD_BYTES.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK_BYTES.fetch_max(held, Ordering::Relaxed);
}

/// Counts `delta` more bytes held (fewer when negative).
fn count(delta: i64) {
    let pending = UNCOUNTED.with(|uncounted| {
        let pending = uncounted.get() + delta;
        uncounted.set(pending);
        pending
    });
    if pending.abs() >= FLUSH_BYTES {
        flush();
    }
}

/// The alignment every mimalloc block has (a machine word), whatever its size.
const WORD_ALIGNED: usize = std::mem::size_of::<usize>();

// SAFETY: every call is passed on to mimalloc; the counters are only statistics. A layout
// of at most word alignment goes to plain `mi_malloc`, whose every block is word-aligned:
// the `mimalloc` crate's `GlobalAlloc` asks for `mi_malloc_aligned` even then, and
// mimalloc 3 serves an aligned request of more than 1 KiB that is not a power of two up to
// 4 KiB by over-allocating on a slow path (a fifth of one update's instructions went there).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        if layout.align() <= WORD_ALIGNED {
            // SAFETY: any size may be asked of mi_malloc; the block is word-aligned.
            return unsafe { libmimalloc_sys::mi_malloc(layout.size()) }.cast();
        }
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        if layout.align() <= WORD_ALIGNED {
            // SAFETY: as in `alloc`.
            return unsafe { libmimalloc_sys::mi_zalloc(layout.size()) }.cast();
        }
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        if layout.align() <= WORD_ALIGNED {
            // SAFETY: `ptr` came from this allocator, so from mimalloc; the new block is
            // word-aligned, as `layout` asks.
            return unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size) }.cast();
        }
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option set is mimalloc's purge delay: its default is a second.
    #[test]
    fn freed_pages_are_kept_once_asked() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000);
        }
        keep_freed_pages();
        assert_eq!(purge_delay_ms(), -1);
    }

    /// Every layout comes back aligned as asked, zeroed when asked, and keeps its bytes
    /// through a reallocation: the word-aligned ones through plain `mi_malloc`, the others
    /// through mimalloc's aligned calls.
    #[test]
    fn blocks_are_aligned_as_asked() {
        let sizes = [1, 8, 24, 1040, 1088, 3000, 5000, 70_000];
        for align in [1, 2, 4, 8, 16, 64, 4096] {
            for size in sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a layout of non-zero size; each block is freed with its layout.
                unsafe {
                    let zeroed = CountingAllocator.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0, "{size} B at {align}");
                    assert!(
                        (0..size).all(|i| *zeroed.add(i) == 0),
                        "{size} B at {align}"
                    );
                    CountingAllocator.dealloc(zeroed, layout);
                    let block = CountingAllocator.alloc(layout);
                    assert_eq!(block as usize % align, 0, "{size} B at {align}");
                    std::ptr::write_bytes(block, 0xa5, size);
                    let grown = CountingAllocator.realloc(block, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "{size} B at {align}, grown");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5), "{size} B kept");
                    let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                    CountingAllocator.dealloc(grown, grown_layout);
                }
            }
        }
    }

    #[test]
    fn huge_pages_are_refused_once_asked() {
        base_pages_only().expect("PR_SET_THP_DISABLE");
        // SAFETY: PR_GET_THP_DISABLE takes plain integers and touches no memory of ours.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
    }
}
