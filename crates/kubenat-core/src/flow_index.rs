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

const LANES: usize = 7;
/// How far a key may land from its home bucket.
const MAX_PROBE: usize = 32;
const EMPTY: u32 = 0;
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

/// A fixed-size multimap from 64-bit hashes to `u32` values.
#[derive(Clone)]
pub(crate) struct FlowIndex {
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
        FlowIndex {
            buckets: vec![EMPTY_BUCKET; buckets_for(lanes)].into_boxed_slice(),
        }
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
        prefetch(&self.buckets[self.home(signature(hash))]);
    }

    /// The value stored under `hash` for which `is_key` is true.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_map(hash, |value| is_key(value).then_some(value))
    }

    /// What `key` makes of the first value stored under `hash` it accepts (returns
    /// `Some` for): the caller confirms a candidate and keeps what it read doing so.
    #[inline(always)]
    pub fn find_map<R>(&self, hash: u64, mut key: impl FnMut(u32) -> Option<R>) -> Option<R> {
        let sig = signature(hash);
        let home = self.home(sig);
        for distance in 0..self.reach() {
            let bucket = &self.buckets[self.at(home, distance)];
            for lane in 0..LANES {
                if bucket.signatures[lane] == sig
                    && let Some(found) = key(bucket.values[lane])
                {
                    return Some(found);
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
        self.insert_signed(signature(hash), value)
    }

    fn insert_signed(&mut self, sig: u32, value: u32) -> bool {
        let home = self.home(sig);
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
        for lane in 0..LANES {
            let sig = self.buckets[index].signatures[lane];
            if sig == EMPTY {
                continue;
            }
            self.buckets[index].signatures[lane] = EMPTY;
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

/// Lanes a [`GrowingIndex`] starts with (16 buckets, 1 KiB), unless its cap needs fewer.
const FIRST_LANES: usize = 16 * LANES;
/// Buckets of the next table an insert clears, and buckets of the old table it moves.
/// Growth starts at a quarter full: clearing the next table (twice the buckets) takes a
/// seventh of the lanes in inserts, moving a fourteenth, so the table is never more than
/// about 46% full. Few per insert, so one batch of new connections touches few fresh
/// pages: their first-touch faults, not the copying, are what growth costs a batch.
const CLEARS_PER_INSERT: usize = 2;
const MOVES_PER_INSERT: usize = 2;

/// A [`FlowIndex`] that grows with the keys it holds, from 1 KiB up to what `max_keys`
/// keys need at half load, by incremental rehash (see the module docs).
pub(crate) struct GrowingIndex {
    table: FlowIndex,
    /// The next table while it is being cleared, `cleared` buckets of it so far.
    next: Option<Box<[MaybeUninit<Bucket>]>>,
    cleared: usize,
    /// The table being emptied into `table` while growing; no buckets otherwise.
    old: FlowIndex,
    /// Buckets of `old` already moved.
    moved: usize,
    /// Keys a move could not place (every bucket within reach full in the new table):
    /// kept here, never dropped, and placed again at the next growth. Practically empty.
    spilled: Vec<(u32, u32)>,
    keys: usize,
    /// Inserts take the growth step from this many keys on: a quarter of the table's
    /// lanes (or what `reserve` made room for), zero while a table is being cleared or
    /// moved, never at the cap.
    step_at: usize,
    /// Keys `reserve` made room for.
    reserved: usize,
    max_keys: usize,
}

impl GrowingIndex {
    /// An empty index that will hold up to `max_keys` keys.
    pub fn new(max_keys: usize) -> GrowingIndex {
        GrowingIndex {
            table: FlowIndex::with_lanes(FIRST_LANES.min(max_keys.saturating_mul(2))),
            next: None,
            cleared: 0,
            old: FlowIndex {
                buckets: Box::new([]),
            },
            moved: 0,
            spilled: Vec::new(),
            keys: 0,
            step_at: 0,
            reserved: 0,
            max_keys,
        }
        .with_step_at()
    }

    /// Sets `step_at` for the state the index is in.
    fn with_step_at(mut self) -> GrowingIndex {
        self.set_step_at();
        self
    }

    fn set_step_at(&mut self) {
        let at_cap = self.table.buckets.len() >= buckets_for(self.max_keys.saturating_mul(2));
        self.step_at = if self.moving() || self.next.is_some() {
            0
        } else if at_cap {
            usize::MAX
        } else {
            (self.table.lanes() / 4).max(self.reserved)
        };
    }

    /// Bytes held (all three tables while growing).
    pub fn bytes(&self) -> usize {
        self.table.bytes()
            + self.old.bytes()
            + self
                .next
                .as_ref()
                .map_or(0, |next| std::mem::size_of_val(&**next))
            + self.spilled.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    #[inline(always)]
    fn moving(&self) -> bool {
        !self.old.buckets.is_empty()
    }

    /// Starts loading the home bucket of `hash` into cache (both while moving).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash);
        if self.moving() {
            self.old.prefetch(hash);
        }
    }

    /// The value stored under `hash` for which `is_key` is true.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_map(hash, |value| is_key(value).then_some(value))
    }

    /// [`FlowIndex::find_map`] over every table.
    #[inline(always)]
    pub fn find_map<R>(&self, hash: u64, mut key: impl FnMut(u32) -> Option<R>) -> Option<R> {
        if let Some(found) = self.table.find_map(hash, &mut key) {
            return Some(found);
        }
        if self.moving() || !self.spilled.is_empty() {
            return self.find_elsewhere(hash, key);
        }
        None
    }

    /// The old table and the spilled keys: only a miss in the current table gets here.
    #[inline(never)]
    fn find_elsewhere<R>(&self, hash: u64, mut key: impl FnMut(u32) -> Option<R>) -> Option<R> {
        if self.moving()
            && let Some(found) = self.old.find_map(hash, &mut key)
        {
            return Some(found);
        }
        if self.spilled.is_empty() {
            return None;
        }
        let sig = signature(hash);
        self.spilled
            .iter()
            .filter(|&&(s, _)| s == sig)
            .find_map(|&(_, value)| key(value))
    }

    /// Stores `value` under `hash`, advancing growth by a step. False when every bucket
    /// within reach is full (practically never).
    #[inline]
    pub fn insert(&mut self, hash: u64, value: u32) -> bool {
        if self.keys >= self.step_at {
            self.step();
        }
        let stored = self.table.insert(hash, value);
        self.keys += usize::from(stored);
        stored
    }

    /// One step of growth: start it, clear some of the next table, or move some keys.
    #[cold]
    fn step(&mut self) {
        if self.moving() {
            for _ in 0..MOVES_PER_INSERT {
                if self.moving() {
                    self.move_one();
                }
            }
        } else if self.next.is_some() {
            self.clear_some();
        } else {
            self.start_growing();
        }
        self.set_step_at();
    }

    /// Removes the entry holding exactly `value` under `hash`. False when absent.
    pub fn remove(&mut self, hash: u64, value: u32) -> bool {
        let removed = self.table.remove(hash, value)
            || (self.moving() && self.old.remove(hash, value))
            || self.remove_spilled(signature(hash), value);
        self.keys -= usize::from(removed);
        removed
    }

    fn remove_spilled(&mut self, sig: u32, value: u32) -> bool {
        match self.spilled.iter().position(|&key| key == (sig, value)) {
            Some(at) => {
                self.spilled.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// Grows at once to hold `keys` keys (up to `max_keys`) at half load, moving every key
    /// now, and starts no growth before there are more: for a caller that wants no
    /// allocation, and no moving, while they come.
    pub fn reserve(&mut self, keys: usize) {
        let keys = keys.min(self.max_keys);
        self.reserved = self.reserved.max(keys);
        self.set_step_at();
        let lanes = keys.saturating_mul(2);
        if buckets_for(lanes) <= self.table.buckets.len() {
            return;
        }
        while self.moving() {
            self.move_one();
        }
        self.next = None;
        self.switch_to(FlowIndex::with_lanes(lanes));
        while self.moving() {
            self.move_one();
        }
        self.set_step_at();
    }

    /// Allocates the next table, twice as large (up to what `max_keys` needs at half
    /// load), to be cleared over the next inserts.
    fn start_growing(&mut self) {
        let lanes = (self.table.lanes() * 2).min(self.max_keys.saturating_mul(2));
        let buckets = buckets_for(lanes);
        if buckets <= self.table.buckets.len() {
            return; // at the cap: the table already has room for `max_keys` at half load
        }
        self.next = Some(Box::new_uninit_slice(buckets));
        self.cleared = 0;
        self.clear_some();
    }

    /// Clears the next few buckets of the next table; once all are, moves to it.
    fn clear_some(&mut self) {
        let Some(next) = &mut self.next else { return };
        let end = (self.cleared + CLEARS_PER_INSERT).min(next.len());
        for bucket in &mut next[self.cleared..end] {
            bucket.write(EMPTY_BUCKET);
        }
        self.cleared = end;
        if end == next.len()
            && let Some(next) = self.next.take()
        {
            // SAFETY: every bucket of `next` was written above, over this and earlier calls.
            let buckets = unsafe { next.assume_init() };
            self.switch_to(FlowIndex { buckets });
        }
    }

    /// Makes `table` the current table and the current one the old, to move from.
    fn switch_to(&mut self, table: FlowIndex) {
        self.old = std::mem::replace(&mut self.table, table);
        self.moved = 0;
        for (sig, value) in std::mem::take(&mut self.spilled) {
            place(&mut self.table, &mut self.spilled, sig, value);
        }
    }

    /// Moves the next old bucket's keys into the table; frees the old table after its last.
    fn move_one(&mut self) {
        let GrowingIndex {
            table,
            old,
            moved,
            spilled,
            ..
        } = self;
        old.drain(*moved, |sig, value| place(table, spilled, sig, value));
        *moved += 1;
        if *moved == old.buckets.len() {
            *old = FlowIndex {
                buckets: Box::new([]),
            };
        }
    }
}

/// Stores a moving key in `table`, or in `spilled` when its neighbourhood is full.
fn place(table: &mut FlowIndex, spilled: &mut Vec<(u32, u32)>, sig: u32, value: u32) {
    if !table.insert_signed(sig, value) {
        spilled.push((sig, value));
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

    fn ops(len: usize) -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            prop_oneof![
                3 => any::<u16>().prop_map(Op::Insert),
                1 => any::<u16>().prop_map(Op::Remove),
            ],
            0..len,
        )
    }

    /// A key's hash; `crowd` > 0 puts a third or more of the keys' signatures, and with
    /// them their home buckets, into one quarter of the table, so home buckets overflow.
    fn hash(k: u16, crowd: u64) -> u64 {
        let h = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if crowd == 0 {
            h
        } else {
            ((u64::from(k) % (crowd * 3)) << 62) | (h >> 2)
        }
    }

    proptest! {
        /// The fixed index, half full at capacity, agrees with a HashMap model under any
        /// sequence of inserts and removes, including hashes crowded into few buckets.
        #[test]
        fn behaves_like_a_map(ops in ops(400), crowd in 0u64..4) {
            let mut index = FlowIndex::new(300);
            let mut model: HashMap<u16, u32> = HashMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(k) if !model.contains_key(&k) && model.len() < 300 => {
                        prop_assert!(index.insert(hash(k, crowd), n as u32));
                        model.insert(k, n as u32);
                    }
                    Op::Remove(k) => {
                        let expected = model.remove(&k);
                        let removed = expected.is_some_and(|v| index.remove(hash(k, crowd), v));
                        prop_assert_eq!(removed, expected.is_some());
                    }
                    _ => {}
                }
                for (&k, &v) in &model {
                    prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
                }
            }
        }

        /// The growing index agrees with a HashMap model while it grows from its first
        /// kilobyte through several doublings (lookups reading both tables mid-move), and
        /// stops growing at its cap.
        #[test]
        fn grows_like_a_map(ops in ops(3000), crowd in 0u64..4, cap in 1usize..2000) {
            let mut index = GrowingIndex::new(cap);
            let mut model: HashMap<u16, u32> = HashMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(k) if !model.contains_key(&k) && model.len() < cap => {
                        prop_assert!(index.insert(hash(k, crowd), n as u32));
                        model.insert(k, n as u32);
                        prop_assert_eq!(index.find(hash(k, crowd), |x| x == n as u32), Some(n as u32));
                    }
                    Op::Remove(k) => {
                        let expected = model.remove(&k);
                        let removed = expected.is_some_and(|v| index.remove(hash(k, crowd), v));
                        prop_assert_eq!(removed, expected.is_some());
                        prop_assert_eq!(index.find(hash(k, crowd), |_| true).filter(|_| expected.is_some()), None);
                    }
                    _ => {}
                }
                prop_assert_eq!(index.keys, model.len());
                if n % 64 == 0 {
                    for (&k, &v) in &model {
                        prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
                    }
                }
            }
            for (&k, &v) in &model {
                prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
            }
            // Never more than twice what the cap needs at half load (a move in progress).
            let full = FlowIndex::new(cap).bytes();
            prop_assert!(index.bytes() <= 2 * full + 16 * 64, "{} > {}", index.bytes(), full);
        }
    }

    #[test]
    fn a_move_that_finds_no_room_keeps_the_key() {
        // Same-hash keys (home bucket 0 in every table size) fill the old table's whole
        // neighbourhood; once growth switches tables, more of them crowd the new table's
        // neighbourhood before the old keys are moved, so some moves find no room.
        let same = 1u64 << 32;
        // Spread over the middle half of the signatures: homes far from bucket 0.
        let far = |k: u32| u64::from(0x4000_0000 + (k.wrapping_mul(0x9e37_79b9) >> 1)) << 32;
        let mut index = GrowingIndex::new(1 << 20);
        index.reserve(400);
        let mut stored: Vec<(u64, u32)> = Vec::new();
        for value in 0..224 {
            assert!(index.insert(same, value));
            stored.push((same, value));
        }
        let mut value = 1000;
        while !index.moving() {
            assert!(index.insert(far(value), value));
            stored.push((far(value), value));
            value += 1;
        }
        for value in 2000..2050 {
            if index.insert(same, value) {
                stored.push((same, value));
            }
        }
        assert!(
            !index.spilled.is_empty(),
            "the last moves found the neighbourhood full"
        );
        assert_eq!(index.keys, stored.len());
        for &(hash, v) in &stored {
            assert_eq!(index.find(hash, |x| x == v), Some(v), "value {v}");
        }
        for &(hash, v) in &stored {
            assert!(index.remove(hash, v), "value {v}");
            assert_eq!(index.find(hash, |x| x == v), None);
        }
        assert_eq!(index.keys, 0);
    }

    #[test]
    fn a_reserved_index_takes_its_keys_without_growing() {
        let mut index = GrowingIndex::new(10_000);
        index.insert(hash(1, 0), 1);
        index.reserve(5_000);
        let bytes = index.bytes();
        assert!(bytes >= FlowIndex::new(5_000).bytes(), "{bytes}");
        for k in 2..5_000u16 {
            assert!(index.insert(hash(k, 0), u32::from(k)));
        }
        assert_eq!(index.bytes(), bytes);
        assert!((1..5_000u16).all(|k| index.find(hash(k, 0), |v| v == u32::from(k)).is_some()));
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
