//! `new_checked` names what is short, and no bytes make a view panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::meta::ChecksumStatus::{Partial, Unverified, Verified};

#[test]
fn new_checked_names_what_is_short() {
    use Layer::{Ip, Transport};
    let v4 = build::<Ipv4Addr>(Tcp);
    let v6 = build::<Ipv6Addr>(Tcp);
    let with = |packet: &[u8], at: usize, byte: u8| {
        let mut packet = packet.to_vec();
        packet[at] = byte;
        packet
    };
    let ip4 = |b: &[u8]| IpHeader::<Ipv4Addr, _>::new_checked(b).map(|_| ());
    let ip6 = |b: &[u8]| IpHeader::<Ipv6Addr, _>::new_checked(b).map(|_| ());
    let l4 = |b: &[u8], p| TransportHeader::<Ipv4Addr, _>::new_checked(b, p).map(|_| ());
    let l4_v6 = |b: &[u8], p| TransportHeader::<Ipv6Addr, _>::new_checked(b, p).map(|_| ());
    let tcp = &v4[20..];
    let truncated = |layer, needed, len| Err(WireError::Truncated { layer, needed, len });
    let short_header = |layer, len| Err(WireError::HeaderLength { layer, len });
    let rows = [
        (
            "IPv4 cut in its header",
            ip4(&v4[..19]),
            truncated(Ip, 20, 19),
        ),
        (
            "IPv6 read as IPv4",
            ip4(&v6),
            Err(WireError::Version { found: 6 }),
        ),
        (
            "IHL of 4 words",
            ip4(&with(&v4, 0, 0x44)),
            short_header(Ip, 16),
        ),
        (
            "options cut",
            ip4(&with(&v4, 0, 0x46)[..20]),
            truncated(Ip, 24, 20),
        ),
        ("IPv4 whole", ip4(&v4), Ok(())),
        (
            "IPv6 cut in its header",
            ip6(&v6[..39]),
            truncated(Ip, 40, 39),
        ),
        (
            "IPv4 read as IPv6",
            ip6(&v4),
            Err(WireError::Version { found: 4 }),
        ),
        ("IPv6 whole", ip6(&v6), Ok(())),
        ("TCP cut", l4(&tcp[..19], TCP), truncated(Transport, 20, 19)),
        (
            "TCP data offset 4",
            l4(&with(tcp, 12, 0x40), TCP),
            short_header(Transport, 16),
        ),
        (
            "TCP options cut",
            l4(&with(tcp, 12, 0x60)[..20], TCP),
            truncated(Transport, 24, 20),
        ),
        ("UDP cut", l4(&tcp[..7], UDP), truncated(Transport, 8, 7)),
        (
            "SCTP cut",
            l4(&tcp[..11], SCTP),
            truncated(Transport, 12, 11),
        ),
        (
            "ICMP cut",
            l4(&tcp[..7], ICMPV4),
            truncated(Transport, 8, 7),
        ),
        ("ICMPv4 in IPv6 is opaque", l4_v6(&[], ICMPV4), Ok(())),
        (
            "ICMPv6 cut",
            l4_v6(&tcp[..7], ICMPV6),
            truncated(Transport, 8, 7),
        ),
        ("GRE needs nothing", l4(&[], 47), Ok(())),
        (
            "quote without its ports",
            TransportHeader::<Ipv4Addr, _>::new_quoted(&tcp[..3], UDP).map(|_| ()),
            truncated(Transport, 4, 3),
        ),
    ];
    for (name, found, expected) in rows {
        assert_eq!(found, expected, "{name}");
    }
}

/// Every getter and setter a view's constructor allows, on whatever bytes it accepted.
fn exercise<A: Addr>(bytes: &[u8], protocol: u8, status: ChecksumStatus, segment: (usize, usize)) {
    let mut buffer = bytes.to_vec();
    if let Ok(mut ip) = IpHeader::<A, _>::new_checked(&mut buffer[..]) {
        let _ = (
            ip.header_len(),
            ip.datagram_len(),
            ip.protocol(),
            ip.is_ipv4_fragment(),
        );
        let _ = (ip.checksum_is_valid(), ip.addresses().len());
        ip.set_addresses(ip.dst(), ip.src());
    }
    let mut buffer = bytes.to_vec();
    if let Ok(mut l4) = TransportHeader::<A, _>::new_checked(&mut buffer[..], protocol) {
        let _ = (l4.len(), l4.pseudo_checksum(), l4.checksum_is_valid(|| 0));
        match protocol {
            TCP | UDP | SCTP => {
                let _ = (l4.ports(), l4.tcp_flags_if_tcp(), l4.sctp_first_chunk());
            }
            _ if l4.len() >= 8 => {
                let _ = (l4.icmp_type(), l4.echo_identifier(), l4.udp_length());
                l4.fill_icmp_checksum(0);
            }
            _ => {}
        }
        l4.set_ports(1, 2, 0x2345, status);
    }
    let mut buffer = bytes.to_vec();
    if let Ok(mut l4) = TransportHeader::<A, _>::new_quoted(&mut buffer[..], protocol) {
        let _ = (l4.ports(), l4.pseudo_checksum());
        l4.set_ports(3, 4, 7, status);
    }
    let mut buffer = bytes.to_vec();
    let range = segment.0.min(segment.1)..segment.0.max(segment.1);
    if let Ok(mut quoted) = Datagram::<A, _>::new_quoted(&mut buffer[..], protocol, range) {
        let to = Tuple {
            protocol,
            ..destination::<A>(Tcp)
        };
        let _ = (
            quoted.transport_checksum_is_valid(),
            quoted.pseudo_header_sum(),
        );
        quoted.translate(&to, status);
    }
}

impl<A: Addr, T: AsRef<[u8]>> TransportHeader<A, T> {
    /// TCP's flags where the view is TCP's (its getter needs a whole TCP header).
    fn tcp_flags_if_tcp(&self) -> u8 {
        if self.protocol() == TCP {
            self.tcp_flags()
        } else {
            0
        }
    }
}

proptest! {
    /// No bytes make a view panic, whatever the protocol and checksum status.
    #[test]
    fn no_input_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
        protocol in prop_oneof![Just(TCP), Just(UDP), Just(SCTP), Just(ICMPV4), Just(ICMPV6), any::<u8>()],
        status in prop_oneof![Just(Unverified), Just(Verified), Just(Partial)],
        segment in (0usize..90, 0usize..90),
    ) {
        exercise::<Ipv4Addr>(&bytes, protocol, status, segment);
        exercise::<Ipv6Addr>(&bytes, protocol, status, segment);
    }

    /// Real packets with any byte changed: no panic either.
    #[test]
    fn no_edited_packet_panics(
        proto in prop_oneof![Just(Tcp), Just(Udp), Just(Icmp), Just(Sctp)],
        v6: bool,
        edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
        cut in 0usize..100,
    ) {
        let mut packet = if v6 { build::<Ipv6Addr>(proto) } else { build::<Ipv4Addr>(proto) };
        for (at, value) in edits {
            if let Some(byte) = packet.get_mut(at) {
                *byte = value;
            }
        }
        packet.truncate(cut);
        let protocol = if v6 { protocol::<Ipv6Addr>(proto) } else { protocol::<Ipv4Addr>(proto) };
        let header_len = if v6 { 40 } else { 20 };
        exercise::<Ipv4Addr>(&packet, protocol, Verified, (header_len, packet.len()));
        exercise::<Ipv6Addr>(&packet, protocol, Partial, (header_len, packet.len()));
    }
}
