//! Finding a connection by a packet's tuple, and the prefetches that let a batch do it from cache.

use super::tuple::{Direction, Tuple, tuple_hash};
use super::{Conntrack, Entry};
use crate::addr::Addr;
use crate::time::Instant;

impl<A: Addr> Conntrack<A> {
    /// The hash a tuple is indexed under.
    #[inline]
    pub fn hash(tuple: &Tuple<A>) -> u64 {
        tuple_hash(tuple)
    }

    /// Starts loading the index bucket of a tuple hashed by [`Conntrack::hash`], so a
    /// lookup a few packets later finds it in cache.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.keys.prefetch(hash);
    }

    /// Starts loading the entry a tuple would match, when its index bucket (prefetched
    /// earlier) names one; false when it names none (the packet is likely a new flow).
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) -> bool {
        match self.keys.find(hash, |_| true) {
            Some(slot) => {
                crate::flow_index::prefetch(&self.entries[slot >> 1]);
                true
            }
            None => false,
        }
    }

    /// The connection `tuple` belongs to (as its original or its reply tuple), and the
    /// packet's direction in it. Does not check expiry: compare [`Entry::expires`](super::Entry::expires).
    #[inline]
    pub fn lookup(&self, tuple: &Tuple<A>) -> Option<(u32, Direction)> {
        self.lookup_hashed(tuple, tuple_hash(tuple))
            .map(|(index, direction, _)| (index, direction))
    }

    /// [`Conntrack::lookup`] with the connection's entry, read once.
    #[inline]
    pub fn lookup_entry(&self, tuple: &Tuple<A>) -> Option<(u32, Direction, &Entry<A>)> {
        self.lookup_hashed(tuple, tuple_hash(tuple))
    }

    /// [`Conntrack::lookup_entry`] of a tuple whose [`Conntrack::hash`] the caller has.
    #[inline(always)]
    pub(super) fn lookup_hashed(
        &self,
        tuple: &Tuple<A>,
        hash: u64,
    ) -> Option<(u32, Direction, &Entry<A>)> {
        self.keys.find_map(hash, |slot| {
            let entry = &self.entries[slot >> 1];
            let (key, direction) = if slot & 1 == 0 {
                (&entry.original, Direction::Original)
            } else {
                (&entry.reply, Direction::Reply)
            };
            (key == tuple).then_some((slot >> 1, direction, entry))
        })
    }

    /// [`Conntrack::lookup`], hiding a connection whose timer ran out by `now` (it is only
    /// removed by [`Conntrack::expire`] or by a new connection taking its place).
    #[inline]
    pub fn lookup_live(&self, tuple: &Tuple<A>, now: Instant) -> Option<(u32, Direction)> {
        self.lookup(tuple)
            .filter(|&(index, _)| self.entries[index].expires > now)
    }

    /// The masqueraded connection whose original-direction packets, after DNAT, have `tuple`.
    #[inline]
    pub fn lookup_masqueraded(&self, tuple: &Tuple<A>) -> Option<u32> {
        self.snat_keys.find(tuple_hash(tuple), |index| {
            self.entries[index].post_dnat() == *tuple
        })
    }

    /// Whether `tuple` is the original or reply tuple of a tracked connection.
    pub fn contains(&self, tuple: &Tuple<A>) -> bool {
        self.lookup(tuple).is_some()
    }
}
