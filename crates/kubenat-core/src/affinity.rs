//! sessionAffinity ClientIP: which endpoint each client last got, per service port, until
//! the Service's timeout passes without a new connection (kube-proxy refreshes the timer on
//! every new connection, as nft's `update @affinity` does).
//!
//! Fixed capacity, no allocation after construction: entries sit in a slab, reachable by
//! hash and linked in refresh order so the stalest is reclaimed first.

use std::net::SocketAddr;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::addr::Addr;
use crate::tables::ServicePortId;
use crate::time::Instant;

#[derive(Clone, Copy)]
struct Slot<A> {
    client: A,
    port: ServicePortId,
    endpoint: SocketAddr,
    expires: Instant,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

pub(crate) struct Affinity<A> {
    slots: Vec<Slot<A>>,
    index: HashTable<u32>,
    /// Refresh order: head is the least recently refreshed.
    head: u32,
    tail: u32,
    capacity: usize,
    hasher: RandomState,
}

impl<A: Addr> Affinity<A> {
    pub fn new(capacity: usize) -> Affinity<A> {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        Affinity {
            slots: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity),
            head: NIL,
            tail: NIL,
            capacity,
            hasher: crate::tables::fixed_state(),
        }
    }

    fn find(&self, client: A, port: ServicePortId) -> Option<u32> {
        let hash = self.hasher.hash_one((client, port));
        self.index
            .find(hash, |&i| {
                let s = &self.slots[i as usize];
                s.client == client && s.port == port
            })
            .copied()
    }

    /// The client's remembered endpoint, if its timer has not run out.
    pub fn get(&self, client: A, port: ServicePortId, now: Instant) -> Option<SocketAddr> {
        let slot = &self.slots[self.find(client, port)? as usize];
        (slot.expires > now).then_some(slot.endpoint)
    }

    /// Remembers (or refreshes) `endpoint` for the client until `expires`. When the table
    /// is full and its stalest entry is still live, the client is not remembered.
    pub fn set(
        &mut self,
        client: A,
        port: ServicePortId,
        endpoint: SocketAddr,
        expires: Instant,
        now: Instant,
    ) {
        let index = match self.find(client, port) {
            Some(i) => {
                self.unlink(i);
                i
            }
            None => {
                let i = if self.slots.len() < self.capacity {
                    self.slots.push(Slot {
                        client,
                        port,
                        endpoint,
                        expires,
                        prev: NIL,
                        next: NIL,
                    });
                    (self.slots.len() - 1) as u32
                } else if self.head != NIL && self.slots[self.head as usize].expires <= now {
                    let stale = self.head;
                    self.unlink(stale);
                    let old = self.slots[stale as usize];
                    let old_hash = self.hasher.hash_one((old.client, old.port));
                    if let Ok(entry) = self.index.find_entry(old_hash, |&j| j == stale) {
                        entry.remove();
                    }
                    stale
                } else {
                    return;
                };
                let hasher = &self.hasher;
                let slots = &self.slots;
                self.index
                    .insert_unique(hasher.hash_one((client, port)), i, |&j| {
                        let s = &slots[j as usize];
                        hasher.hash_one((s.client, s.port))
                    });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.client = client;
        slot.port = port;
        slot.endpoint = endpoint;
        slot.expires = expires;
        slot.prev = self.tail;
        slot.next = NIL;
        if self.tail == NIL {
            self.head = index;
        } else {
            self.slots[self.tail as usize].next = index;
        }
        self.tail = index;
    }

    fn unlink(&mut self, index: u32) {
        let Slot { prev, next, .. } = self.slots[index as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn remembers_until_timeout_and_reclaims_stale_slots() {
        let mut a = Affinity::<Ipv4Addr>::new(1);
        let ep1: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let ep2: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let c1 = Ipv4Addr::new(1, 1, 1, 1);
        let c2 = Ipv4Addr::new(2, 2, 2, 2);
        let p = ServicePortId(0);
        a.set(c1, p, ep1, Instant::from_secs(10), Instant::ZERO);
        assert_eq!(a.get(c1, p, Instant::from_secs(9)), Some(ep1));
        assert_eq!(a.get(c1, p, Instant::from_secs(10)), None);
        // Full with a live entry: the new client is not remembered.
        a.set(c2, p, ep2, Instant::from_secs(20), Instant::from_secs(5));
        assert_eq!(a.get(c2, p, Instant::from_secs(6)), None);
        // Once the old entry is stale its slot is reused.
        a.set(c2, p, ep2, Instant::from_secs(30), Instant::from_secs(11));
        assert_eq!(a.get(c2, p, Instant::from_secs(12)), Some(ep2));
        assert_eq!(a.get(c1, p, Instant::from_secs(12)), None);
    }
}
