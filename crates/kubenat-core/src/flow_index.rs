//! The conntrack index: tuple hash to slab slot, in cache-line buckets that can be
//! prefetched a batch ahead, the way DPDK's bulk hash lookup hides memory latency.
//!
//! Each bucket is one 64-byte line holding 7 (signature, value) lanes and a count of the
//! keys that overflowed to later buckets. A lookup reads the home bucket, compares 32-bit
//! signatures, and asks the caller to confirm a candidate (the full tuple lives in the
//! conntrack slab); only when the home bucket has overflowed does it probe further. Sized
//! at construction for its capacity at under 50% load, so it never grows and never
//! allocates afterwards.

const LANES: usize = 7;
/// How far a key may land from its home bucket.
const MAX_PROBE: usize = 32;
const EMPTY: u32 = 0;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    signatures: [u32; LANES],
    /// Keys whose home is this bucket but which live in a later one.
    overflow: u32,
    values: [u32; LANES],
    _pad: u32,
}

const EMPTY_BUCKET: Bucket = Bucket {
    signatures: [EMPTY; LANES],
    overflow: 0,
    values: [0; LANES],
    _pad: 0,
};

/// A fixed-capacity multimap from 64-bit hashes to `u32` values.
#[derive(Clone)]
pub(crate) struct FlowIndex {
    buckets: Box<[Bucket]>,
}

#[inline]
fn signature(hash: u64) -> u32 {
    // Never zero: zero marks an empty lane.
    ((hash >> 32) as u32) | 1
}

impl FlowIndex {
    /// An index for up to `capacity` keys, at most half full: any bucket count works (no
    /// power-of-two rounding), so memory follows capacity closely.
    pub fn new(capacity: usize) -> FlowIndex {
        FlowIndex::with_lanes(capacity.max(1) * 2)
    }

    /// An index for up to `capacity` keys, at most three quarters full: for an index that
    /// is rarely full (fewer buckets, longer probes when it is).
    pub fn dense(capacity: usize) -> FlowIndex {
        FlowIndex::with_lanes((capacity.max(1) * 4).div_ceil(3))
    }

    fn with_lanes(lanes: usize) -> FlowIndex {
        FlowIndex {
            buckets: vec![EMPTY_BUCKET; lanes.div_ceil(LANES)].into_boxed_slice(),
        }
    }

    /// The home bucket: the low 32 bits of the hash scaled onto the bucket count
    /// (Lemire's multiply-shift range reduction; the signature uses the high bits).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.buckets.len() as u64) >> 32) as usize
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
        prefetch(&self.buckets[self.home(hash)]);
    }

    /// The value stored under `hash` for which `is_key` is true.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let sig = signature(hash);
        let home = self.home(hash);
        for distance in 0..self.reach() {
            let bucket = &self.buckets[self.at(home, distance)];
            for lane in 0..LANES {
                if bucket.signatures[lane] == sig && is_key(bucket.values[lane]) {
                    return Some(bucket.values[lane]);
                }
            }
            if distance == 0 && bucket.overflow == 0 {
                return None;
            }
        }
        None
    }

    /// Stores `value` under `hash`. False when every bucket within reach is full (at the
    /// load this index is sized for, practically never).
    pub fn insert(&mut self, hash: u64, value: u32) -> bool {
        let sig = signature(hash);
        let home = self.home(hash);
        for distance in 0..self.reach() {
            let index = self.at(home, distance);
            let bucket = &mut self.buckets[index];
            if let Some(lane) = bucket.signatures.iter().position(|&s| s == EMPTY) {
                bucket.signatures[lane] = sig;
                bucket.values[lane] = value;
                if distance > 0 {
                    self.buckets[home].overflow += 1;
                }
                return true;
            }
        }
        false
    }

    /// Removes the entry holding exactly `value` under `hash`. False when absent.
    pub fn remove(&mut self, hash: u64, value: u32) -> bool {
        let sig = signature(hash);
        let home = self.home(hash);
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
}

/// Asks the CPU to start loading `value`'s cache line; a no-op where there is no hint.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint with no effect on memory; any address is allowed.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch((value as *const T).cast::<i8>(), _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
    }

    proptest! {
        /// The index (half or three quarters full at capacity) agrees with a HashMap model
        /// under any sequence of inserts and removes, including hashes crowded into few
        /// buckets.
        #[test]
        fn behaves_like_a_map(
            ops in proptest::collection::vec(
                prop_oneof![any::<u16>().prop_map(Op::Insert), any::<u16>().prop_map(Op::Remove)],
                0..400,
            ),
            crowd in 0u64..4,
            dense: bool,
        ) {
            let mut index = if dense { FlowIndex::dense(300) } else { FlowIndex::new(300) };
            let mut model: HashMap<u16, u32> = HashMap::new();
            // Crowding: many keys share their low bits, so home buckets overflow.
            let hash = |k: u16| {
                let h = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                if crowd == 0 { h } else { (h & !0xff) | (u64::from(k) % (crowd * 3)) }
            };
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(k) if !model.contains_key(&k) && model.len() < 300 => {
                        prop_assert!(index.insert(hash(k), n as u32));
                        model.insert(k, n as u32);
                    }
                    Op::Remove(k) => {
                        let expected = model.remove(&k);
                        let removed = expected.is_some_and(|v| index.remove(hash(k), v));
                        prop_assert_eq!(removed, expected.is_some());
                    }
                    _ => {}
                }
                for (&k, &v) in &model {
                    prop_assert_eq!(index.find(hash(k), |x| x == v), Some(v));
                }
            }
        }
    }

    #[test]
    fn tiny_indexes_wrap_within_their_buckets() {
        // 2 buckets: probing past a full home bucket must wrap, not run off the end.
        let mut index = FlowIndex::new(4);
        let crowded = |k: u64| k << 40; // every key's home is bucket 0
        for k in 0..14 {
            assert!(index.insert(crowded(k), k as u32), "key {k}");
        }
        assert!(!index.insert(crowded(99), 99), "both buckets are full");
        for k in 0..14 {
            assert_eq!(index.find(crowded(k), |v| v == k as u32), Some(k as u32));
        }
        assert_eq!(index.find(crowded(99), |_| true).filter(|&v| v == 99), None);
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }
}
