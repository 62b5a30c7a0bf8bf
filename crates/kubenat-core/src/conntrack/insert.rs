//! Adding and removing connections, keeping the slab, the two indexes and the state lists in step.

use std::fmt;

use super::entry::Entry;
use super::state::State;
use super::tuple::{Tuple, tuple_hash};
use super::{Conntrack, NIL};
use crate::addr::Addr;
use crate::time::Instant;
use crate::verdict::Rewrite;

/// Why a connection could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertError {
    /// The table holds its capacity of connections.
    Full,
    /// The reply tuple is already a key of a live connection, or another masqueraded
    /// connection leaves the node with the same tuple before masquerade.
    Clash,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Full => "the conntrack table is full",
            InsertError::Clash => "the connection clashes with a tracked one",
        })
    }
}

impl std::error::Error for InsertError {}

impl<A: Addr> Conntrack<A> {
    /// Tracks a new connection in `state`, its timer starting at `now`, and returns its
    /// index. `reply` is the tuple replies will carry (the reverse of `original` after
    /// DNAT and source NAT); `masquerade` marks it for source NAT on the way out.
    pub fn insert(
        &mut self,
        original: Tuple<A>,
        reply: Tuple<A>,
        masquerade: bool,
        state: State,
        now: Instant,
    ) -> Result<u32, InsertError> {
        if self.len == self.capacity {
            return Err(InsertError::Full);
        }
        let original_hash = tuple_hash(&original);
        if self.lookup_hashed(&original, original_hash).is_some() {
            return Err(InsertError::Clash);
        }
        self.insert_absent(original, original_hash, reply, masquerade, state, now)
    }

    /// [`Conntrack::insert`] of an `original` tuple (hashed `original_hash`) that the
    /// caller looked up and did not find, with nothing stored since: the packet path's
    /// new connection, which would otherwise look it up twice. Inlined: passing the tuples
    /// and building the entry in the caller's frame saves copying them.
    #[inline(always)]
    pub(crate) fn insert_absent(
        &mut self,
        original: Tuple<A>,
        original_hash: u64,
        reply: Tuple<A>,
        masquerade: bool,
        state: State,
        now: Instant,
    ) -> Result<u32, InsertError> {
        debug_assert!(self.lookup(&original).is_none(), "{original:?} is tracked");
        if self.len == self.capacity {
            return Err(InsertError::Full);
        }
        let reply_hash = tuple_hash(&reply);
        if self.lookup_hashed(&reply, reply_hash).is_some() {
            return Err(InsertError::Clash);
        }
        let post_dnat = Tuple {
            dst: reply.src,
            dport: reply.sport,
            ..original
        };
        if masquerade && self.lookup_masqueraded(&post_dnat).is_some() {
            return Err(InsertError::Clash);
        }
        let dnat = (reply.src, reply.sport) != (original.dst, original.dport);
        let snat = (reply.dst, reply.dport) != (original.src, original.sport);
        let dnat_change = original.change_to(&post_dnat);
        // Replies to an unmasqueraded client undo the DNAT exactly.
        let reverse_change = if snat {
            reply.change_to(&original.reversed())
        } else {
            dnat_change.undone()
        };
        // Linked to its state's list as it is built: no second pass rewrites it.
        let expires = now.plus_nanos(self.timeouts.of(state));
        let tail = self.lists[state as usize].tail;
        let entry = Entry {
            original,
            reply,
            expires,
            state,
            masquerade,
            linked_expiry: expires,
            prev: tail,
            next: NIL,
            changes: [dnat_change, reverse_change],
            // The original direction's destination, the reply's source where DNAT applies;
            // the reply's destination where masquerade does.
            rewrites: [
                Rewrite::of_sides(dnat, false),
                Rewrite::of_sides(snat, dnat),
            ],
        };
        // Below capacity: a freed slot, or a new one at the end of the slab.
        let index = if self.free != NIL {
            let index = self.free;
            self.free = self.entries[index].next;
            self.entries[index] = entry;
            index
        } else {
            self.entries.push(entry)
        };
        self.len += 1;
        self.append(state as usize, tail, index);
        // Grown to stay at most half full, the index practically always has room; if a
        // neighbourhood ever fills up, the connection is refused whole.
        self.stored = self.stored.wrapping_add(1);
        self.recent.add(original_hash);
        self.recent.add(reply_hash);
        let original_stored = self.keys.insert(original_hash, index << 1);
        let reply_stored = original_stored && self.keys.insert(reply_hash, (index << 1) | 1);
        let snat_stored =
            reply_stored && (!masquerade || self.snat_keys.insert(tuple_hash(&post_dnat), index));
        if !snat_stored {
            self.removed = self.removed.wrapping_add(1);
            if reply_stored {
                self.keys.remove(reply_hash, (index << 1) | 1);
            }
            if original_stored {
                self.keys.remove(original_hash, index << 1);
            }
            self.unlink(index);
            // A stale index (a packet's metadata held past its connection) must not find a
            // masquerade mark here.
            self.entries[index].masquerade = false;
            self.entries[index].next = self.free;
            self.free = index;
            self.len -= 1;
            return Err(InsertError::Full);
        }
        Ok(index)
    }

    /// Forgets the connection at `index`, which must be live.
    pub fn remove(&mut self, index: u32) {
        self.unlink(index);
        let entry = self.entries[index];
        let slot = index << 1;
        self.removed = self.removed.wrapping_add(1);
        self.keys.remove(tuple_hash(&entry.original), slot);
        self.keys.remove(tuple_hash(&entry.reply), slot | 1);
        if entry.masquerade {
            self.snat_keys.remove(tuple_hash(&entry.post_dnat()), index);
        }
        // A stale index (a packet's metadata held past its connection) must not find a
        // masquerade mark here.
        self.entries[index].masquerade = false;
        self.entries[index].next = self.free;
        self.free = index;
        self.len -= 1;
    }
}
