//! [`GrowingIndex`]: a [`FlowIndex`] that doubles by incremental rehash.

use super::*;

mod offload;

pub(crate) use offload::fresh_table;

/// Lanes a [`GrowingIndex`] starts with (16 buckets, 1 KiB), unless its cap needs fewer.
pub(super) const FIRST_LANES: usize = 16 * LANES;
/// Buckets of the next table an insert clears, and buckets of the old table it moves.
/// Growth starts at a quarter full: clearing the next table (twice the buckets) takes a
/// twenty-eighth of the lanes in inserts, so the old table is never more than about a
/// third full; moving it takes another twenty-eighth. A clear writes 512 bytes, so one
/// batch of 256 new connections touches at most 256 KiB of fresh memory: a fraction of
/// one huge page, 64 base pages, whose first-touch faults, not the copying, are what
/// growth costs a batch. Each step's call is what an insert pays most for growth, so a
/// step does more: eight clears an insert instead of two cost 19 instructions a new flow
/// less (23 with the memory helper), four moves instead of two 9 less (6 measured again
/// on 2026-12-07). Eight moves were 3 less again, but a batch of 64 new connections then
/// moved 1,024 old buckets, about 1,800 keys: filling a million connections, the batches
/// of each large growth took 40-65 us more than those between growths; at four, 20-40 us
/// more (docs/benchmarks.md).
const CLEARS_PER_INSERT: usize = 8;
const MOVES_PER_INSERT: usize = 4;

/// A [`FlowIndex`] that grows with the keys it holds, from 1 KiB up to what `max_keys`
/// keys need at half load, by incremental rehash (see the module docs).
pub(crate) struct GrowingIndex {
    table: FlowIndex,
    /// The next table while it is being cleared, `cleared` buckets of it so far.
    next: Option<Box<[MaybeUninit<Bucket>]>>,
    cleared: usize,
    /// The table being emptied into `table` while growing.
    old: Option<FlowIndex>,
    /// Buckets of `old` already moved.
    moved: usize,
    /// Keys a move could not place (every bucket within reach full in the new table):
    /// kept here, never dropped, and placed again at the next growth. Practically empty.
    pub(super) spilled: Vec<(u32, u32)>,
    pub(super) keys: usize,
    /// Inserts take the growth step from this many keys on: a quarter of the table's
    /// lanes (or what `reserve` made room for), zero while a table is being cleared or
    /// moved, never at the cap.
    step_at: usize,
    /// Keys `reserve` made room for.
    reserved: usize,
    max_keys: usize,
    /// Off the packet path (see [`crate::offload`]): the next table comes ready from
    /// [`GrowingIndex::supply`] when it arrives in time, and an emptied old table waits
    /// in `retired` for the caller to free.
    offloaded: bool,
    /// Offloaded, the keys its first table asked for makes room for (see `offload`).
    first_keys: usize,
    /// A supplied next table: every bucket empty, every page faulted in.
    spare: Option<FlowIndex>,
    /// A request for `spare` is out.
    requested: bool,
    /// A table it stopped using, kept unboxed: retiring one on the packet path allocates
    /// nothing.
    retired: Option<FlowIndex>,
    /// A next table it was clearing when a supplied one came (retired between batches).
    abandoned: Option<Box<[MaybeUninit<Bucket>]>>,
    /// Next tables it allocated itself, none supplied: cleared, and so faulted in, on the
    /// packet path.
    own_tables: usize,
}

impl GrowingIndex {
    /// An empty index that will hold up to `max_keys` keys.
    pub fn new(max_keys: usize) -> GrowingIndex {
        GrowingIndex {
            table: FlowIndex::with_lanes(FIRST_LANES.min(max_keys.saturating_mul(2))),
            next: None,
            cleared: 0,
            old: None,
            moved: 0,
            spilled: Vec::new(),
            keys: 0,
            step_at: 0,
            reserved: 0,
            max_keys,
            offloaded: false,
            first_keys: 0,
            spare: None,
            requested: false,
            retired: None,
            abandoned: None,
            own_tables: 0,
        }
        .with_step_at()
    }

    /// Sets `step_at` for the state the index is in.
    fn with_step_at(mut self) -> GrowingIndex {
        self.set_step_at();
        self
    }

    fn set_step_at(&mut self) {
        self.step_at = if self.moving() || self.next.is_some() {
            0
        } else {
            self.resting_step_at()
        };
    }

    /// `step_at` while no table is being cleared or moved. Out of line: the growth steps,
    /// one an insert while growing, then compute none of it.
    #[inline(never)]
    fn resting_step_at(&self) -> usize {
        if self.table.buckets.len() >= buckets_for(self.max_keys.saturating_mul(2)) {
            usize::MAX
        } else if self.requested {
            // The next table is on its way: a growth that waits for it, up to three eighths
            // full (still far from the half this index is sized for), faults in nothing.
            (self.table.lanes() / 8 * 3).max(self.reserved)
        } else {
            self.growth_at()
        }
    }

    /// Keys from which the index grows: a quarter of its lanes, or what `reserve` made
    /// room for.
    fn growth_at(&self) -> usize {
        (self.table.lanes() / 4).max(self.reserved)
    }

