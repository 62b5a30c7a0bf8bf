//! Reading a block back: its name, its objects whole, or with one slice swapped for the
//! one an update brings. The slice replaced is stepped over in the block, not decoded: an
//! update at a million Services spent a tenth of its instructions decoding and dropping it.

use super::read::Reader;
use super::{EncodedName, Known, Objects};
use crate::model::{EndpointSlice, ServiceName};

impl Known {
    /// The name everything here is known under; `None` once nothing is left.
    pub(super) fn name(&self) -> Option<EncodedName<'_>> {
        if self.block.is_empty() {
            return None;
        }
        Reader(&self.block).name()
    }

    /// Whether the block starts with `name`: its bytes compared as they lie.
    pub(super) fn is_named(&self, (namespace, name): EncodedName<'_>) -> bool {
        let mut at = Reader(&self.block);
        at.string() == Some(namespace.as_bytes()) && at.string() == Some(name.as_bytes())
    }

    /// Starts loading the block, which an update decodes whole.
    pub(crate) fn prefetch(&self) {
        crate::flow_index::prefetch_all(&*self.block);
    }

    /// The objects kept, decoded.
    pub(crate) fn objects(&self) -> Objects {
        self.swapped(None, None)
    }

    /// The objects kept with `slice` in place of the slice of its name (added last when
    /// there is none): [`Known::objects`] after [`Objects::replace_slice`], in the same
    /// order.
    pub(crate) fn objects_with_slice(&self, slice: EndpointSlice) -> Objects {
        self.swapped(None, Some(slice))
    }

    /// The objects kept without the slice named `name`: [`Known::objects`] after removing
    /// it.
    pub(crate) fn objects_without_slice(&self, name: &str) -> Objects {
        self.swapped(Some(name), None)
    }

    /// The objects kept, every slice named `removed` left out, or the first slice of the
    /// name of `replacement` replaced by it (as `retain` and `replace_slice` do; a
    /// Service's slices have distinct names anyway); with neither, all of them.
    fn swapped(&self, removed: Option<&str>, mut replacement: Option<EndpointSlice>) -> Objects {
        let Some((service_name, rest)) = self.decode_name() else {
            return Objects {
                service: None,
                slices: replacement.into_iter().collect(),
            };
        };
        let broken = "a block holds the objects it was encoded with";
        let mut at = Reader(rest);
        let service = at.option(Reader::service).expect(broken);
        let count = usize::try_from(at.varint().expect(broken)).expect(broken);
        let mut slices = Vec::with_capacity(count + usize::from(replacement.is_some()));
        for _ in 0..count {
            // The name's bytes compared as they lie: only a slice kept is decoded (and its
            // name checked as UTF-8).
            let kept_name = Reader(at.0).string().expect(broken);
            let swapped = match (&replacement, removed) {
                (Some(new), _) => kept_name == new.name.as_bytes(),
                (None, Some(removed)) => kept_name == removed.as_bytes(),
                (None, None) => false,
            };
            if swapped {
                at.skip_slice().expect(broken);
                slices.extend(replacement.take());
                continue;
            }
            slices.push(at.slice().expect(broken));
        }
        let mut objects = Objects { service, slices };
        name_objects(&mut objects, service_name);
        objects.slices.extend(replacement);
        objects
    }

    /// The name at the start of the block, and the bytes after it; `None` for an empty one.
    fn decode_name(&self) -> Option<(ServiceName, &[u8])> {
        if self.block.is_empty() {
            return None;
        }
        let mut at = Reader(&self.block);
        let (namespace, name) = at
            .name()
            .expect("a block starts with the name it was encoded with");
        Some((ServiceName::new(namespace, name), at.0))
    }
}

/// Gives decoded objects back the name their block left out of them: copies, and the
/// name itself to the last (a copy is two `String`s).
fn name_objects(objects: &mut Objects, name: ServiceName) {
    let Objects { service, slices } = objects;
    let mut names = service
        .iter_mut()
        .map(|service| &mut service.name)
        .chain(slices.iter_mut().map(|slice| &mut slice.service))
        .peekable();
    while let Some(slot) = names.next() {
        if names.peek().is_none() {
            *slot = name;
            return;
        }
        *slot = name.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::super::KnownServices;
    use super::super::encode::tests::samples;
    use super::*;

    /// Every slice of every sample replaced and removed, and a slice of a new name added,
    /// straight from the block and through the decoded objects, alike.
    #[test]
    fn a_slice_swapped_in_the_block_is_the_slice_swapped_in_the_objects() {
        for kept in samples() {
            let mut services = KnownServices::with_capacity(1);
            let slot = services.insert_new(&kept);
            let known = services.get(slot);
            let service = kept.name().expect("samples hold something").clone();
            let mut names: Vec<String> = kept.slices.iter().map(|s| s.name.clone()).collect();
            names.push("a-new-slice".into());
            for name in names {
                let new = EndpointSlice {
                    name: name.clone(),
                    service: service.clone(),
                    ports: Vec::new(),
                    endpoints: Vec::new(),
                };
                let mut replaced = known.objects();
                replaced.replace_slice(new.clone());
                assert_eq!(known.objects_with_slice(new), replaced);
                let mut removed = known.objects();
                removed.slices.retain(|slice| slice.name != name);
                assert_eq!(known.objects_without_slice(&name), removed);
            }
        }
    }

    #[test]
    fn nothing_known_takes_the_new_slice_alone() {
        let new = EndpointSlice {
            name: "web-1".into(),
            service: ServiceName::new("default", "web"),
            ports: Vec::new(),
            endpoints: Vec::new(),
        };
        let known = Known::default();
        assert_eq!(known.objects_without_slice("web-1"), Objects::default());
        let added = known.objects_with_slice(new.clone());
        assert_eq!(added.slices, vec![new]);
        assert_eq!(added.service, None);
    }
}
