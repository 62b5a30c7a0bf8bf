//! What the control plane knows under each Service name, indexed by that name.
//!
//! Entries live in a dense slab; the index holds only slot numbers and finds a name by
//! reading it from the entry itself, so a name is stored once (in the Service or its
//! slices) and a million Services cost a 4-byte index slot each instead of a second copy
//! of the name beside a half-empty table of whole entries.

use ahash::RandomState;
use hashbrown::HashTable;

use crate::model::{EndpointSlice, Service, ServiceName};
use crate::tables::{ServicePortId, fixed_state};

/// What is known under one Service name: the Service (if it exists), its slices (kept
/// even while the Service does not exist), and the ports compiled from them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    pub(crate) service: Option<Service>,
    /// At most one per slice name, in no particular order (compiled endpoints are sorted).
    pub(crate) slices: Vec<EndpointSlice>,
    pub(crate) ports: Vec<ServicePortId>,
}

impl Known {
    /// The name everything here is known under; `None` once nothing is left.
    fn name(&self) -> Option<&ServiceName> {
        match &self.service {
            Some(service) => Some(&service.name),
            None => self.slices.first().map(|slice| &slice.service),
        }
    }

    fn is_empty(&self) -> bool {
        self.service.is_none() && self.slices.is_empty()
    }
}

/// Every [`Known`] entry, found by Service name.
#[derive(Clone, Debug)]
pub(crate) struct KnownServices {
    slots: Vec<Known>,
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
            free: Vec::new(),
            index: HashTable::with_capacity(capacity),
            hasher: fixed_state(),
        }
    }

    /// The slot of `name`'s entry.
    pub(crate) fn find(&self, name: &ServiceName) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(name), |&slot| {
                slots[slot as usize].name() == Some(name)
            })
            .copied()
    }

    /// Adds an entry whose name no other entry holds; returns its slot.
    pub(crate) fn insert_new(&mut self, known: Known) -> u32 {
        let name = known
            .name()
            .expect("a new entry holds a Service or a slice");
        let hash = self.hasher.hash_one(name);
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
        self.index.insert_unique(hash, slot, |&other| {
            hasher.hash_one(
                slots[other as usize]
                    .name()
                    .expect("live entries have a name"),
            )
        });
        slot
    }

    pub(crate) fn get(&self, slot: u32) -> &Known {
        &self.slots[slot as usize]
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Known {
        &mut self.slots[slot as usize]
    }

    /// Forgets the entry in `slot`, known as `name`, when nothing is left in it.
    pub(crate) fn remove_if_empty(&mut self, slot: u32, name: &ServiceName) {
        if !self.slots[slot as usize].is_empty() {
            return;
        }
        if let Ok(entry) = self
            .index
            .find_entry(self.hasher.hash_one(name), |&other| other == slot)
        {
            entry.remove();
            self.slots[slot as usize] = Known::default();
            self.free.push(slot);
        }
    }
}
