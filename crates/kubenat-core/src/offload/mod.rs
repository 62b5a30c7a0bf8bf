//! Memory for the connection tables, faulted in off the packet path.
//!
//! A connection table that grows takes fresh memory, and the first write to each fresh
//! page faults: the kernel zeroes it, 2 MiB at once under transparent huge pages, so a
//! batch that grows a table can take milliseconds. An embedder with a spare thread moves
//! that work off the packet path, the way Katran's control plane prepares what its data
//! plane reads:
//!
//! 1. [`Engine::offload_memory`] once;
//! 2. between batches, [`Engine::memory_wanted`] until `None`: each [`MemoryRequest`] goes
//!    to another thread, which [`fulfils`](MemoryRequest::fulfil) it;
//! 3. each [`Memory`] that comes back goes to [`Engine::provide_memory`] between batches;
//! 4. between batches, [`Engine::memory_released`] until `None`: each [`Memory`] goes to
//!    the other thread to be dropped there (freeing a large table also takes time).
//!
//! [`MemoryHelper`] is that loop with a thread of its own: [`MemoryHelper::start`] once,
//! [`MemoryHelper::tend`] between batches.
//!
//! The tables ask ahead (slab chunks, many in one request, when their spares fall to half
//! an eighth of the chunks in use; each index at once for a first table with room for
//! 8,192 connections, which [`MemoryHelper::start`] faults in before any batch, then the
//! next as soon as the last growth is done), an index waits for its next
//! table to grow (up to three eighths full instead of a quarter), and a request fulfilled
//! too late costs only what growing costs without offloading: the engine never waits.
//!
//! [`Engine::offload_memory`]: crate::Engine::offload_memory
//! [`Engine::memory_wanted`]: crate::Engine::memory_wanted
//! [`Engine::provide_memory`]: crate::Engine::provide_memory
//! [`Engine::memory_released`]: crate::Engine::memory_released

mod helper;

pub use helper::MemoryHelper;

use std::any::Any;
use std::fmt;
use std::mem::MaybeUninit;

/// A block of memory of some table's own type.
pub(crate) type Block = Box<dyn Any + Send>;

/// Which table of which family a block is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) v6: bool,
    pub(crate) part: Part,
}

/// A part of a conntrack table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// A chunk of the slab of connections.
    Entries,
    /// The next index of original and reply tuples.
    Keys,
    /// The next index of masqueraded connections' tuples.
    MasqueradeKeys,
}

/// Memory a connection table will soon need: [`MemoryRequest::fulfil`] it on any thread.
pub struct MemoryRequest {
    pub(crate) target: Target,
    size: usize,
    bytes: usize,
    make: fn(usize) -> Block,
}

impl MemoryRequest {
    /// A request for `bytes` bytes that `make(size)` allocates and faults in.
    pub(crate) fn new(
        target: Target,
        size: usize,
        bytes: usize,
        make: fn(usize) -> Block,
    ) -> MemoryRequest {
        MemoryRequest {
            target,
            size,
            bytes,
            make,
        }
    }

    /// Bytes it allocates.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Allocates the memory and writes every page of it, so the packet path that uses it
    /// faults nothing. Takes as long as the kernel takes to hand out and zero that many
    /// pages: call it off the packet path.
    pub fn fulfil(self) -> Memory {
        Memory {
            target: self.target,
            block: (self.make)(self.size),
        }
    }
}

impl fmt::Debug for MemoryRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRequest")
            .field("target", &self.target)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Memory for a connection table ([`MemoryRequest::fulfil`]), or memory a table released
/// ([`Engine::memory_released`](crate::Engine::memory_released)). Dropping it frees it.
#[derive(Debug)]
pub struct Memory {
    pub(crate) target: Target,
    pub(crate) block: Block,
}

impl Memory {
    /// Memory released by the table `target` names.
    pub(crate) fn released(target: Target, block: Block) -> Memory {
        Memory { target, block }
    }
}

/// Writes a byte on every page that `items` (each no larger than a page) span, so the
/// kernel faults them all in now, on the calling thread. Volatile: plain stores of zeros
/// to fresh memory could be left to pages the allocator knows to be zero, untouched.
pub(crate) fn fault_in<T>(items: &mut [MaybeUninit<T>]) {
    const PAGE: usize = 4096;
    let per_page = (PAGE / std::mem::size_of::<T>().max(1)).max(1);
    for item in items.iter_mut().step_by(per_page) {
        // SAFETY: a byte written into storage the slice holds exclusively; any byte may
        // be written to uninitialised memory.
        unsafe { std::ptr::write_volatile(item.as_mut_ptr().cast::<u8>(), 0) };
    }
}
