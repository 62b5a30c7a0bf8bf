//! What the control plane knows under each Service name, indexed by that name.
//!
//! The objects are kept only so that a change can recompile one Service, so they are kept
//! the cheapest way: encoded (postcard's format: varint lengths, no pointers, no padding;
//! written and read by hand, see `encode` and `read`), one block per name, decoded when
//! that Service changes. The block holds the name once, first; the
//! objects follow without their own copies of it. A Service with one port and an
//! EndpointSlice of four endpoints takes about 150 bytes so, against about 850 as Rust
//! values (each `String`, `Vec` and `IpAddr` a heap block or padding of its own).
//!
//! Entries live in a dense slab; the index holds only slot numbers and finds a name by
//! reading it from the entry's block, which starts with it, so a name costs a 4-byte index
//! slot and no second copy.

use ahash::RandomState;
use hashbrown::HashTable;

use crate::model::{EndpointSlice, Service, ServiceName};
use crate::tables::{PortIds, fixed_state};

use bucket_order::by_bucket;

mod bucket_order;
mod decode;
mod encode;
mod read;

/// The objects known under one Service name, decoded: the Service (if it exists) and its
/// slices (kept even while the Service does not exist).
/// (Serialized by hand, see [`encode`]; tests compare with serde's encoding.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct Objects {
    pub(crate) service: Option<Service>,
    /// At most one per slice name, in no particular order (compiled endpoints are sorted).
    pub(crate) slices: Vec<EndpointSlice>,
}

impl Objects {
    /// The name everything here is known under; `None` once nothing is left.
    pub(crate) fn name(&self) -> Option<&ServiceName> {
        match &self.service {
            Some(service) => Some(&service.name),
            None => self.slices.first().map(|slice| &slice.service),
        }
    }

    /// Puts `slice` in place of the one of the same name, or adds it.
    pub(crate) fn replace_slice(&mut self, slice: EndpointSlice) {
        replace_slice(&mut self.slices, slice);
    }
}

/// Puts `slice` in place of the one of the same name in `slices`, or adds it.
pub(crate) fn replace_slice(slices: &mut Vec<EndpointSlice>, slice: EndpointSlice) {
    match slices.iter_mut().find(|s| s.name == slice.name) {
        Some(old) => *old = slice,
        None => slices.push(slice),
    }
}

/// The name at the start of a block, borrowed from it (a `ServiceName` encodes as its two
/// strings).
type EncodedName<'a> = (&'a str, &'a str);

/// What is known under one Service name: its objects, encoded, and the ports compiled from
/// them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    /// The name, then the objects ([`encode`]). Empty once nothing is left.
    block: Box<[u8]>,
    pub(crate) ports: PortIds,
}

/// Hashes a name as [`ServiceName`]'s derived `Hash` does: its two strings in order.
fn hash_name(hasher: &RandomState, name: EncodedName<'_>) -> u64 {
    hasher.hash_one(name)
}

/// The hash of the name a live entry (in `slot` of `slots`) holds: what the index rehashes
/// by when it grows.
fn entry_hash(hasher: &RandomState, slots: &[Known], slot: u32) -> u64 {
    let name = slots[slot as usize]
        .name()
        .expect("live entries have a name");
    hash_name(hasher, name)
}

fn borrow(name: &ServiceName) -> EncodedName<'_> {
    (&name.namespace, &name.name)
}

/// Encodes objects into blocks, reusing its buffer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Encoder {
    /// Where objects are encoded before being copied into a block of their exact size.
    scratch: Vec<u8>,
}

impl Encoder {
    /// The block that keeps `objects` (empty when they hold nothing). The block starts
    /// with the name, so the objects (which all carry it) are encoded without it.
    pub(crate) fn encode(&mut self, objects: &Objects) -> Block {
        let mut block = Block::default();
        self.encode_into(objects, &mut block.0);
        block
    }

    /// Encodes `objects` into `block` as [`Encoder::encode`] does: over its bytes when the
    /// length is unchanged (the common change, endpoints moved), saving an allocation.
    fn encode_into(&mut self, objects: &Objects, block: &mut Box<[u8]>) {
        let Some(name) = objects.name() else {
            *block = Box::default();
            return;
        };
        self.scratch.clear();
        encode::block(&mut self.scratch, name, objects);
        if block.len() == self.scratch.len() {
            block.copy_from_slice(&self.scratch);
        } else {
            *block = Box::from(&self.scratch[..]);
        }
    }
}

