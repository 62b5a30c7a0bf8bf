//! Packet builders and readers: TCP/UDP segments, replies, ICMP echo, fragments.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, PacketBuilder,
    SlicedPacket, TransportSlice,
};

use super::ip;

/// IP protocol numbers, as [`transport_protocol`] reports them.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// A TCP segment with the given flags (`syn`, `ack`, `fin`, `rst`) and payload.
pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: &str, payload: &[u8]) -> Vec<u8> {
    let mut builder = ip_builder(src.ip(), dst.ip()).tcp(src.port(), dst.port(), 1000, 64_000);
    for flag in flags.split(',').filter(|f| !f.is_empty()) {
        builder = match flag {
            "syn" => builder.syn(),
            "ack" => builder.ack(1),
            "fin" => builder.fin(),
            "rst" => builder.rst(),
            other => panic!("unknown flag {other}"),
        };
    }
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

pub fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ip_builder(src.ip(), dst.ip())
        .udp(src.port(), dst.port())
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ip_builder(src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ip(etherparse::IpHeaders::Ipv4(
            etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, s.octets(), d.octets())
                .unwrap(),
            Default::default(),
        )),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ip(etherparse::IpHeaders::Ipv6(
            etherparse::Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: etherparse::IpNumber::TCP,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        )),
        _ => panic!("mixed families"),
    }
}

/// The (source, destination) of a TCP/UDP packet, read by etherparse.
pub fn endpoints(packet: &[u8]) -> (SocketAddr, SocketAddr) {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    let net = sliced.net.expect("ip layer");
    let (src, dst) = match net {
        etherparse::NetSlice::Ipv4(v4) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        etherparse::NetSlice::Ipv6(v6) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        etherparse::NetSlice::Arp(_) => panic!("arp"),
    };
    let (sport, dport) = match sliced.transport.expect("transport") {
        TransportSlice::Tcp(t) => (t.source_port(), t.destination_port()),
        TransportSlice::Udp(u) => (u.source_port(), u.destination_port()),
        other => panic!("unexpected transport {other:?}"),
    };
    (SocketAddr::new(src, sport), SocketAddr::new(dst, dport))
}

/// Asserts every checksum of `packet` is what etherparse computes from scratch.
pub fn assert_checksums(packet: &[u8]) {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    let net = sliced.net.clone().expect("ip layer");
    if let etherparse::NetSlice::Ipv4(v4) = &net {
        let header = v4.header().to_header();
        assert_eq!(
            header.header_checksum,
            header.calc_header_checksum(),
            "IPv4 header checksum"
        );
    }
    match (&net, sliced.transport.expect("transport")) {
        (etherparse::NetSlice::Ipv4(v4), TransportSlice::Tcp(t)) => {
            let h = v4.header();
            let expected = t
                .to_header()
                .calc_checksum_ipv4_raw(h.source(), h.destination(), t.payload())
                .unwrap();
            assert_eq!(t.checksum(), expected, "TCP checksum");
        }
        (etherparse::NetSlice::Ipv6(v6), TransportSlice::Tcp(t)) => {
            let h = v6.header();
            let expected = t
                .to_header()
                .calc_checksum_ipv6_raw(h.source(), h.destination(), t.payload())
                .unwrap();
            assert_eq!(t.checksum(), expected, "TCP checksum");
        }
        (etherparse::NetSlice::Ipv4(v4), TransportSlice::Udp(u)) => {
            let h = v4.header();
            if u.checksum() != 0 {
                let expected = u
                    .to_header()
                    .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                    .unwrap();
                assert_eq!(u.checksum(), expected, "UDP checksum");
            }
        }
        (etherparse::NetSlice::Ipv6(v6), TransportSlice::Udp(u)) => {
            let h = v6.header();
            let expected = u
                .to_header()
                .calc_checksum_ipv6_raw(h.source(), h.destination(), u.payload())
                .unwrap();
            assert_eq!(u.checksum(), expected, "UDP checksum");
        }
        (_, other) => panic!("unexpected transport {other:?}"),
    }
}

