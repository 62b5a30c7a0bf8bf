//! The flow indexes: a hash to `u32` values (slab slots, service ports), in cache-line
//! buckets that can be prefetched a batch ahead, the way DPDK's bulk hash lookup hides
//! memory latency.
//!
//! Each bucket is one 64-byte line holding 7 (signature, value) lanes and a count of the
//! keys that overflowed to later buckets. A lookup reads the home bucket, compares 32-bit
//! signatures, and asks the caller to confirm a candidate (the full key lives with the
//! caller); only when the home bucket has overflowed does it probe further. The home bucket
//! is derived from the signature alone, so a key can move to a larger table without its
//! hash, and the full key, being read again.
//!
//! [`FlowIndex`] has a fixed bucket count. [`GrowingIndex`] starts small and doubles, up
//! to a cap, by incremental rehash: from a quarter full, each insert clears a few
//! buckets of the next, twice as large, table (never-touched memory, so no insert pays for
//! a whole table's page faults or zeroing); then the new table takes every insert, each
//! insert moves a few buckets of the old one over, and lookups read both until the old one
//! is empty. No insert waits for a whole table to be cleared, rehashed or copied.

use std::mem::MaybeUninit;

mod growing;

pub(crate) use growing::{GrowingIndex, fresh_table};

const LANES: usize = 7;
/// How far a key may land from its home bucket.
const MAX_PROBE: usize = 32;
const EMPTY: u32 = 0;
/// The low bit of each lane's pair in [`Bucket::lanes_signed`]'s mask: the overflow
/// count, compared with the signatures, is left out.
const LANE_BITS: u32 = 0x1555;
/// Bytes of one bucket, a cache line.
pub(crate) const BUCKET_BYTES: usize = std::mem::size_of::<Bucket>();
const EMPTY_BUCKET: Bucket = Bucket {
    signatures: [EMPTY; LANES],
    overflow: 0,
    values: [0; LANES],
    _pad: 0,
};

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    signatures: [u32; LANES],
    /// Keys whose home is this bucket but which live in a later one.
    overflow: u32,
    values: [u32; LANES],
    _pad: u32,
}

impl Bucket {
    /// The lanes whose signature is `sig`, as a mask with two bits per lane (lane 0
    /// lowest, the odd bits clear): on x86-64, two vector compares over the bucket's first
    /// 32 bytes (the seven signatures and the overflow count, masked off) packed into one
    /// mask. A miss, every lane compared, then costs a fixed handful of instructions
    /// instead of seven compares and branches.
    #[inline(always)]
    fn lanes_signed(&self, sig: u32) -> u32 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of x86-64; the bucket is 64-byte aligned and its first 32
        // bytes are the signatures and the overflow count, all initialised integers.
        unsafe {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi32, _mm_load_si128, _mm_movemask_epi8, _mm_packs_epi32,
                _mm_set1_epi32,
            };
            let first = (self as *const Bucket).cast::<__m128i>();
            let wanted = _mm_set1_epi32(sig as i32);
            let low = _mm_cmpeq_epi32(_mm_load_si128(first), wanted);
            let high = _mm_cmpeq_epi32(_mm_load_si128(first.add(1)), wanted);
            (_mm_movemask_epi8(_mm_packs_epi32(low, high)) as u32) & LANE_BITS
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.lanes_signed_one_by_one(sig)
    }

    /// [`Bucket::lanes_signed`] lane by lane: elsewhere than x86-64, and the reference the
    /// vector version is tested against.
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn lanes_signed_one_by_one(&self, sig: u32) -> u32 {
        self.signatures
            .iter()
            .enumerate()
            .fold(0, |mask, (lane, &s)| {
                mask | (u32::from(s == sig) << (2 * lane))
            })
    }

    /// What `key` makes of the first value under signature `sig` it accepts.
    #[inline(always)]
    fn find_map<R>(&self, sig: u32, mut key: impl FnMut(u32) -> Option<R>) -> Option<R> {
        let mut lanes = self.lanes_signed(sig);
        while lanes != 0 {
            if let Some(found) = key(self.values[lanes.trailing_zeros() as usize / 2]) {
                return Some(found);
            }
            lanes &= lanes - 1;
        }
        None
    }

    /// Stores (`sig`, `value`) in the first lane holding no key. False when all are taken.
    #[inline(always)]
    fn store(&mut self, sig: u32, value: u32) -> bool {
        let Some(lane) = self.signatures.iter().position(|&s| s == EMPTY) else {
            return false;
        };
        self.signatures[lane] = sig;
        self.values[lane] = value;
        true
    }
}