/// Objects encoded by an [`Encoder`], ready to be kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct Block(Box<[u8]>);

/// Every [`Known`] entry, found by Service name.
#[derive(Clone, Debug)]
pub(crate) struct KnownServices {
    slots: Vec<Known>,
    encoder: Encoder,
    /// Slots emptied by [`KnownServices::remove_if_empty`], reused first.
    free: Vec<u32>,
    /// Slot numbers, hashed by the name their entry holds.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl KnownServices {
    pub(crate) fn with_capacity(capacity: usize) -> KnownServices {
        KnownServices {
            slots: Vec::with_capacity(capacity),
            encoder: Encoder::default(),
            free: Vec::new(),
            index: HashTable::with_capacity(capacity),
            hasher: fixed_state(),
        }
    }

    /// The slot of `name`'s entry.
    pub(crate) fn find(&self, name: &ServiceName) -> Option<u32> {
        let slots = &self.slots;
        let name = borrow(name);
        self.index
            .find(hash_name(&self.hasher, name), |&slot| {
                slots[slot as usize].is_named(name)
            })
            .copied()
    }

    /// Keeps `objects` in `slot`'s entry (none left when they hold nothing).
    pub(crate) fn store(&mut self, slot: u32, objects: &Objects) {
        let block = &mut self.slots[slot as usize].block;
        self.encoder.encode_into(objects, block);
    }

    /// Adds an entry for `objects`, which hold something and whose name no other entry
    /// holds; returns its slot. It has no ports yet.
    pub(crate) fn insert_new(&mut self, objects: &Objects) -> u32 {
        let Block(block) = self.encoder.encode(objects);
        let hash = self.hash_of(objects);
        let known = Known {
            block,
            ports: PortIds::None,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = known;
                slot
            }
            None => {
                self.slots.push(known);
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, slot, |&other| entry_hash(hasher, slots, other));
        slot
    }

    /// Adds an entry for `objects` (which hold something, under a name no other entry
    /// holds) without entering it in the index: a full build's way in, which indexes
    /// every entry at the end ([`KnownServices::index_all`]). Returns its slot and its
    /// name's hash.
    pub(crate) fn push_unindexed(&mut self, objects: &Objects, Block(block): Block) -> (u32, u64) {
        debug_assert!(self.free.is_empty(), "a full build starts from no entries");
        let hash = self.hash_of(objects);
        self.slots.push(Known {
            block,
            ports: PortIds::None,
        });
        ((self.slots.len() - 1) as u32, hash)
    }

    /// The hash of the name `objects` are known under, hashed from them, at hand, rather
    /// than decoded from their block.
    fn hash_of(&self, objects: &Objects) -> u64 {
        let name = objects
            .name()
            .expect("a new entry holds a Service or a slice");
        hash_name(&self.hasher, borrow(name))
    }

