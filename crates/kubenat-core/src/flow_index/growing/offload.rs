//! A [`GrowingIndex`] off the packet path (see [`crate::offload`]): it asks ahead for its
//! next table, takes it ready, and hands back the tables it empties.

use std::any::Any;

use super::*;
use crate::offload::fault_in;

impl GrowingIndex {
    /// From now on, asks ahead for its next table and hands back the tables it empties
    /// (see [`crate::offload`]). Its first request, made at once, is for a table with room
    /// for `first_keys` keys (up to `max_keys`) before it grows again: a small table fills
    /// in a few batches, sooner than a helper thread can fault in the next (250-900 us for
    /// a fresh huge page on the benchmarks' VM), and then grew on the packet path, taking
    /// the fault there.
    pub fn offload(&mut self, first_keys: usize) {
        self.offloaded = true;
        self.first_keys = first_keys.min(self.max_keys);
    }

    /// Buckets of the table to ask for first, while the table is smaller: growth starts at
    /// a quarter of the lanes, and the cap is half load. As for a growth, the cap at once
    /// where it is less than twice as large: no small last step after it.
    fn first_buckets(&self) -> Option<usize> {
        self.larger_table(self.first_keys.saturating_mul(4))
    }

    /// The buckets of a next table to fault in off the packet path, once: offloaded, from
    /// an eighth full (half way to growing, as soon as the last growth is done), and none
    /// supplied or asked for yet. Until it comes the index waits to grow, up to three
    /// eighths full: an eighth and more of its lanes in new keys, tens of milliseconds at
    /// millions of new connections a second.
    pub fn wanted(&mut self) -> Option<usize> {
        if !self.offloaded
            || self.requested
            || self.spare.is_some()
            || self.next.is_some()
            || self.moving()
        {
            return None;
        }
        let buckets = match self.first_buckets() {
            Some(first) => first,
            None if self.keys < self.growth_at() / 2 => return None,
            None => self.next_buckets()?,
        };
        self.requested = true;
        self.set_step_at();
        Some(buckets)
    }

    /// Takes a next table (empty, from [`fresh_table`]) for the growth ahead; gives it
    /// back when it is not the size that growth needs (it came too late, or a `reserve`
    /// grew the index meanwhile). A growth that started clearing its own next table
    /// switches to this one at once, and so does the first table, larger than a growth.
    pub fn supply(&mut self, table: FlowIndex) -> Result<(), FlowIndex> {
        self.requested = false;
        let size = Some(table.buckets.len());
        let first = size == self.first_buckets() && size > self.next_buckets();
        let taken =
            !self.moving() && self.spare.is_none() && (size == self.next_buckets() || first);
        let result = match (taken, self.next.take()) {
            (false, next) => {
                self.next = next;
                Err(table)
            }
            (true, Some(cleared_in_part)) => {
                self.abandoned = Some(cleared_in_part);
                self.switch_to(table);
                Ok(())
            }
            (true, None) if first => {
                self.switch_to(table);
                Ok(())
            }
            (true, None) => {
                self.spare = Some(table);
                Ok(())
            }
        };
        self.set_step_at();
        result
    }

    /// Next tables it allocated and cleared itself as keys came in: every one when not
    /// offloaded, the ones that did not come in time when offloaded.
    pub fn own_tables(&self) -> usize {
        self.own_tables
    }

    /// Whether a growth is clearing a next table of its own (none was supplied in time).
    #[cfg(test)]
    pub fn clearing_its_own(&self) -> bool {
        self.next.is_some()
    }

    /// A table this index no longer uses, for the caller to free off the packet path.
    pub fn take_retired(&mut self) -> Option<Box<dyn Any + Send>> {
        match self.retired.take() {
            Some(table) => Some(Box::new(table)),
            None => Some(Box::new(self.abandoned.take()?)),
        }
    }

    /// Keeps `table` for [`GrowingIndex::take_retired`]; with one already waiting (the
    /// caller is not collecting), frees it here instead.
    pub(super) fn retire(&mut self, table: FlowIndex) {
        if self.retired.is_none() {
            self.retired = Some(table);
        }
    }
}

/// A table of `buckets` (one at least) empty buckets with every page written, so using it faults nothing:
/// for [`GrowingIndex::supply`], made on any thread.
pub(crate) fn fresh_table(buckets: usize) -> Box<dyn Any + Send> {
    let mut buckets = Box::<[Bucket]>::new_uninit_slice(buckets.max(1));
    fault_in(&mut buckets);
    for bucket in buckets.iter_mut() {
        bucket.write(EMPTY_BUCKET);
    }
    // SAFETY: every bucket was written just above.
    let buckets = unsafe { buckets.assume_init() };
    Box::new(FlowIndex::from_buckets(buckets))
}
