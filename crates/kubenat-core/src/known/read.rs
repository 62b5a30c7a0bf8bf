//! A block's bytes read back by hand, the mirror of `encode`: postcard's wire format
//! (varints, fields in order, variants as their index, `Option` as 0 or 1). Through serde,
//! reading back a Service of one port took about 2,600 instructions an update, a sixth of
//! it checking the same few strings as UTF-8 again and again; by hand, each string is
//! checked once. A slice can also be stepped over, undecoded (the one an update replaces),
//! so the layout is read in one place. Tests read every sample the encoder's tests write,
//! against postcard's own decoder, and every block cut short is refused, never read past.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::model::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Protocol, Service,
    ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

/// The unread rest of a block. Every read gives `None` where the bytes end first or do not
/// hold what the encoder writes.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (bytes, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(bytes)
    }

    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// A string's bytes, not checked as UTF-8.
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        self.take(len)
    }

    /// A string, checked as UTF-8.
    pub fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.string()?).ok()
    }

    fn owned_text(&mut self) -> Option<String> {
        self.text().map(String::from)
    }

    fn port(&mut self) -> Option<u16> {
        u16::try_from(self.varint()?).ok()
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// An `Option`: 0, or 1 and the value.
    pub fn option<T>(&mut self, some: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.flag()? {
            false => Some(None),
            true => some(self).map(Some),
        }
    }

    /// A sequence: its length, then each item. Room is made for no more items than bytes
    /// are left, so a corrupt length cannot ask for much memory.
    fn seq<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let len = usize::try_from(self.varint()?).ok()?;
        let mut items = Vec::with_capacity(len.min(self.0.len()));
        for _ in 0..len {
            items.push(item(self)?);
        }
        Some(items)
    }

    fn ip(&mut self) -> Option<IpAddr> {
        Some(match self.byte()? {
            0 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).ok()?)),
            1 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(self.take(16)?).ok()?)),
            _ => return None,
        })
    }

    fn net(&mut self) -> Option<IpNet> {
        let address = self.ip()?;
        IpNet::new(address, self.byte()?).ok()
    }

    fn protocol(&mut self) -> Option<Protocol> {
        Some(match self.byte()? {
            0 => Protocol::Tcp,
            1 => Protocol::Udp,
            2 => Protocol::Sctp,
            _ => return None,
        })
    }

    fn policy(&mut self) -> Option<TrafficPolicy> {
        Some(match self.byte()? {
            0 => TrafficPolicy::Cluster,
            1 => TrafficPolicy::Local,
            _ => return None,
        })
    }

    /// A `ServiceName` left out by the encoder (two empty strings).
    fn no_name(&mut self) -> Option<ServiceName> {
        (self.take(2)? == [0, 0]).then(|| ServiceName {
            namespace: String::new(),
            name: String::new(),
        })
    }

    /// The name at the start of a block.
    pub fn name(&mut self) -> Option<(&'a str, &'a str)> {
        Some((self.text()?, self.text()?))
    }

    /// A Service as `encode::service` writes it, its name left empty.
    pub fn service(&mut self) -> Option<Service> {
        let name = self.no_name()?;
        let service_type = match self.byte()? {
            0 => ServiceType::ClusterIp,
            1 => ServiceType::NodePort,
            2 => ServiceType::LoadBalancer,
            _ => return None,
        };
        let cluster_ips = self.seq(Self::ip)?;
        let ports = self.seq(Self::service_port)?;
        let external_ips = self.seq(Self::ip)?;
        let load_balancer_ips = self.seq(Self::ip)?;
        let load_balancer_source_ranges = self.seq(Self::net)?;
        let external_traffic_policy = self.policy()?;
        let internal_traffic_policy = self.policy()?;
        let session_affinity = match self.byte()? {
            0 => SessionAffinity::None,
            1 => {
                let secs = self.varint()?;
                let nanos = u32::try_from(self.varint()?).ok()?;
                if nanos >= 1_000_000_000 {
                    return None;
                }
                SessionAffinity::ClientIp {
                    timeout: Duration::new(secs, nanos),
                }
            }
            _ => return None,
        };
        Some(Service {
            name,
            service_type,
            cluster_ips,
            ports,
            external_ips,
            load_balancer_ips,
            load_balancer_source_ranges,
            external_traffic_policy,
            internal_traffic_policy,
            session_affinity,
        })
    }

    fn service_port(&mut self) -> Option<ServicePort> {
        let name = self.owned_text()?;
        let protocol = self.protocol()?;
        let port = self.port()?;
        let target_port = match self.byte()? {
            0 => TargetPort::Number(self.port()?),
            1 => TargetPort::Name(self.owned_text()?),
            _ => return None,
        };
        let node_port = self.option(Self::port)?;
        Some(ServicePort {
            name,
            protocol,
            port,
            target_port,
            node_port,
        })
    }

    /// A slice as `encode::slice` writes it, its Service's name left empty.
    pub fn slice(&mut self) -> Option<EndpointSlice> {
        let name = self.owned_text()?;
        let service = self.no_name()?;
        let ports = self.seq(|at| {
            Some(EndpointPort {
                name: at.owned_text()?,
                protocol: at.protocol()?,
                port: at.port()?,
            })
        })?;
        let endpoints = self.seq(Self::endpoint)?;
        Some(EndpointSlice {
            name,
            service,
            ports,
            endpoints,
        })
    }

    /// Steps over a slice as `encode::slice` writes it, without decoding it (nor checking
    /// its strings): what an update does to the slice it replaces.
    pub fn skip_slice(&mut self) -> Option<()> {
        // Stepped on a copy, kept in registers, and written back once at the end.
        let mut at = Reader(self.0);
        // Its name, then its Service's name left out (two empty strings).
        for _ in 0..3 {
            at.string()?;
        }
        for _ in 0..at.varint()? {
            // A port: its name, its protocol's variant, its number.
            at.string()?;
            at.take(1)?;
            at.varint()?;
        }
        for _ in 0..at.varint()? {
            for _ in 0..at.varint()? {
                let octets = if at.byte()? == 0 { 4 } else { 16 };
                at.take(octets)?;
            }
            // ready, serving, terminating; then the node's name if there is one.
            at.take(3)?;
            if at.byte()? == 1 {
                at.string()?;
            }
        }
        self.0 = at.0;
        Some(())
    }

    fn endpoint(&mut self) -> Option<Endpoint> {
        let addresses = self.seq(Self::ip)?;
        let conditions = EndpointConditions {
            ready: self.flag()?,
            serving: self.flag()?,
            terminating: self.flag()?,
        };
        let node_name = self.option(Self::owned_text)?;
        Some(Endpoint {
            addresses,
            conditions,
            node_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::super::encode::tests::samples;
    use super::*;

    /// Every sample's Service and slices read back as postcard's decoder reads them, to
    /// the last byte; cut short anywhere, refused.
    #[test]
    fn objects_read_back_as_postcard_reads_them() {
        for objects in samples() {
            let name = objects.name().expect("samples hold something").clone();
            let mut block = Vec::new();
            encode::block(&mut block, &name, &objects);
            let mut at = Reader(&block);
            assert_eq!(at.name(), Some((&*name.namespace, &*name.name)));
            let expected_service = postcard::take_from_bytes::<Option<Service>>(at.0);
            let (expected_service, _) = expected_service.expect("postcard reads it");
            assert_eq!(at.option(Reader::service), Some(expected_service));
            let count = at.varint().expect("a count");
            for _ in 0..count {
                let (expected, rest) =
                    postcard::take_from_bytes::<EndpointSlice>(at.0).expect("postcard reads it");
                assert_eq!(at.slice(), Some(expected));
                assert_eq!(at.0, rest);
            }
            assert!(at.0.is_empty());
            for cut in 0..block.len() {
                let mut at = Reader(&block[..cut]);
                let read = (|| {
                    at.name()?;
                    at.option(Reader::service)?;
                    for _ in 0..at.varint()? {
                        at.slice()?;
                    }
                    Some(())
                })();
                assert_eq!(read, None, "cut at {cut}");
            }
        }
    }

    /// Stepping over a slice ends where decoding it does, and a slice cut short anywhere
    /// is refused, never read past.
    #[test]
    fn a_slice_is_skipped_to_its_end_and_no_further() {
        for kept in samples() {
            for slice in &kept.slices {
                let mut bytes = Vec::new();
                encode::slice(&mut bytes, slice);
                bytes.extend_from_slice(b"tail");
                let mut at = Reader(&bytes);
                assert_eq!(at.skip_slice(), Some(()));
                assert_eq!(at.0, b"tail");
                let (_, rest) =
                    postcard::take_from_bytes::<EndpointSlice>(&bytes).expect("decodes");
                assert_eq!(rest, b"tail");
                for cut in 0..bytes.len() - 4 {
                    assert_eq!(Reader(&bytes[..cut]).skip_slice(), None, "cut at {cut}");
                }
            }
        }
    }

    /// Bytes the encoder never writes are refused, not taken for something else.
    #[test]
    fn values_out_of_range_are_refused() {
        type Refused = fn(&mut Reader) -> bool;
        let cases: [(&[u8], Refused); 6] = [
            (&[2], |at| at.flag().is_none()),
            (&[3], |at| at.protocol().is_none()),
            (&[2], |at| at.policy().is_none()),
            (&[2, 1, 2, 3, 4], |at| at.ip().is_none()),
            (&[0, 10, 0, 0, 0, 33], |at| at.net().is_none()),
            (&[0x80, 0x80, 0x04], |at| at.port().is_none()),
        ];
        for (bytes, refused) in cases {
            assert!(refused(&mut Reader(bytes)), "{bytes:?}");
        }
    }
}