/// A fixed-size multimap from 64-bit hashes to `u32` values.
#[derive(Clone)]
pub(crate) struct FlowIndex {
    /// Never empty, so that every signature has a home bucket.
    buckets: Box<[Bucket]>,
}

#[inline(always)]
fn signature(hash: u64) -> u32 {
    // Never zero: zero marks an empty lane.
    ((hash >> 32) as u32) | 1
}

impl FlowIndex {
    /// An index for up to `capacity` keys, at most half full: any bucket count works (no
    /// power-of-two rounding), so memory follows capacity closely.
    pub fn new(capacity: usize) -> FlowIndex {
        FlowIndex::with_lanes(capacity.max(1).saturating_mul(2))
    }

    /// At least enough buckets for `lanes` keys (one at least), all empty.
    fn with_lanes(lanes: usize) -> FlowIndex {
        FlowIndex::from_buckets(vec![EMPTY_BUCKET; buckets_for(lanes)].into_boxed_slice())
    }

    /// An index over `buckets`, which must not be empty (every signature needs a home).
    fn from_buckets(buckets: Box<[Bucket]>) -> FlowIndex {
        assert!(!buckets.is_empty(), "an index needs a bucket");
        FlowIndex { buckets }
    }

    /// Lanes: keys it can hold at most.
    fn lanes(&self) -> usize {
        self.buckets.len() * LANES
    }