/// The reply an endpoint (or whoever the packet reached) sends to a TCP/UDP packet as it
/// left the node: addresses and ports swapped.
pub fn reply_to(packet: &[u8], tcp_flags: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = endpoints(packet);
    match transport_protocol(packet) {
        TCP => tcp(dst, src, tcp_flags, payload),
        UDP => udp(dst, src, payload),
        other => panic!("no reply for protocol {other}"),
    }
}

pub fn transport_protocol(packet: &[u8]) -> u8 {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(_) => TCP,
        TransportSlice::Udp(_) => UDP,
        other => panic!("unexpected transport {other:?}"),
    }
}

pub fn transport_payload(packet: &[u8]) -> Vec<u8> {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(t) => t.payload().to_vec(),
        TransportSlice::Udp(u) => u.payload().to_vec(),
        other => panic!("unexpected transport {other:?}"),
    }
}

pub fn echo_request(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut out, b"ping")
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut out, b"ping")
            .unwrap(),
        _ => panic!("mixed"),
    }
    out
}

/// Splits a whole IP datagram (no extension headers) into two fragments, the first
/// carrying `first_len` bytes of the transport (a multiple of 8), built with etherparse.
pub fn split(datagram: &[u8], first_len: usize, id: u16) -> [Vec<u8>; 2] {
    assert_eq!(first_len % 8, 0);
    match datagram[0] >> 4 {
        4 => {
            let (header, l4) = Ipv4Header::from_slice(datagram).unwrap();
            let l4 = &l4[..usize::from(header.total_len) - header.header_len()];
            let make = |offset: usize, data: &[u8], more: bool| {
                let mut h = header.clone();
                h.identification = id;
                h.more_fragments = more;
                h.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
                h.set_payload_len(data.len()).unwrap();
                h.header_checksum = h.calc_header_checksum();
                let mut out = h.to_bytes().to_vec();
                out.extend_from_slice(data);
                out
            };
            [
                make(0, &l4[..first_len], true),
                make(first_len, &l4[first_len..], false),
            ]
        }
        6 => {
            let (header, l4) = Ipv6Header::from_slice(datagram).unwrap();
            let l4 = &l4[..usize::from(header.payload_length)];
            let make = |offset: usize, data: &[u8], more: bool| {
                let fragment = Ipv6FragmentHeader::new(
                    header.next_header,
                    IpFragOffset::try_new((offset / 8) as u16).unwrap(),
                    more,
                    u32::from(id),
                );
                let mut h = header.clone();
                h.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
                h.payload_length = (Ipv6FragmentHeader::LEN + data.len()) as u16;
                let mut out = h.to_bytes().to_vec();
                out.extend_from_slice(&fragment.to_bytes());
                out.extend_from_slice(data);
                out
            };
            [
                make(0, &l4[..first_len], true),
                make(first_len, &l4[first_len..], false),
            ]
        }
        v => panic!("version {v}"),
    }
}

/// Reassembles two fragments made by [`split`] (possibly rewritten since) into one datagram.
pub fn reassemble(fragments: &[Vec<u8>; 2]) -> Vec<u8> {
    let sliced: Vec<_> = fragments
        .iter()
        .map(|f| etherparse::IpSlice::from_slice(f).unwrap())
        .collect();
    let mut l4 = Vec::new();
    for s in &sliced {
        assert!(s.payload().fragmented, "still a fragment");
        l4.extend_from_slice(s.payload().payload);
    }
    match &sliced[0] {
        etherparse::IpSlice::Ipv4(v4) => {
            let mut h = v4.header().to_header();
            h.more_fragments = false;
            h.fragment_offset = IpFragOffset::ZERO;
            h.set_payload_len(l4.len()).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            out
        }
        etherparse::IpSlice::Ipv6(v6) => {
            let mut h = v6.header().to_header();
            h.next_header = v6.payload().ip_number;
            h.payload_length = l4.len() as u16;
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            out
        }
    }
}