    /// Enters the (hash, slot) pairs [`KnownServices::push_unindexed`] gave in the index,
    /// in the order of the buckets they land in: each insert then touches memory next to
    /// the last one's, where inserts in name order missed the cache nearly every time at a
    /// million names.
    pub(crate) fn index_all(&mut self, entries: Vec<(u64, u32)>) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let rehash = |&other: &u32| entry_hash(hasher, slots, other);
        self.index.reserve(entries.len(), rehash);
        // The table's buckets: its capacity is seven eighths of them (a power of two),
        // and a hash's first bucket is its low bits.
        let buckets = (self.index.capacity() + 1).saturating_mul(8) / 7;
        let mask = buckets.next_power_of_two() as u64 - 1;
        for (hash, slot) in by_bucket(&entries, mask) {
            self.index.insert_unique(hash, slot, rehash);
        }
    }

    pub(crate) fn get(&self, slot: u32) -> &Known {
        &self.slots[slot as usize]
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Known {
        &mut self.slots[slot as usize]
    }

    /// Forgets the entry in `slot`, known as `name`, when nothing is left in it.
    pub(crate) fn remove_if_empty(&mut self, slot: u32, name: &ServiceName) {
        // An empty block is an entry with nothing left ([`Known::name`]).
        if !self.slots[slot as usize].block.is_empty() {
            return;
        }
        if let Ok(entry) = self
            .index
            .find_entry(hash_name(&self.hasher, borrow(name)), |&other| {
                other == slot
            })
        {
            entry.remove();
            self.slots[slot as usize] = Known::default();
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, EndpointPort, Protocol, ServicePort, TargetPort};

    fn objects(name: &ServiceName) -> Objects {
        Objects {
            service: Some(Service {
                name: name.clone(),
                cluster_ips: vec!["10.96.0.10".parse().expect("literal")],
                ports: vec![ServicePort {
                    name: "http".into(),
                    protocol: Protocol::Tcp,
                    port: 80,
                    target_port: TargetPort::Name("web".into()),
                    node_port: Some(30080),
                }],
                ..Service::default()
            }),
            slices: vec![EndpointSlice {
                name: "web-abcde".into(),
                service: name.clone(),
                ports: vec![EndpointPort {
                    name: "http".into(),
                    protocol: Protocol::Tcp,
                    port: 8080,
                }],
                endpoints: vec![Endpoint {
                    addresses: vec!["10.244.1.5".parse().expect("literal")],
                    conditions: Default::default(),
                    node_name: Some("nodo2".into()),
                }],
            }],
        }
    }

    /// What is stored decodes to what was stored, and the index hashes the borrowed name
    /// as `ServiceName`'s own `Hash` does (so both spellings find the same entry).
    #[test]
    fn objects_round_trip_and_names_hash_alike() {
        let name = ServiceName::new("default", "web");
        let kept = objects(&name);
        let mut services = KnownServices::with_capacity(1);
        let slot = services.insert_new(&kept);
        let known = services.get(slot);
        assert_eq!(known.objects(), kept);
        assert_eq!(known.name(), Some(("default", "web")));
        let hasher = fixed_state();
        assert_eq!(hash_name(&hasher, borrow(&name)), hasher.hash_one(&name));
        // A block holds about a fifth of what the values do (see the module's comment).
        assert!(known.block.len() < 100, "{} bytes", known.block.len());
    }

    /// Large objects are kept whole, and the scratch buffer serves a smaller block after
    /// a larger one.
    #[test]
    fn large_objects_round_trip() {
        let name = ServiceName::new("default", "web");
        let mut kept = objects(&name);
        let endpoint = kept.slices[0].endpoints[0].clone();
        kept.slices[0].endpoints = vec![endpoint; 4096];
        let mut services = KnownServices::with_capacity(2);
        let slot = services.insert_new(&kept);
        assert!(services.get(slot).block.len() > 4096 * 8);
        assert_eq!(services.get(slot).objects(), kept);
        let small = objects(&ServiceName::new("default", "small"));
        let slot = services.insert_new(&small);
        assert_eq!(services.get(slot).objects(), small);
    }

    /// A change of the same encoded length is written over the block; another length
    /// gets a block of its own; both read back as stored.
    #[test]
    fn stored_changes_read_back_written_over_when_they_fit() {
        let name = ServiceName::new("default", "web");
        let mut services = KnownServices::with_capacity(1);
        let slot = services.insert_new(&objects(&name));
        let before = services.get(slot).block.as_ptr();
        let mut moved = objects(&name);
        moved.slices[0].endpoints[0].addresses = vec!["10.244.2.9".parse().expect("literal")];
        services.store(slot, &moved);
        assert_eq!(services.get(slot).block.as_ptr(), before);
        assert_eq!(services.get(slot).objects(), moved);
        let mut grown = moved.clone();
        grown.slices[0].name = "web-abcdefgh".into();
        services.store(slot, &grown);
        assert_eq!(services.get(slot).objects(), grown);
        services.store(slot, &Objects::default());
        assert_eq!(services.get(slot).name(), None);
    }

    #[test]
    fn entries_are_found_by_name_until_emptied() {
        let mut known = KnownServices::with_capacity(0);
        let names: Vec<ServiceName> = (0..100)
            .map(|i| ServiceName::new("ns", format!("svc-{i}")))
            .collect();
        for name in &names {
            known.insert_new(&objects(name));
        }
        let slot = known.find(&names[42]).expect("stored");
        assert_eq!(known.get(slot).objects(), objects(&names[42]));
        assert_eq!(known.find(&ServiceName::new("ns", "svc-100")), None);
        // Prefix of another name is not that name.
        assert_eq!(
            known.find(&ServiceName::new("ns", "svc-4")).map(|s| known
                .get(s)
                .objects()
                .name()
                .cloned()),
            Some(Some(names[4].clone()))
        );
        known.store(slot, &Objects::default());
        known.remove_if_empty(slot, &names[42]);
        assert_eq!(known.find(&names[42]), None);
        let reused = known.insert_new(&objects(&names[42]));
        assert_eq!(reused, slot);
    }
}
