//! Packet builders and checks shared by the integration tests. Packets are built and
//! verified with etherparse, never with the engine's own code.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

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

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
