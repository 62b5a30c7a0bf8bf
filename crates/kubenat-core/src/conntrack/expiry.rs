//! Timers: every state keeps its connections in one list sorted by expiry, so a packet
//! restarts a timer by moving its entry to the tail and expiry pops list heads.

use super::entry::{Entry, RELINK_AFTER};
use super::state::{STATES, State};
use super::{Conntrack, NIL};
use crate::addr::Addr;
use crate::time::Instant;

impl<A: Addr> Conntrack<A> {
    /// Moves a connection to `state` and restarts its timer: in place while it stays in
    /// its state's list, close enough to its place there (every packet of a flow).
    #[inline(always)]
    pub fn touch(&mut self, index: u32, state: State, now: Instant) {
        let expires = now.plus_nanos(self.timeouts.of(state));
        let entry = &mut self.entries[index];
        if entry.state == state && expires < entry.linked_expiry + RELINK_AFTER {
            entry.expires = expires;
            return;
        }
        self.relink(index, state, expires);
    }

    /// [`Conntrack::touch`] that moves the connection to the tail of its (new) state's list.
    #[inline(never)]
    fn relink(&mut self, index: u32, state: State, expires: Instant) {
        self.unlink(index);
        let entry = &mut self.entries[index];
        entry.state = state;
        entry.expires = expires;
        self.link(index);
    }

    /// Removes every connection whose timer ran out by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        for state in 0..STATES {
            loop {
                let head = self.lists[state].head;
                if head == NIL || self.entries[head].expires > now {
                    break;
                }
                self.remove(head);
                removed += 1;
            }
        }
        removed
    }

    /// The earliest time a connection expires, if any is tracked.
    pub fn poll_at(&self) -> Option<Instant> {
        self.lists
            .iter()
            .filter(|l| l.head != NIL)
            .map(|l| self.entries[l.head].expires)
            .min()
    }

    /// Appends to the tail of its state's list: lists stay sorted by expiry as long as time
    /// does not go backwards (the engine clamps it).
    pub(super) fn link(&mut self, index: u32) {
        let state = self.entries[index].state as usize;
        let tail = self.lists[state].tail;
        {
            let entry = &mut self.entries[index];
            entry.prev = tail;
            entry.next = NIL;
            entry.linked_expiry = entry.expires;
        }
        self.append(state, tail, index);
    }

    /// The list side of [`Conntrack::link`]: `index`, its `prev` already `tail`, becomes
    /// the tail of list `state`.
    #[inline(always)]
    pub(super) fn append(&mut self, state: usize, tail: u32, index: u32) {
        if tail == NIL {
            self.lists[state].head = index;
        } else {
            self.entries[tail].next = index;
        }
        self.lists[state].tail = index;
    }

    pub(super) fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, state, ..
        } = self.entries[index];
        let list = &mut self.lists[state as usize];
        if prev == NIL {
            list.head = next;
        } else {
            self.entries[prev].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.entries[next].prev = prev;
        }
    }
}