    /// The home bucket: the signature scaled onto the bucket count (Lemire's
    /// multiply-shift range reduction).
    #[inline(always)]
    fn home(&self, sig: u32) -> usize {
        ((u64::from(sig) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The home bucket of `sig` and its index. Unchecked: the multiply-shift maps every
    /// 32-bit signature below the bucket count, and there is at least one bucket; the
    /// bounds check cost two instructions on every lookup and insert.
    #[inline(always)]
    fn home_bucket(&self, sig: u32) -> (usize, &Bucket) {
        let home = self.home(sig);
        debug_assert!(home < self.buckets.len());
        // SAFETY: `home < buckets.len()`, as above.
        (home, unsafe { self.buckets.get_unchecked(home) })
    }

    /// [`FlowIndex::home_bucket`], to write.
    #[inline(always)]
    fn home_bucket_mut(&mut self, sig: u32) -> (usize, &mut Bucket) {
        let home = self.home(sig);
        debug_assert!(home < self.buckets.len());
        // SAFETY: `home < buckets.len()`, as in `home_bucket`.
        (home, unsafe { self.buckets.get_unchecked_mut(home) })
    }

    /// How many buckets a key may be probed over: never more than there are.
    #[inline]
    fn reach(&self) -> usize {
        MAX_PROBE.min(self.buckets.len())
    }

    /// The bucket `distance` (less than the bucket count) after `home`, wrapping around.
    #[inline]
    fn at(&self, home: usize, distance: usize) -> usize {
        let index = home + distance;
        if index >= self.buckets.len() {
            index - self.buckets.len()
        } else {
            index
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// Starts loading the home bucket of `hash` into cache.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        prefetch(self.home_bucket(signature(hash)).1);
    }

    /// The value stored under `hash` for which `is_key` is true.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_map(hash, |value| is_key(value).then_some(value))
    }

    /// What `key` makes of the first value stored under `hash` it accepts (returns
    /// `Some` for): the caller confirms a candidate and keeps what it read doing so.
    /// The home bucket alone first: only one that has overflowed needs the probing loop.
    #[inline(always)]
    pub fn find_map<R>(&self, hash: u64, mut key: impl FnMut(u32) -> Option<R>) -> Option<R> {
        let sig = signature(hash);
        let (home, bucket) = self.home_bucket(sig);
        if let Some(found) = bucket.find_map(sig, &mut key) {
            return Some(found);
        }
        if bucket.overflow == 0 {
            return None;
        }
        self.find_overflowed(home, sig, key)
    }

    /// [`FlowIndex::find_map`] in the buckets after an overflowed home bucket.
    #[cold]
    fn find_overflowed<R>(
        &self,
        home: usize,
        sig: u32,
        mut key: impl FnMut(u32) -> Option<R>,
    ) -> Option<R> {
        (1..self.reach())
            .find_map(|distance| self.buckets[self.at(home, distance)].find_map(sig, &mut key))
    }

    /// Stores `value` under `hash`. False when every bucket within reach is full (at the
    /// load this index is sized for, practically never). Inlined: a new connection's two
    /// keys then cost no calls.
    #[inline]
    pub fn insert(&mut self, hash: u64, value: u32) -> bool {
        self.insert_signed(signature(hash), value)
    }

    /// Tries the home bucket alone first: at half load it practically always has room, and
    /// the probing loop's setup cost more than the search. Always inlined: left to the
    /// compiler, it stayed a call, eleven instructions a new connection more.
    #[inline(always)]
    fn insert_signed(&mut self, sig: u32, value: u32) -> bool {
        let (home, bucket) = self.home_bucket_mut(sig);
        bucket.store(sig, value) || self.insert_overflowing(home, sig, value)
    }

    /// [`FlowIndex::insert_signed`] past a full home bucket: the first later bucket with
    /// room takes the key. Rare at half load, so kept out of the common path.
    #[cold]
    fn insert_overflowing(&mut self, home: usize, sig: u32, value: u32) -> bool {
        for distance in 1..self.reach() {
            let index = self.at(home, distance);
            if self.buckets[index].store(sig, value) {
                self.buckets[home].overflow += 1;
                return true;
            }
        }
        false
    }

    /// Removes the entry holding exactly `value` under `hash`. False when absent.
    pub fn remove(&mut self, hash: u64, value: u32) -> bool {
        let sig = signature(hash);
        let home = self.home(sig);
        for distance in 0..self.reach() {
            let index = self.at(home, distance);
            let bucket = &mut self.buckets[index];
            for lane in 0..LANES {
                if bucket.signatures[lane] == sig && bucket.values[lane] == value {
                    bucket.signatures[lane] = EMPTY;
                    if distance > 0 {
                        self.buckets[home].overflow -= 1;
                    }
                    return true;
                }
            }
            if distance == 0 && self.buckets[home].overflow == 0 {
                return false;
            }
        }
        false
    }

    /// Empties bucket `index`, handing each (signature, value) it held to `take`. The keys
    /// of other buckets stay findable.
    fn drain(&mut self, index: usize, mut take: impl FnMut(u32, u32)) {
        // The lanes holding keys, found at once, and the bucket emptied at once.
        let mut held = !self.buckets[index].lanes_signed(EMPTY) & LANE_BITS;
        let signatures = std::mem::replace(&mut self.buckets[index].signatures, [EMPTY; LANES]);
        while held != 0 {
            let lane = held.trailing_zeros() as usize / 2;
            held &= held - 1;
            let sig = signatures[lane];
            let home = self.home(sig);
            if home != index {
                self.buckets[home].overflow -= 1;
            }
            take(sig, self.buckets[index].values[lane]);
        }
    }
}

/// Buckets for `lanes` keys: one at least.
fn buckets_for(lanes: usize) -> usize {
    lanes.div_ceil(LANES).max(1)
}

/// Asks the CPU to start loading `value`'s cache line; a no-op where there is no hint.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_address((value as *const T).cast());
}

/// Asks the CPU to start loading every cache line of `value`: memory about to be read
/// whole (a node to copy) while other work goes on.
#[inline(always)]
pub(crate) fn prefetch_all<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    for offset in (0..size_of_val(value)).step_by(64) {
        // `wrapping_add`: within the value, and only an address for the hint anyway.
        prefetch_address(start.wrapping_add(offset));
    }
}

#[inline(always)]
fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint with no effect on memory; any address is allowed.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch(address.cast::<i8>(), _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests;
