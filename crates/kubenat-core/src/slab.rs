//! A slab that grows in fixed-size chunks: entries never move once written, so growing
//! never copies them, and a table holds only the chunks its live entries have needed.

use std::any::Any;
use std::mem::MaybeUninit;
use std::ops::{Index, IndexMut};

use crate::offload::fault_in;

const CHUNK_SHIFT: u32 = 10;
/// Entries per chunk: 64 KiB of 64-byte conntrack entries.
const CHUNK: usize = 1 << CHUNK_SHIFT;
const MASK: u32 = CHUNK as u32 - 1;

/// Chunks kept ready off the packet path: at least enough for 4,096 new connections (a
/// helper thread woken late still comes in time), at most 4 MiB of IPv4 entries (65,536
/// connections: tens of milliseconds of new ones, time for a helper to fault in a few
/// huge pages on a slow virtual machine).
const FEWEST_SPARES: usize = 4;
const MOST_SPARES: usize = 64;

type Chunk<T> = Box<[MaybeUninit<T>; CHUNK]>;

/// Entries addressed by `u32`, allocated a chunk at a time as they are pushed.
pub(crate) struct Slab<T> {
    /// Entries `0..len` are written; the rest of the last chunks are not.
    chunks: Vec<Chunk<T>>,
    len: u32,
    /// Chunks faulted in off the packet path (see [`crate::offload`]), taken before
    /// allocating one; `requested` more are on their way.
    spares: Vec<Chunk<T>>,
    requested: usize,
    offloaded: bool,
    /// Chunks a push allocated itself, no spare ready: fresh memory faulted in on the
    /// packet path.
    own_chunks: usize,
}

impl<T: Copy> Slab<T> {
    /// An empty slab: nothing allocated.
    pub fn new() -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            len: 0,
            spares: Vec::new(),
            requested: 0,
            offloaded: false,
            own_chunks: 0,
        }
    }

    /// Entries pushed.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Appends `value` and returns its index, allocating a chunk when the last is full.
    /// Inlined: a new connection pays no call for it.
    #[inline(always)]
    pub fn push(&mut self, value: T) -> u32 {
        let index = self.len;
        let chunk = (index >> CHUNK_SHIFT) as usize;
        if chunk == self.chunks.len() {
            self.add_chunk();
        }
        self.chunks[chunk][(index & MASK) as usize].write(value);
        self.len += 1;
        index
    }

    /// Allocates the chunks `entries` entries need, so pushing up to them allocates nothing.
    pub fn reserve(&mut self, entries: usize) {
        while self.chunks.len() * CHUNK < entries {
            let chunk = self.spares.pop().unwrap_or_else(new_chunk);
            self.chunks.push(chunk);
        }
    }

    /// A spare chunk into use, or one allocated here, counted.
    #[cold]
    fn add_chunk(&mut self) {
        let chunk = self.spares.pop().unwrap_or_else(|| {
            self.own_chunks += 1;
            new_chunk()
        });
        self.chunks.push(chunk);
    }

    /// Chunks pushes allocated themselves (no spare was ready): every chunk when not
    /// offloaded, the ones whose memory came late when offloaded.
    pub fn own_chunks(&self) -> usize {
        self.own_chunks
    }

    /// Bytes held: the chunks (spares included) and their directories.
    pub fn bytes(&self) -> usize {
        (self.chunks.len() + self.spares.len()) * std::mem::size_of::<[T; CHUNK]>()
            + (self.chunks.capacity() + self.spares.capacity())
                * std::mem::size_of::<Box<[T; CHUNK]>>()
    }

    /// From now on, keeps spare chunks faulted in off the packet path (see
    /// [`Slab::wanted`]).
    pub fn offload(&mut self) {
        self.offloaded = true;
        self.spares.reserve(MOST_SPARES);
    }

    /// How many spare chunks to ask for in one request (and count them asked for), if
    /// any: offloaded, with spares ready or coming down to half of the target (an eighth
    /// of the chunks in use, within [`FEWEST_SPARES`] and [`MOST_SPARES`]), enough to
    /// reach the target again. Enough for the next milliseconds of new connections at any
    /// size, little memory while the slab is small, and one request (one wake of a
    /// helper thread, about ten microseconds on a virtual machine) for many chunks.
    pub fn wanted(&mut self) -> Option<usize> {
        if !self.offloaded {
            return None;
        }
        if self.chunks.capacity() - self.chunks.len() < MOST_SPARES {
            // The directory grows here, between batches, not when a batch adds a chunk.
            self.chunks.reserve(self.chunks.len().max(MOST_SPARES));
        }
        let target = (self.chunks.len() / 8).clamp(FEWEST_SPARES, MOST_SPARES);
        let have = self.spares.len() + self.requested;
        if have > target / 2 {
            return None;
        }
        self.requested += target - have;
        Some(target - have)
    }

    /// Takes chunks from [`fresh_chunks`]; gives back anything else, and the chunks past
    /// [`MOST_SPARES`].
    pub fn supply(&mut self, chunks: Box<dyn Any + Send>) -> Result<(), Box<dyn Any + Send>>
    where
        T: Send + 'static,
    {
        let mut chunks = chunks.downcast::<Vec<Chunk<T>>>()?;
        self.requested = self.requested.saturating_sub(chunks.len());
        let room = MOST_SPARES.saturating_sub(self.spares.len());
        let surplus = chunks.split_off(chunks.len().min(room));
        self.spares.append(&mut chunks);
        match surplus.is_empty() {
            true => Ok(()),
            false => Err(Box::new(surplus)),
        }
    }
}

