//! A fixed-capacity map whose entries expire: sessionAffinity's client table and the
//! fragment table use it.
//!
//! No allocation after construction: entries sit in a slab, reachable by hash and linked in
//! refresh order, so the stalest is reclaimed first when the map is full. Expiry is checked
//! on read; nothing needs sweeping.

use std::hash::Hash;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::time::Instant;

#[derive(Clone, Copy)]
struct Slot<K, V> {
    key: K,
    value: V,
    expires: Instant,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

pub(crate) struct ExpiringMap<K, V> {
    slots: Vec<Slot<K, V>>,
    index: HashTable<u32>,
    /// Refresh order: head is the least recently refreshed.
    head: u32,
    tail: u32,
    capacity: usize,
    hasher: RandomState,
}

impl<K: Copy + Eq + Hash, V: Copy> ExpiringMap<K, V> {
    pub fn new(capacity: usize) -> ExpiringMap<K, V> {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        ExpiringMap {
            slots: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity),
            head: NIL,
            tail: NIL,
            capacity,
            hasher: crate::tables::fixed_state(),
        }
    }

    fn find(&self, key: &K) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| self.slots[i as usize].key == *key)
            .copied()
    }

    /// The value stored for `key`, if it has not expired by `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let slot = &self.slots[self.find(key)? as usize];
        (slot.expires > now).then_some(slot.value)
    }

    /// Stores (or refreshes) `value` for `key` until `expires`. Returns false when the map
    /// is full of live entries and nothing was stored.
    pub fn set(&mut self, key: K, value: V, expires: Instant, now: Instant) -> bool {
        let index = match self.find(&key) {
            Some(i) => {
                self.unlink(i);
                i
            }
            None => {
                let i = if self.slots.len() < self.capacity {
                    self.slots.push(Slot {
                        key,
                        value,
                        expires,
                        prev: NIL,
                        next: NIL,
                    });
                    (self.slots.len() - 1) as u32
                } else if self.head != NIL && self.slots[self.head as usize].expires <= now {
                    let stale = self.head;
                    self.unlink(stale);
                    let old_hash = self.hasher.hash_one(self.slots[stale as usize].key);
                    if let Ok(entry) = self.index.find_entry(old_hash, |&j| j == stale) {
                        entry.remove();
                    }
                    stale
                } else {
                    return false;
                };
                let hasher = &self.hasher;
                let slots = &self.slots;
                self.index.insert_unique(hasher.hash_one(key), i, |&j| {
                    hasher.hash_one(slots[j as usize].key)
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.key = key;
        slot.value = value;
        slot.expires = expires;
        slot.prev = self.tail;
        slot.next = NIL;
        if self.tail == NIL {
            self.head = index;
        } else {
            self.slots[self.tail as usize].next = index;
        }
        self.tail = index;
        true
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

    #[test]
    fn remembers_until_expiry_and_reclaims_stale_slots() {
        let mut map = ExpiringMap::<u32, &str>::new(1);
        assert!(map.set(1, "a", Instant::from_secs(10), Instant::ZERO));
        assert_eq!(map.get(&1, Instant::from_secs(9)), Some("a"));
        assert_eq!(map.get(&1, Instant::from_secs(10)), None);
        // Full with a live entry: nothing stored.
        assert!(!map.set(2, "b", Instant::from_secs(20), Instant::from_secs(5)));
        assert_eq!(map.get(&2, Instant::from_secs(6)), None);
        // Once the old entry is stale its slot is reused.
        assert!(map.set(2, "b", Instant::from_secs(30), Instant::from_secs(11)));
        assert_eq!(map.get(&2, Instant::from_secs(12)), Some("b"));
        assert_eq!(map.get(&1, Instant::from_secs(12)), None);
        // Refreshing an existing key moves its expiry.
        assert!(map.set(2, "c", Instant::from_secs(40), Instant::from_secs(12)));
        assert_eq!(map.get(&2, Instant::from_secs(35)), Some("c"));
    }
}
