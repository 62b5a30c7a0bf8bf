//! The engine's side of [`crate::offload`]: memory for its connection tables faulted in,
//! and freed, off the packet path.

use super::Engine;
use crate::offload::{Memory, MemoryRequest};

impl Engine {
    /// From now on, the connection tables of both families ask ahead for the memory they
    /// will need ([`Engine::memory_wanted`]) and hand back what they stop using
    /// ([`Engine::memory_released`]), so that no batch faults in fresh pages or frees a
    /// table: see [`crate::offload`] for the loop. The first requests, made at once, are
    /// the first slab chunks and index tables with room for 8,192 connections (at most
    /// 899 KB of index a family in use). Without it, a table allocates as it grows.
    ///
    /// ```
    /// use kubenat_core::Engine;
    /// use kubenat_core::reference;
    ///
    /// let mut engine = Engine::new(&reference::cluster("nodoa"));
    /// engine.offload_memory();
    /// // Between batches: what the tables will need goes to another thread, which faults
    /// // it in; what comes back goes to the tables.
    /// let requests: Vec<_> = std::iter::from_fn(|| engine.memory_wanted()).collect();
    /// assert!(!requests.is_empty(), "spare slab chunks");
    /// let helper = std::thread::spawn(move || {
    ///     requests.into_iter().map(|request| request.fulfil()).collect::<Vec<_>>()
    /// });
    /// for memory in helper.join().unwrap() {
    ///     engine.provide_memory(memory).unwrap();
    /// }
    /// assert!(engine.memory_wanted().is_none(), "nothing more until connections come");
    /// ```
    pub fn offload_memory(&mut self) {
        self.v4.offload_memory();
        self.v6.offload_memory();
    }

    /// The next memory a connection table will soon need, asked for once (see
    /// [`crate::offload`]); `None` when there is nothing more to ask for now, or before
    /// [`Engine::offload_memory`].
    pub fn memory_wanted(&mut self) -> Option<MemoryRequest> {
        self.v4
            .conntrack
            .memory_wanted(false)
            .or_else(|| self.v6.conntrack.memory_wanted(true))
    }

    /// Gives a table the memory it asked for, fulfilled. Hands it back when it is of no
    /// use any more (it came too late, or a table changed meanwhile): drop it off the
    /// packet path.
    pub fn provide_memory(&mut self, memory: Memory) -> Result<(), Memory> {
        match memory.target.v6 {
            false => self.v4.conntrack.provide_memory(memory),
            true => self.v6.conntrack.provide_memory(memory),
        }
    }

    /// How often the connection tables (both families) took fresh memory of their own while
    /// packets were processed: a slab chunk, or the next table of an index, that no
    /// [`Engine::provide_memory`] had brought in time. Each means a batch that faulted
    /// fresh pages in (milliseconds where a huge page is zeroed on a slow host). With
    /// [`Engine::offload_memory`] and a helper that keeps up it counts none (the first
    /// requests, index tables with room for 8,192 connections and the first slab chunks,
    /// are answered before any batch); without, it counts every growth.
    pub fn conntrack_grown_on_packet_path(&self) -> u64 {
        (self.v4.conntrack.grown_on_packet_path() + self.v6.conntrack.grown_on_packet_path()) as u64
    }

    /// A table a connection table stopped using (an index emptied into a larger one), to
    /// drop off the packet path; `None` when there is none.
    pub fn memory_released(&mut self) -> Option<Memory> {
        self.v4
            .conntrack
            .memory_released(false)
            .or_else(|| self.v6.conntrack.memory_released(true))
    }
}
