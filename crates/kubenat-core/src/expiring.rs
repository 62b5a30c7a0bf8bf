//! A map whose entries expire, up to a capacity: sessionAffinity's client table and the
//! fragment table use it.
//!
//! Entries sit in a slab, reachable by hash and linked in refresh order. A new key takes
//! the stalest entry's slot when that one has expired, so memory follows the keys live at
//! once; the slab and its index grow (in chunks, and by incremental rehash) only when none
//! has, and at the capacity a map full of live entries refuses the key. Expiry is checked
//! on read; nothing needs sweeping.

use std::hash::Hash;

use ahash::RandomState;

use crate::flow_index::GrowingIndex;
use crate::slab::Slab;
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
    slots: Slab<Slot<K, V>>,
    index: GrowingIndex,
    /// Refresh order: head is the least recently refreshed.
    head: u32,
    tail: u32,
    capacity: usize,
    hasher: RandomState,
}

impl<K: Copy + Eq + Hash, V: Copy> ExpiringMap<K, V> {
    /// An empty map for up to `capacity` live keys (at least one); allocates about 1 KiB.
    pub fn new(capacity: usize) -> ExpiringMap<K, V> {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        ExpiringMap {
            slots: Slab::new(),
            index: GrowingIndex::new(capacity),
            head: NIL,
            tail: NIL,
            capacity,
            hasher: crate::tables::fixed_state(),
        }
    }

    /// Bytes held: the slab and its index.
    pub fn bytes(&self) -> usize {
        self.slots.bytes() + self.index.bytes()
    }

    /// Allocates now what `keys` live keys need (at most the capacity).
    pub fn reserve(&mut self, keys: usize) {
        let keys = keys.min(self.capacity);
        self.slots.reserve(keys);
        self.index.reserve(keys);
    }

    fn find(&self, key: &K) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index.find(hash, |i| self.slots[i].key == *key)
    }

    /// The value stored for `key`, if it has not expired by `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let slot = &self.slots[self.find(key)?];
        (slot.expires > now).then_some(slot.value)
    }

    /// Stores (or refreshes) `value` for `key` until `expires`. Returns false when the map
    /// is full of live entries and nothing was stored.
    pub fn set(&mut self, key: K, value: V, expires: Instant, now: Instant) -> bool {
        let slot = Slot {
            key,
            value,
            expires,
            prev: self.tail,
            next: NIL,
        };
        let index = match self.find(&key) {
            Some(i) => {
                self.unlink(i);
                i
            }
            None => {
                let i = if self.head != NIL && self.slots[self.head].expires <= now {
                    let stale = self.head;
                    self.unlink(stale);
                    let old_hash = self.hasher.hash_one(self.slots[stale].key);
                    self.index.remove(old_hash, stale);
                    stale
                } else if self.slots.len() < self.capacity {
                    self.slots.push(slot)
                } else {
                    return false;
                };
                if !self.index.insert(self.hasher.hash_one(key), i) {
                    // Every bucket within reach is full (practically never): the slot
                    // goes back to the head of the order, stale, for the next key.
                    self.slots[i] = Slot {
                        expires: Instant::ZERO,
                        ..slot
                    };
                    self.link_head(i);
                    return false;
                }
                i
            }
        };
        let slot = Slot {
            prev: self.tail,
            ..slot
        };
        self.slots[index] = slot;
        if self.tail == NIL {
            self.head = index;
        } else {
            self.slots[self.tail].next = index;
        }
        self.tail = index;
        true
    }

    fn link_head(&mut self, index: u32) {
        self.slots[index].prev = NIL;
        self.slots[index].next = self.head;
        if self.head == NIL {
            self.tail = index;
        } else {
            self.slots[self.head].prev = index;
        }
        self.head = index;
    }

    fn unlink(&mut self, index: u32) {
        let Slot { prev, next, .. } = self.slots[index];
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Set(u16, u32),
        Get(u16),
        /// Seconds to let pass.
        Wait(u8),
    }

    proptest! {
        /// The map agrees with a model (a list in refresh order) while it grows from
        /// nothing to its capacity: a new key takes the stalest entry's slot once that has
        /// expired, grows the map while below capacity, and is refused when the map is
        /// full of live entries.
        #[test]
        fn grows_like_the_model(
            ops in proptest::collection::vec(
                prop_oneof![
                    6 => (0u16..3000, any::<u32>()).prop_map(|(k, v)| Op::Set(k, v)),
                    3 => (0u16..3000).prop_map(Op::Get),
                    1 => (0u8..20).prop_map(Op::Wait),
                ],
                0..3000,
            ),
            capacity in 1usize..2500,
        ) {
            const TTL: u64 = 30;
            let mut map = ExpiringMap::<u16, u32>::new(capacity);
            // (key, value, expires), least recently refreshed first.
            let mut model: Vec<(u16, u32, Instant)> = Vec::new();
            let mut now = Instant::ZERO;
            for op in ops {
                match op {
                    Op::Set(k, v) => {
                        let expires = now + std::time::Duration::from_secs(TTL);
                        let stored = if let Some(at) = model.iter().position(|e| e.0 == k) {
                            model.remove(at);
                            true
                        } else if model.first().is_some_and(|e| e.2 <= now) {
                            model.remove(0);
                            true
                        } else {
                            model.len() < capacity
                        };
                        if stored {
                            model.push((k, v, expires));
                        }
                        prop_assert_eq!(map.set(k, v, expires, now), stored);
                    }
                    Op::Get(k) => {
                        let expected = model.iter().find(|e| e.0 == k && e.2 > now).map(|e| e.1);
                        prop_assert_eq!(map.get(&k, now), expected);
                    }
                    Op::Wait(secs) => now = now + std::time::Duration::from_secs(secs.into()),
                }
                prop_assert!(map.slots.len() <= capacity);
            }
            for &(k, v, expires) in &model {
                prop_assert_eq!(map.get(&k, now), (expires > now).then_some(v));
            }
        }
    }

    #[test]
    fn a_large_capacity_reserves_nothing() {
        let mut map = ExpiringMap::<u32, u32>::new(125_000_000);
        assert!(map.bytes() < 2048, "{} bytes empty", map.bytes());
        for k in 0..1000 {
            assert!(map.set(k, k, Instant::from_secs(10), Instant::ZERO));
        }
        assert!(
            map.bytes() < 128 * 1024,
            "{} bytes for 1000 keys",
            map.bytes()
        );
    }

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
