//! A whole cluster state compiled at once (a first build, or a resync): Services and their
//! slices joined by name in one pass over both lists sorted, each Service compiled, its
//! objects encoded, and the results inserted in name order.
//!
//! Compiling Services on several threads was measured on the 2-vCPU VM (1M Services,
//! batches of 8,192 split between two threads): no faster. The compile is bound by first
//! touches of fresh memory and by one or two DRAM misses per table insert, not by the
//! work a second thread could take.

use std::cmp::Ordering;
use std::sync::Arc;
use std::vec::IntoIter;

use crate::categorize::Candidates;
use crate::compile::{CompileSettings, compile_service};
use crate::known::{Encoder, KnownServices, Objects, replace_slice};
use crate::model::{EndpointSlice, Service, ServiceName};
use crate::node_names::NodeNames;
use crate::tables::{ClusterTables, ServicePortId};

/// Compiles `services` with `slices` into fresh tables and the objects kept for updates.
/// Node names are interned into `nodes`.
pub(crate) fn build(
    mut services: Vec<Service>,
    mut slices: Vec<EndpointSlice>,
    settings: CompileSettings,
    nodes: &mut NodeNames,
) -> (ClusterTables, KnownServices) {
    // Services compile in name order, so clashes resolve the same whatever the input
    // order; of two Services (or two slices) with one name, the last one listed wins.
    // Both lists sorted by Service name, they are joined in one pass, without lookups.
    // (A stable sort keeps listing order among equal names, and the input of
    // `kubectl get` is already in name order: one linear pass then.)
    services.sort_by(|a, b| a.name.cmp(&b.name));
    services.dedup_by(|later, earlier| {
        let same = later.name == earlier.name;
        if same {
            std::mem::swap(later, earlier);
        }
        same
    });
    slices.sort_by(|a, b| a.service.cmp(&b.service));
    let mut tables = ClusterTables::with_capacity(services.len());
    let mut known = KnownServices::with_capacity(services.len());
    let mut encoder = Encoder::default();
    // Every port, in id order: the tables take them at the end, all at once.
    let mut all = Vec::with_capacity(services.len());
    // Each name's hash and slot, entered in the index once all are known.
    let mut names = Vec::with_capacity(services.len());
    let mut groups = ByName::new(services, slices);
    // One `Objects` serves every name (its vector of slices is allocated once), and one
    // vector every Service's compiled ports on their way into `all`.
    let mut objects = Objects::default();
    let candidates = &mut Candidates::default();
    let ports = &mut Vec::new();
    while groups.next_into(&mut objects) {
        // Kept first: compiling empties the Service's names (they move into the ports).
        let block = encoder.encode(&objects);
        let (slot, hash) = known.push_unindexed(&objects, block);
        names.push((hash, slot));
        if let Some(service) = &mut objects.service {
            let intern = &mut |name: &str| nodes.intern(name);
            let slices = &objects.slices;
            compile_service(service, slices, settings, intern, candidates, ports);
            let first = all.len();
            all.extend(ports.drain(..).map(Arc::new));
            known.get_mut(slot).ports = (first..all.len())
                .map(|id| ServicePortId(id as u32))
                .collect();
        }
    }
    known.index_all(names);
    tables.insert_all(all);
    (tables, known)
}

/// Services and slices, both sorted by Service name, joined into one [`Objects`] per name:
/// a Service with its slices, or the slices of a Service that does not exist.
///
/// The next of each is looked at where it lies (`IntoIter::as_slice`): `Peekable` moved
/// each one looked at (a Service is about 200 bytes, a slice 120) into a slot of its own,
/// and out of it again when taken.
struct ByName {
    services: IntoIter<Service>,
    slices: IntoIter<EndpointSlice>,
    /// How the next slice's name compares with the next Service's, when the last name's
    /// join already compared them.
    known: Option<Ordering>,
}

impl ByName {
    fn new(services: Vec<Service>, slices: Vec<EndpointSlice>) -> ByName {
        ByName {
            services: services.into_iter(),
            slices: slices.into_iter(),
            known: None,
        }
    }

    /// How the next slice's name compares with the next Service's (`Less` when no Service
    /// is left, `Greater` when no slice is); `None` once both lists are through.
    fn next_slice(&mut self) -> Option<Ordering> {
        if let Some(known) = self.known.take() {
            return Some(known);
        }
        let service = self.services.as_slice().first();
        Some(match (service, self.slices.as_slice().first()) {
            (None, None) => return None,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(service), Some(slice)) => slice.service.cmp(&service.name),
        })
    }

    /// Puts the next name's objects into `objects` (in place of what it held); `false` once
    /// both lists are through.
    fn next_into(&mut self, objects: &mut Objects) -> bool {
        let Some(next_slice) = self.next_slice() else {
            return false;
        };
        objects.slices.clear();
        objects.service = None;
        if next_slice == Ordering::Less {
            let Some(first) = self.slices.next() else {
                return false;
            };
            let name = first.service.clone();
            objects.replace_slice(first);
            while self.next_is_of(&name)
                && let Some(slice) = self.slices.next()
            {
                objects.replace_slice(slice);
            }
        } else {
            // Taken straight into its place.
            objects.service = self.services.next();
            let Objects {
                service: Some(service),
                slices,
            } = objects
            else {
                return false;
            };
            if next_slice == Ordering::Equal {
                while let Some(slice) = self.slices.next() {
                    replace_slice(slices, slice);
                    if !self.next_is_of(&service.name) {
                        break;
                    }
                }
            }
        }
        true
    }

    /// Whether the next slice is also of `name`, whose Service (if it has one) was just
    /// taken. It is compared with the next Service's name first, which the next name's
    /// join needs (and keeps): only a slice before that name can be of `name`. The usual
    /// Service with one slice so costs one comparison, not two.
    fn next_is_of(&mut self, name: &ServiceName) -> bool {
        let Some(slice) = self.slices.as_slice().first() else {
            return false;
        };
        if let Some(service) = self.services.as_slice().first() {
            let order = slice.service.cmp(&service.name);
            if order != Ordering::Less {
                self.known = Some(order);
                return false;
            }
        }
        slice.service == *name
    }
}
