//! Finding a connection by a packet's tuple, and the prefetches that let a batch do it from cache.

use super::Conntrack;
use super::tuple::{Direction, Tuple, tuple_hash};
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
                crate::flow_index::prefetch(&self.entries[(slot >> 1) as usize]);
                true
            }
            None => false,
        }
    }

    #[inline]
    pub(super) fn key_tuple(&self, slot: u32) -> &Tuple<A> {
        let entry = &self.entries[(slot >> 1) as usize];
        if slot & 1 == 0 {
            &entry.original
        } else {
            &entry.reply
        }
    }

    /// The connection `tuple` belongs to (as its original or its reply tuple), and the
    /// packet's direction in it. Does not check expiry: compare [`Entry::expires`](super::Entry::expires).
    #[inline]
    pub fn lookup(&self, tuple: &Tuple<A>) -> Option<(u32, Direction)> {
        self.lookup_hashed(tuple, tuple_hash(tuple))
    }

    /// [`Conntrack::lookup`] of a tuple whose [`Conntrack::hash`] the caller has.
    #[inline(always)]
    pub(super) fn lookup_hashed(&self, tuple: &Tuple<A>, hash: u64) -> Option<(u32, Direction)> {
        self.keys
            .find(hash, |slot| self.key_tuple(slot) == tuple)
            .map(|slot| {
                let direction = if slot & 1 == 0 {
                    Direction::Original
                } else {
                    Direction::Reply
                };
                (slot >> 1, direction)
            })
    }

    /// [`Conntrack::lookup`], hiding a connection whose timer ran out by `now` (it is only
    /// removed by [`Conntrack::expire`] or by a new connection taking its place).
    #[inline]
    pub fn lookup_live(&self, tuple: &Tuple<A>, now: Instant) -> Option<(u32, Direction)> {
        self.lookup(tuple)
            .filter(|&(index, _)| self.entries[index as usize].expires > now)
    }

    /// The masqueraded connection whose original-direction packets, after DNAT, have `tuple`.
    #[inline]
    pub fn lookup_masqueraded(&self, tuple: &Tuple<A>) -> Option<u32> {
        self.snat_keys.find(tuple_hash(tuple), |index| {
            self.entries[index as usize].post_dnat() == *tuple
        })
    }

    /// Whether `tuple` is the original or reply tuple of a tracked connection.
    pub fn contains(&self, tuple: &Tuple<A>) -> bool {
        self.lookup(tuple).is_some()
    }
}