    /// Bytes held (all three tables while growing, and a supplied one).
    pub fn bytes(&self) -> usize {
        self.table.bytes()
            + self.old.as_ref().map_or(0, FlowIndex::bytes)
            + self.spare.as_ref().map_or(0, FlowIndex::bytes)
            + self.retired.as_ref().map_or(0, FlowIndex::bytes)
            + self
                .abandoned
                .as_ref()
                .map_or(0, |abandoned| std::mem::size_of_val(&**abandoned))
            + self
                .next
                .as_ref()
                .map_or(0, |next| std::mem::size_of_val(&**next))
            + self.spilled.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// Buckets of the current table.
    #[cfg(test)]
    pub(super) fn buckets(&self) -> usize {
        self.table.buckets.len()
    }

    #[inline(always)]
    pub(super) fn moving(&self) -> bool {
        self.old.is_some()
    }

    /// The old table, while the buckets of it that may hold a key signed `sig` (its home
    /// and the buckets it may have overflowed into) are not all moved: a key's lookup
    /// need not read a bucket already emptied. Moving goes in bucket order, so past the
    /// first buckets of a move most lookups read one table, not two.
    #[inline(always)]
    fn old_holding(&self, sig: u32) -> Option<&FlowIndex> {
        let old = self.old.as_ref()?;
        (old.home(sig) + old.reach() > self.moved).then_some(old)
    }

    /// Starts loading the home bucket of `hash` into cache (of both tables while the old
    /// one may hold it).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash);
        if let Some(old) = self.old_holding(signature(hash)) {
            old.prefetch(hash);
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
        if let Some(old) = self.old_holding(signature(hash))
            && let Some(found) = old.find_map(hash, &mut key)
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
            self.move_some(MOVES_PER_INSERT);
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
            || self.old.as_mut().is_some_and(|old| old.remove(hash, value))
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
        self.move_some(usize::MAX);
        self.next = None;
        self.switch_to(FlowIndex::with_lanes(lanes));
        self.move_some(usize::MAX);
        self.set_step_at();
    }

    /// Allocates the next table, twice as large (up to what `max_keys` needs at half
    /// load), to be cleared over the next inserts.
    fn start_growing(&mut self) {
        let Some(buckets) = self.next_buckets() else {
            return; // at the cap: the table already has room for `max_keys` at half load
        };
        if let Some(spare) = self.spare.take() {
            if spare.buckets.len() == buckets {
                self.switch_to(spare);
                return;
            }
            self.retire(spare);
        }
        self.next = Some(Box::new_uninit_slice(buckets));
        self.own_tables += 1;
        self.cleared = 0;
        self.clear_some();
    }

    /// Clears the next few buckets of the next table; once all are, moves to it.
    fn clear_some(&mut self) {
        let Some(next) = &mut self.next else { return };
        let rest = &mut next[self.cleared..];
        // A whole step's buckets as an array: stored inline, with no call to `memset`.
        let end = if let Some(some) = rest.first_chunk_mut::<CLEARS_PER_INSERT>() {
            some.fill(MaybeUninit::new(EMPTY_BUCKET));
            self.cleared + CLEARS_PER_INSERT
        } else {
            rest.fill(MaybeUninit::new(EMPTY_BUCKET));
            next.len()
        };
        self.cleared = end;
        if end == next.len()
            && let Some(next) = self.next.take()
        {
            // SAFETY: every bucket of `next` was written above, over this and earlier calls.
            let buckets = unsafe { next.assume_init() };
            self.switch_to(FlowIndex::from_buckets(buckets));
        }
    }

    /// Makes `table` the current table and the current one the old, to move from.
    fn switch_to(&mut self, table: FlowIndex) {
        self.old = Some(std::mem::replace(&mut self.table, table));
        self.moved = 0;
        for (sig, value) in std::mem::take(&mut self.spilled) {
            place(&mut self.table, &mut self.spilled, sig, value);
        }
    }

    /// Moves the keys of the next `buckets` old buckets (fewer at the old table's end)
    /// into the table; frees the old table after its last. One call for a step's
    /// buckets: a call per bucket cost about as much as moving its keys.
    fn move_some(&mut self, buckets: usize) {
        let GrowingIndex {
            table,
            old,
            moved,
            spilled,
            ..
        } = self;
        let Some(moving) = old else {
            return;
        };
        let end = moving.buckets.len().min(moved.saturating_add(buckets));
        for bucket in *moved..end {
            moving.drain(bucket, |sig, value| place(table, spilled, sig, value));
        }
        *moved = end;
        if end == moving.buckets.len()
            && let Some(emptied) = old.take()
            && self.offloaded
        {
            self.retire(emptied);
        }
    }

    /// Moves the next `buckets` old buckets, as inserts do a few at a time.
    #[cfg(test)]
    pub(super) fn move_buckets(&mut self, buckets: usize) {
        self.move_some(buckets);
    }

    /// Buckets of the next table, twice as large, or what `max_keys` needs at half load
    /// when that is less than twice as large again: a last growth of a few percent would
    /// move every key for little room (filling 1M connections, the step from 3.7M lanes
    /// to the cap's 4M moved 1.4M keys). `None` at the cap.
    fn next_buckets(&self) -> Option<usize> {
        self.larger_table(self.table.lanes() * 2)
    }

    /// Buckets of a table of `lanes`, or of the cap's (`max_keys` at half load) when that
    /// is less than twice as large; `None` when no larger than the table now.
    fn larger_table(&self, lanes: usize) -> Option<usize> {
        let cap = self.max_keys.saturating_mul(2);
        let lanes = if lanes.saturating_mul(2) > cap {
            cap
        } else {
            lanes
        };
        let buckets = buckets_for(lanes);
        (buckets > self.table.buckets.len()).then_some(buckets)
    }
}

/// Stores a moving key in `table`, or in `spilled` when its neighbourhood is full.
/// Inlined into the move, a call per key cost more than the store.
#[inline(always)]
fn place(table: &mut FlowIndex, spilled: &mut Vec<(u32, u32)>, sig: u32, value: u32) {
    if !table.insert_signed(sig, value) {
        spill(spilled, sig, value);
    }
}

#[cold]
fn spill(spilled: &mut Vec<(u32, u32)>, sig: u32, value: u32) {
    spilled.push((sig, value));
}
