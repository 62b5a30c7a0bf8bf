//! One tracked connection, as stored in the table's slab.

use std::time::Duration;

use super::state::State;
use super::tuple::{Direction, Tuple};
use crate::addr::Addr;
use crate::checksum::TupleChange;
use crate::time::Instant;
use crate::verdict::Rewrite;

/// One tracked connection. An IPv4 entry is one cache line, aligned to it, so the
/// batch path's single prefetch brings in all of it.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Entry<A> {
    /// The tuple of the first packet as it arrived.
    pub original: Tuple<A>,
    /// The tuple replies arrive with (after DNAT and masquerade of the original).
    pub reply: Tuple<A>,
    /// When the connection is forgotten unless another packet comes.
    pub expires: Instant,
    /// Current state, which picked `expires`.
    pub state: State,
    /// Source NAT (masquerade) applies when the original direction leaves the node.
    pub masquerade: bool,
    /// `expires` when the entry took its place in its state's list; the list is sorted
    /// by it, and `expires` runs ahead of it by less than [`RELINK_AFTER`].
    pub(super) linked_expiry: Instant,
    pub(super) prev: u32,
    pub(super) next: u32,
    /// What each direction's rewrite at the arriving hook does to the checksums, and
    /// which sides it rewrites, indexed by [`Direction`]: the original's DNAT, the
    /// reply's reverse NAT. Kept so an established packet compares no tuples.
    pub(super) changes: [TupleChange; 2],
    pub(super) rewrites: [Rewrite; 2],
}

impl<A: Addr> Entry<A> {
    /// What the arriving hook's rewrite of a packet going `direction` does to its
    /// checksums, and which sides it rewrites.
    #[inline(always)]
    pub(crate) fn translation(&self, direction: Direction) -> (TupleChange, Rewrite) {
        (
            self.changes[direction as usize],
            self.rewrites[direction as usize],
        )
    }

    /// The tuple a packet of the original direction has after DNAT, before masquerade.
    pub fn post_dnat(&self) -> Tuple<A> {
        Tuple {
            src: self.original.src,
            sport: self.original.sport,
            dst: self.reply.src,
            dport: self.reply.sport,
            protocol: self.original.protocol,
        }
    }

    /// Destination NAT applies (the reply comes from somewhere else than the original
    /// destination).
    pub fn dnat(&self) -> bool {
        self.reply.src != self.original.dst || self.reply.sport != self.original.dport
    }
}

/// A packet that keeps a connection in its state only moves the entry to the tail of the
/// state's list once its timer has run this much since the entry was placed there: busy
/// connections then touch one cache line per packet, not three, and expiry (and `poll_at`)
/// may come this much late, never early.
pub const RELINK_AFTER: Duration = Duration::from_millis(100);