/// Bytes of one chunk of `T`.
pub(crate) fn chunk_bytes<T>() -> usize {
    std::mem::size_of::<[T; CHUNK]>()
}

fn new_chunk<T>() -> Chunk<T> {
    match Box::<[T]>::new_uninit_slice(CHUNK).try_into() {
        Ok(chunk) => chunk,
        Err(_) => unreachable!("a chunk has CHUNK entries"),
    }
}

/// `count` chunks with every page written, so pushing into them faults nothing: for
/// [`Slab::supply`], made on any thread.
pub(crate) fn fresh_chunks<T: Send + 'static>(count: usize) -> Box<dyn Any + Send> {
    let chunks: Vec<Chunk<T>> = (0..count)
        .map(|_| {
            let mut chunk = new_chunk::<T>();
            fault_in(&mut chunk[..]);
            chunk
        })
        .collect();
    Box::new(chunks)
}

impl<T> Index<u32> for Slab<T> {
    type Output = T;

    /// Panics on an index never pushed.
    #[inline(always)]
    fn index(&self, index: u32) -> &T {
        assert!(index < self.len, "slab index {index} never pushed");
        // SAFETY: entries below `len` are in allocated chunks (`len` never passes the
        // chunks' room) and written (`push` writes each before counting it).
        unsafe {
            self.chunks
                .get_unchecked((index >> CHUNK_SHIFT) as usize)
                .get_unchecked((index & MASK) as usize)
                .assume_init_ref()
        }
    }
}

impl<T> IndexMut<u32> for Slab<T> {
    #[inline(always)]
    fn index_mut(&mut self, index: u32) -> &mut T {
        assert!(index < self.len, "slab index {index} never pushed");
        // SAFETY: as in `index`.
        unsafe {
            self.chunks
                .get_unchecked_mut((index >> CHUNK_SHIFT) as usize)
                .get_unchecked_mut((index & MASK) as usize)
                .assume_init_mut()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_put_across_chunks() {
        let mut slab = Slab::new();
        assert_eq!(slab.bytes(), 0);
        for i in 0..3 * CHUNK as u32 + 5 {
            assert_eq!(slab.push(i), i);
        }
        let first = &slab[0] as *const u32;
        slab.push(7);
        assert_eq!(first, &slab[0] as *const u32, "growing moved nothing");
        assert_eq!(slab.len(), 3 * CHUNK + 6);
        assert!((0..3 * CHUNK as u32 + 5).all(|i| slab[i] == i));
        slab[5] = 99;
        assert_eq!(slab[5], 99);
        assert!(slab.bytes() >= 4 * CHUNK * 4);
    }

    #[test]
    fn reserving_allocates_chunks_up_front() {
        let mut slab = Slab::<u64>::new();
        slab.reserve(CHUNK + 1);
        let bytes = slab.bytes();
        assert!(bytes >= 2 * CHUNK * 8);
        for i in 0..=CHUNK as u64 {
            slab.push(i);
        }
        assert_eq!(slab.bytes(), bytes);
    }

    #[test]
    fn an_offloaded_slab_asks_for_its_spares_together_and_pushes_into_them_first() {
        let mut slab = Slab::<u64>::new();
        assert_eq!(slab.wanted(), None, "not offloaded: nothing asked for");
        slab.offload();
        assert_eq!(slab.wanted(), Some(FEWEST_SPARES), "all in one request");
        assert_eq!(
            slab.wanted(),
            None,
            "enough asked for while the slab is empty"
        );
        let chunks = fresh_chunks::<u64>(FEWEST_SPARES);
        let first = chunks
            .downcast_ref::<Vec<Chunk<u64>>>()
            .map(|chunks| chunks.last().unwrap().as_ptr() as usize);
        assert!(slab.supply(Box::new(1u8)).is_err(), "not chunks of u64");
        slab.supply(chunks).unwrap();
        assert_eq!(slab.bytes() / (CHUNK * 8), FEWEST_SPARES, "spares count");
        slab.push(7);
        assert_eq!(first, Some(&slab[0] as *const u64 as usize));
        assert_eq!(
            slab.wanted(),
            None,
            "three spares left, more than half the target"
        );
        for _ in 0..2 * CHUNK {
            slab.push(7);
        }
        assert_eq!(
            slab.wanted(),
            Some(3),
            "down to one spare: back to the target"
        );
        assert_eq!(slab.wanted(), None);
        // Chunks past the most it keeps come back.
        let back = slab.supply(fresh_chunks::<u64>(MOST_SPARES)).unwrap_err();
        let back = back.downcast::<Vec<Chunk<u64>>>().unwrap();
        assert_eq!(back.len(), 1, "one spare kept already");
        assert_eq!(slab.requested, 0);
    }

    #[test]
    #[should_panic(expected = "never pushed")]
    fn an_index_never_pushed_panics() {
        let mut slab = Slab::new();
        slab.push(1u8);
        let _ = slab[1];
    }
}
