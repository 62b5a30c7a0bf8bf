//! Connection tracking: a table of connections up to a configured maximum, each reachable
//! by its original and its reply tuple, with netfilter's per-state timeouts.
//!
//! Entries live in a slab; the hash table stores only `index << 1 | direction` (4 bytes a
//! key), so a connection costs one entry plus two 4-byte slots. Every state has its own
//! timeout, so entries of one state expire in the order they were last touched: one
//! intrusive list per state keeps them sorted, expiry pops list heads, and `poll_at` is the
//! earliest head.
//!
//! Memory follows the connections, like the kernel's `nf_conntrack_max`, a ceiling rather
//! than a reservation: a new table holds about 2 KiB. Only [`Conntrack::insert`] allocates,
//! and only when the table grows past its high-water mark: the slab by one 1,024-entry
//! chunk (64 KiB for IPv4; entries never move), an index by doubling with incremental
//! rehash (from a quarter full, each insert clears eight buckets of the next table, then
//! moves four of the old one; no insert clears, rehashes or copies a whole table).
//! [`Conntrack::reserve`] grows it ahead instead; an engine can also have the memory
//! faulted in ahead on another thread ([`crate::offload`]). Removing and expiring connections free
//! their slots for reuse but keep the memory.
//!
//! The engine keeps one [`Conntrack`] per address family; this module is public for tools
//! and tests that want to drive a table directly.

mod entry;
mod expiry;
mod insert;
mod lookup;
mod offload;
mod state;
#[cfg(test)]
mod tests;
mod tuple;

pub use entry::{Entry, RELINK_AFTER};
pub use insert::InsertError;
pub(crate) use lookup::Lookahead;
use lookup::RecentKeys;
pub use state::State;
use state::TimeoutNanos;
pub(crate) use tuple::mix;
pub use tuple::{Direction, Tuple};

use crate::addr::Addr;
use crate::flow_index::GrowingIndex;
use crate::model::ConntrackTimeouts;
use crate::slab::Slab;
use state::STATES;

const NIL: u32 = u32::MAX;

/// The most connections one table tracks: an index key is `index << 1 | direction` in 32
/// bits. A larger capacity is taken as this (about 2.1 billion, like the kernel's
/// `nf_conntrack_max`, a 32-bit signed integer).
pub const MAX_CAPACITY: usize = (NIL / 2 - 1) as usize;

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The conntrack table of one address family.
///
/// Connections are addressed by a `u32` index, valid until the connection is removed or
/// expires (the slot is then reused).
///
/// ```
/// use std::net::Ipv4Addr;
/// use kubenat_core::conntrack::{Conntrack, Direction, State, Tuple};
/// use kubenat_core::{ConntrackTimeouts, Instant};
///
/// // A ceiling, not a reservation: the table grows with the connections it tracks.
/// let mut ct = Conntrack::new(1_000_000_000, ConntrackTimeouts::default());
/// assert!(ct.bytes() < 16 * 1024);
/// let original = Tuple {
///     src: Ipv4Addr::new(10, 0, 0, 5),
///     dst: Ipv4Addr::new(10, 96, 0, 10),
///     sport: 40000,
///     dport: 80,
///     protocol: 6,
/// };
/// // DNAT to 10.244.1.5:8080: the endpoint answers the client directly.
/// let reply = Tuple { src: Ipv4Addr::new(10, 244, 1, 5), sport: 8080, ..original.reversed() };
/// let i = ct.insert(original, reply, false, State::TcpSynSent, Instant::ZERO).unwrap();
/// assert_eq!(ct.lookup(&reply), Some((i, Direction::Reply)));
/// assert!(ct.entry(i).dnat());
/// assert_eq!(ct.poll_at(), Some(Instant::from_secs(120)));
/// assert_eq!(ct.expire(Instant::from_secs(120)), 1);
/// assert!(ct.is_empty());
/// assert!(ct.bytes() < 128 * 1024, "one slab chunk and small indexes");
/// ```
pub struct Conntrack<A> {
    entries: Slab<Entry<A>>,
    /// Head of the chain (through `next`) of slots freed by removed connections.
    free: u32,
    keys: GrowingIndex,
    /// Masqueraded connections by their post-DNAT tuple, for the leaving hook.
    snat_keys: GrowingIndex,
    lists: [List; STATES],
    capacity: usize,
    len: usize,
    timeouts: TimeoutNanos,
    /// Keys stored and keys removed so far (wrapping): a [`Lookahead`] taken before
    /// either changed still says what a lookup would find.
    stored: u32,
    removed: u32,
    /// The keys stored since the last [`Conntrack::begin_look_ahead`], as a filter of
    /// their hashes' low bits: a look-ahead that found no candidate still finds none if
    /// its bit is clear, however many other keys were stored since.
    recent: RecentKeys,
}

impl<A: Addr> Conntrack<A> {
    /// An empty table for at most `capacity` connections (at most [`MAX_CAPACITY`]),
    /// with `timeouts` per state. Allocates a few KiB now; the rest as connections come.
    pub fn new(capacity: usize, timeouts: ConntrackTimeouts) -> Conntrack<A> {
        let capacity = capacity.min(MAX_CAPACITY);
        Conntrack {
            entries: Slab::new(),
            free: NIL,
            keys: GrowingIndex::new(capacity * 2),
            // Only masqueraded connections are keyed here.
            snat_keys: GrowingIndex::new(capacity),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; STATES],
            capacity,
            len: 0,
            timeouts: TimeoutNanos::new(&timeouts),
            stored: 0,
            removed: 0,
            recent: RecentKeys::default(),
        }
    }

    /// Connections tracked, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most connections the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the table holds: its slab chunks and both indexes. It grows with the
    /// connections tracked at once, never past what `capacity` of them need.
    pub fn bytes(&self) -> usize {
        self.entries.bytes() + self.keys.bytes() + self.snat_keys.bytes()
    }

    /// Allocates now what `connections` connections need (at most the capacity), so
    /// inserting up to that many at once allocates nothing and moves nothing.
    pub fn reserve(&mut self, connections: usize) {
        let connections = connections.min(self.capacity);
        self.entries.reserve(connections);
        self.keys.reserve(connections * 2);
        self.snat_keys.reserve(connections);
    }

    /// The connection at `index`. Panics on an index past every one handed out; a removed
    /// connection's index reads stale or reused data.
    #[inline]
    pub fn entry(&self, index: u32) -> &Entry<A> {
        &self.entries[index]
    }

    /// The connection marked for masquerade at `index`, if `index` holds one: a removed
    /// connection loses its mark, and an index never handed out gives `None`.
    pub fn masqueraded(&self, index: u32) -> Option<&Entry<A>> {
        ((index as usize) < self.entries.len())
            .then(|| &self.entries[index])
            .filter(|entry| entry.masquerade)
    }

    /// Every live connection's index.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.lists.iter().flat_map(move |list| {
            std::iter::successors((list.head != NIL).then_some(list.head), move |&i| {
                let next = self.entries[i].next;
                (next != NIL).then_some(next)
            })
        })
    }

    /// Timeouts for connections touched from now on. A shorter timeout can leave a state's
    /// list out of order until its older entries go: expiry may then come late, never
    /// early, and lookups still honour each entry's own deadline.
    pub fn set_timeouts(&mut self, timeouts: ConntrackTimeouts) {
        self.timeouts = TimeoutNanos::new(&timeouts);
    }
}
