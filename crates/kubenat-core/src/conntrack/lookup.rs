//! Finding a connection by a packet's tuple, and the prefetches that let a batch do it from cache.

use super::tuple::{Direction, Tuple, tuple_hash};
use super::{Conntrack, Entry};
use crate::addr::Addr;
use crate::time::Instant;

/// A 512-bit filter of the hashes of keys stored since it was cleared (one bit per key):
/// a new connection's first packet, looked up ahead, need not be probed again because
/// other new connections of its batch were stored meanwhile. A 64-packet stride stores
/// at most 128 keys: under a quarter of the bits are set at its end.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RecentKeys([u64; 8]);

impl RecentKeys {
    #[inline(always)]
    fn bit(hash: u64) -> (usize, u64) {
        ((hash >> 6) as usize & 7, 1 << (hash & 63))
    }

    #[inline(always)]
    pub(super) fn add(&mut self, hash: u64) {
        let (word, bit) = Self::bit(hash);
        self.0[word] |= bit;
    }

    #[inline(always)]
    fn may_hold(&self, hash: u64) -> bool {
        let (word, bit) = Self::bit(hash);
        self.0[word] & bit != 0
    }
}

/// What a batch read of a packet's connection before processing it
/// ([`Conntrack::look_ahead`]): its tuple's hash, the index value its bucket named first,
/// and the table's store and removal counts then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lookahead {
    hash: u64,
    candidate: Option<u32>,
    stored: u32,
    removed: u32,
}

impl Lookahead {
    /// Whether the bucket named no candidate: the packet likely starts a connection.
    #[inline]
    pub(crate) fn looks_new(&self) -> bool {
        self.candidate.is_none()
    }

    /// The tuple's [`Conntrack::hash`].
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

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

    /// Starts a batch stride's look-aheads: the lookups that follow may trust a look-ahead
    /// that found no candidate while no key stored since could be its tuple's.
    #[inline(always)]
    pub(crate) fn begin_look_ahead(&mut self) {
        self.recent = RecentKeys::default();
    }

    /// Reads the index bucket (prefetched earlier) of a tuple hashed by
    /// [`Conntrack::hash`] and starts loading the entry it names first, if any (none: the
    /// packet is likely a new flow). The lookup that follows, a few packets later,
    /// starts from what this found ([`Conntrack::lookup_ahead`]).
    #[inline(always)]
    pub(crate) fn look_ahead(&self, hash: u64) -> Lookahead {
        let candidate = self.keys.find(hash, |_| true);
        if let Some(slot) = candidate {
            crate::flow_index::prefetch(&self.entries[slot >> 1]);
        }
        Lookahead {
            hash,
            candidate,
            stored: self.stored,
            removed: self.removed,
        }
    }

    /// [`Conntrack::lookup_entry`] of the tuple `ahead` was taken for (since the last
    /// [`Conntrack::begin_look_ahead`]). Entries never move, so while no key was removed
    /// the candidate, if it holds this tuple, is its live connection; while no key that
    /// could be this tuple's was stored, a bucket that named no candidate still names none.
    /// Otherwise, a lookup by the hash already computed.
    #[inline(always)]
    pub(crate) fn lookup_ahead(
        &self,
        tuple: &Tuple<A>,
        ahead: &Lookahead,
    ) -> Option<(u32, Direction, &Entry<A>)> {
        debug_assert_eq!(
            ahead.hash,
            tuple_hash(tuple),
            "a look-ahead of another tuple"
        );
        if let Some(found) = self.confirm_ahead(tuple, ahead) {
            return Some(found);
        }
        let nothing_since = ahead.stored == self.stored || !self.recent.may_hold(ahead.hash);
        if ahead.candidate.is_none() && nothing_since {
            return None;
        }
        self.lookup_hashed(tuple, ahead.hash)
    }

    /// The connection `ahead`'s candidate holds, if it is `tuple`'s and no key was removed
    /// since the look-ahead: no fallback lookup (`None` may then be a false miss).
    #[inline(always)]
    pub(crate) fn confirm_ahead(
        &self,
        tuple: &Tuple<A>,
        ahead: &Lookahead,
    ) -> Option<(u32, Direction, &Entry<A>)> {
        match ahead.candidate {
            Some(slot) if ahead.removed == self.removed => self.confirm(slot, tuple),
            _ => None,
        }
    }

    /// The connection and direction of index value `slot` if its key is `tuple`.
    #[inline(always)]
    fn confirm(&self, slot: u32, tuple: &Tuple<A>) -> Option<(u32, Direction, &Entry<A>)> {
        let entry = &self.entries[slot >> 1];
        let (key, direction) = if slot & 1 == 0 {
            (&entry.original, Direction::Original)
        } else {
            (&entry.reply, Direction::Reply)
        };
        (key == tuple).then_some((slot >> 1, direction, entry))
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
    pub(crate) fn lookup_hashed(
        &self,
        tuple: &Tuple<A>,
        hash: u64,
    ) -> Option<(u32, Direction, &Entry<A>)> {
        self.keys.find_map(hash, |slot| self.confirm(slot, tuple))
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
