//! A slab that grows in fixed-size chunks: entries never move once written, so growing
//! never copies them, and a table holds only the chunks its live entries have needed.

use std::mem::MaybeUninit;
use std::ops::{Index, IndexMut};

const CHUNK_SHIFT: u32 = 10;
/// Entries per chunk: 64 KiB of 64-byte conntrack entries.
const CHUNK: usize = 1 << CHUNK_SHIFT;
const MASK: u32 = CHUNK as u32 - 1;

/// Entries addressed by `u32`, allocated a chunk at a time as they are pushed.
pub(crate) struct Slab<T> {
    /// Entries `0..len` are written; the rest of the last chunks are not.
    chunks: Vec<Box<[MaybeUninit<T>; CHUNK]>>,
    len: u32,
}

impl<T: Copy> Slab<T> {
    /// An empty slab: nothing allocated.
    pub fn new() -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Entries pushed.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Appends `value` and returns its index, allocating a chunk when the last is full.
    #[inline]
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
            self.add_chunk();
        }
    }

    #[cold]
    fn add_chunk(&mut self) {
        let chunk = Box::<[T]>::new_uninit_slice(CHUNK);
        match chunk.try_into() {
            Ok(chunk) => self.chunks.push(chunk),
            Err(_) => unreachable!("a chunk has CHUNK entries"),
        }
    }

    /// Bytes held: the chunks and their directory.
    pub fn bytes(&self) -> usize {
        self.chunks.len() * std::mem::size_of::<[T; CHUNK]>()
            + self.chunks.capacity() * std::mem::size_of::<Box<[T; CHUNK]>>()
    }
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
    #[should_panic(expected = "never pushed")]
    fn an_index_never_pushed_panics() {
        let mut slab = Slab::new();
        slab.push(1u8);
        let _ = slab[1];
    }
}
