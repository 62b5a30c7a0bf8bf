//! Connection tracking: a fixed-capacity table of connections, each reachable by its
//! original and its reply tuple, with netfilter's per-state timeouts.
//!
//! Entries live in a slab; the hash table stores only `index << 1 | direction` (4 bytes a
//! key), so a connection costs one entry plus two 4-byte slots. Every state has its own
//! timeout, so entries of one state expire in the order they were last touched: one
//! intrusive list per state keeps them sorted, expiry pops list heads, and `poll_at` is the
//! earliest head. Nothing allocates after construction.
//!
//! The engine keeps one [`Conntrack`] per address family; this module is public for tools
//! and tests that want to drive a table directly.

mod entry;
mod expiry;
mod insert;
mod lookup;
mod state;
#[cfg(test)]
mod tests;
mod tuple;

pub use entry::{Entry, RELINK_AFTER};
pub use insert::InsertError;
pub use state::State;
pub(crate) use tuple::mix;
pub use tuple::{Direction, Tuple};

use crate::addr::Addr;
use crate::flow_index::FlowIndex;
use crate::model::ConntrackTimeouts;
use crate::time::Instant;
use state::STATES;

const NIL: u32 = u32::MAX;

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
/// let mut ct = Conntrack::new(1024, ConntrackTimeouts::default());
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
/// ```
pub struct Conntrack<A> {
    entries: Vec<Entry<A>>,
    /// Head of the free-slot chain (through `next`).
    free: u32,
    keys: FlowIndex,
    /// Masqueraded connections by their post-DNAT tuple, for the leaving hook.
    snat_keys: FlowIndex,
    lists: [List; STATES],
    capacity: usize,
    len: usize,
    timeouts: ConntrackTimeouts,
}

impl<A: Addr> Conntrack<A> {
    /// An empty table for at most `capacity` connections (allocated now, never again),
    /// with `timeouts` per state.
    pub fn new(capacity: usize, timeouts: ConntrackTimeouts) -> Conntrack<A> {
        let capacity = capacity.min(NIL as usize / 2 - 1);
        // Every slot is written now, chained free in order: the first connections do not
        // pay the page faults of fresh memory on the packet path.
        let unused = Tuple {
            src: A::read(&[0; 16]),
            dst: A::read(&[0; 16]),
            sport: 0,
            dport: 0,
            protocol: 0,
        };
        let entries = (0..capacity)
            .map(|i| Entry {
                original: unused,
                reply: unused,
                expires: Instant::ZERO,
                state: State::TcpClose,
                masquerade: false,
                linked_expiry: Instant::ZERO,
                prev: NIL,
                next: if i + 1 < capacity { i as u32 + 1 } else { NIL },
            })
            .collect();
        Conntrack {
            entries,
            free: if capacity > 0 { 0 } else { NIL },
            keys: FlowIndex::new(capacity * 2),
            // Only masqueraded connections are keyed here: usually far from full.
            snat_keys: FlowIndex::dense(capacity),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; STATES],
            capacity,
            len: 0,
            timeouts,
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

    /// The connection at `index`. Panics on an index never handed out; a removed
    /// connection's index reads stale or reused data.
    pub fn entry(&self, index: u32) -> &Entry<A> {
        &self.entries[index as usize]
    }

    /// Every live connection's index.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.lists.iter().flat_map(move |list| {
            std::iter::successors((list.head != NIL).then_some(list.head), move |&i| {
                let next = self.entries[i as usize].next;
                (next != NIL).then_some(next)
            })
        })
    }

    /// Timeouts for connections touched from now on. A shorter timeout can leave a state's
    /// list out of order until its older entries go: expiry may then come late, never
    /// early, and lookups still honour each entry's own deadline.
    pub fn set_timeouts(&mut self, timeouts: ConntrackTimeouts) {
        self.timeouts = timeouts;
    }
}
