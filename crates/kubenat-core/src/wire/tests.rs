//! The views against etherparse: a rewrite through them leaves every checksum as an
//! independent parser computes it, `new_checked` names what is short, and no input panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;

use super::ip::AddressChange;
use super::*;
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::meta::ChecksumStatus::{self, Partial, Unverified, Verified};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    Tcp,
    Udp,
    /// An echo request of the family's ICMP.
    Icmp,
    Sctp,
}
use Proto::{Icmp, Sctp, Tcp, Udp};

const PAYLOAD: &[u8] = b"kubenat wire views";

/// An SCTP packet from port 40000 to 80 with one INIT-like chunk, CRC32c filled in.
fn sctp_segment() -> Vec<u8> {
    let mut sctp = vec![0x9c, 0x40, 0, 80, 1, 2, 3, 4, 0, 0, 0, 0, 1, 0, 0, 20];
    sctp.extend_from_slice(&[7; 16]);
    let crc = crc32c::crc32c(&sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    sctp
}

/// A valid packet of family `A` carrying `proto`, built by etherparse.
fn build<A: Addr>(proto: Proto) -> Vec<u8> {
    let builder = if A::LEN == 4 {
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 96, 0, 10], 64)
    } else {
        let (src, dst) = (
            [0xfd, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50],
            [0xfd; 16],
        );
        PacketBuilder::ipv6(src, dst, 64)
    };
    let mut out = Vec::new();
    let written = match proto {
        Tcp => builder
            .tcp(40000, 80, 7, 1000)
            .syn()
            .write(&mut out, PAYLOAD),
        Udp => builder.udp(40000, 53).write(&mut out, PAYLOAD),
        Icmp if A::LEN == 4 => builder.icmpv4_echo_request(77, 1).write(&mut out, PAYLOAD),
        Icmp => builder.icmpv6_echo_request(77, 1).write(&mut out, PAYLOAD),
        Sctp => builder.write(&mut out, IpNumber::SCTP, &sctp_segment()),
    };
    written.unwrap();
    out
}

fn protocol<A: Addr>(proto: Proto) -> u8 {
    match proto {
        Tcp => TCP,
        Udp => UDP,
        Icmp if A::LEN == 4 => ICMPV4,
        Icmp => ICMPV6,
        Sctp => SCTP,
    }
}

/// Where the rewrite takes a packet of family `A` carrying `proto`.
fn destination<A: Addr>(proto: Proto) -> Tuple<A> {
    let address = |v4: [u8; 4], v6: [u8; 16]| A::read(if A::LEN == 4 { &v4[..] } else { &v6[..] });
    Tuple {
        src: address(
            [192, 168, 7, 9],
            [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 9],
        ),
        dst: address(
            [10, 244, 3, 17],
            [0xfd, 0, 0x2, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 17],
        ),
        sport: 61000,
        dport: 8080,
        protocol: protocol::<A>(proto),
    }
}

/// Rewrites `packet` (no options or extension headers) to `to` through the two views.
fn rewrite<A: Addr>(packet: &mut [u8], to: &Tuple<A>, status: ChecksumStatus) {
    let header_len = IpHeader::<A, _>::new_checked(&*packet)
        .unwrap()
        .header_len();
    let (ip, segment) = packet.split_at_mut(header_len);
    let mut ip = IpHeader::<A, _>::new_checked(ip).unwrap();
    let mut transport = TransportHeader::<A, _>::new_checked(segment, to.protocol).unwrap();
    let addresses = ip.set_addresses(to.src, to.dst);
    transport.set_ports(to.sport, to.dport, addresses, status);
}

/// The pseudo-header's sum, one 16-bit word at a time (folded, not complemented).
fn naive_pseudo_header_sum(packet: &[u8]) -> u16 {
    let (addresses, protocol, header_len) = match packet[0] >> 4 {
        4 => (&packet[12..20], packet[9], 20),
        _ => (&packet[8..40], packet[6], 40),
    };
    let length = (packet.len() - header_len) as u32;
    let mut sum: u32 = addresses
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += u32::from(protocol) + (length >> 16) + (length & 0xffff);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn checksum_at(proto: Proto) -> usize {
    match proto {
        Tcp => 16,
        Udp => 6,
        Icmp => 2,
        Sctp => 8,
    }
}

/// Asserts etherparse (or, for SCTP, which it does not read, crc32c) finds every checksum
/// right.
fn assert_valid(packet: &[u8], proto: Proto) {
    let sliced = SlicedPacket::from_ip(packet).expect("parses");
    let (src, dst) = match sliced.net.as_ref().expect("ip layer") {
        NetSlice::Ipv4(v4) => {
            let header = v4.header().to_header();
            assert_eq!(
                header.header_checksum,
                header.calc_header_checksum(),
                "IPv4"
            );
            let pad = |a: [u8; 4]| [a, [0; 4], [0; 4], [0; 4]].concat();
            (pad(header.source), pad(header.destination))
        }
        NetSlice::Ipv6(v6) => (
            v6.header().source().to_vec(),
            v6.header().destination().to_vec(),
        ),
        NetSlice::Arp(_) => unreachable!(),
    };
    let v4 = packet[0] >> 4 == 4;
    let (src4, dst4) = (
        [src[0], src[1], src[2], src[3]],
        [dst[0], dst[1], dst[2], dst[3]],
    );
    let (src6, dst6) = (
        src.clone().try_into().unwrap(),
        dst.clone().try_into().unwrap(),
    );
    let (found, expected) = match sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            let header = t.to_header();
            let expected = match v4 {
                true => header.calc_checksum_ipv4_raw(src4, dst4, t.payload()),
                false => header.calc_checksum_ipv6_raw(src6, dst6, t.payload()),
            };
            (t.checksum(), expected.unwrap())
        }
        // Over IPv4, a zero UDP checksum means none.
        Some(TransportSlice::Udp(u)) if v4 && u.checksum() == 0 => return,
        Some(TransportSlice::Udp(u)) => {
            let header = u.to_header();
            let expected = match v4 {
                true => header.calc_checksum_ipv4_raw(src4, dst4, u.payload()),
                false => header.calc_checksum_ipv6_raw(src6, dst6, u.payload()),
            };
            (u.checksum(), expected.unwrap())
        }
        Some(TransportSlice::Icmpv4(i)) => (i.checksum(), i.icmp_type().calc_checksum(i.payload())),
        Some(TransportSlice::Icmpv6(i)) => {
            assert!(i.is_checksum_valid(src6, dst6), "ICMPv6");
            return;
        }
        None if proto == Sctp => {
            let mut sctp = sliced.ip_payload().unwrap().payload.to_vec();
            let found = u32::from_le_bytes(sctp[8..12].try_into().unwrap());
            sctp[8..12].fill(0);
            assert_eq!(found, crc32c::crc32c(&sctp), "SCTP CRC32c");
            return;
        }
        other => panic!("unexpected transport {other:?}"),
    };
    assert_eq!(found, expected, "{proto:?} checksum");
}

/// Rewrites every family × protocol × checksum status through the views; etherparse finds
/// the result valid, or (partial) the field holds the new pseudo-header sum. (An echo
/// request is never translated, so no partial ICMP.)
#[test]
fn rewrites_keep_every_checksum_right() {
    for proto in [Tcp, Udp, Icmp, Sctp] {
        for status in [Unverified, Verified, Partial] {
            if (proto, status) == (Icmp, Partial) {
                continue;
            }
            check_rewrite::<Ipv4Addr>(proto, status);
            check_rewrite::<Ipv6Addr>(proto, status);
        }
    }
}

fn check_rewrite<A: Addr>(proto: Proto, status: ChecksumStatus) {
    let mut packet = build::<A>(proto);
    let header_len = if A::LEN == 4 { 20 } else { 40 };
    let at = header_len + checksum_at(proto);
    let partial = status == Partial && matches!(proto, Tcp | Udp);
    if partial {
        let sum = naive_pseudo_header_sum(&packet);
        packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    let before = packet.clone();
    let to = destination::<A>(proto);
    rewrite(&mut packet, &to, status);
    let ip = IpHeader::<A, _>::new_checked(&packet[..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst()),
        (to.src, to.dst),
        "{proto:?} {status:?}"
    );
    if proto != Icmp {
        let l4 = TransportHeader::<A, _>::new_checked(&packet[header_len..], to.protocol).unwrap();
        assert_eq!(l4.ports(), (to.sport, to.dport));
    }
    let context = format!(
        "{proto:?} {status:?} over IPv{}",
        if A::LEN == 4 { 4 } else { 6 }
    );
    if partial {
        let field = u16::from_be_bytes([packet[at], packet[at + 1]]);
        assert_eq!(field, naive_pseudo_header_sum(&packet), "{context}");
        assert_valid_ip_header(&packet);
    } else if status == Partial && proto == Sctp {
        // Whoever completes the checksum computes the CRC: left as it was.
        assert_eq!(packet[at..at + 4], before[at..at + 4], "{context}");
    } else {
        assert_valid(&packet, proto);
    }
}

fn assert_valid_ip_header(packet: &[u8]) {
    if let Ok(v4) = etherparse::Ipv4HeaderSlice::from_slice(packet) {
        let header = v4.to_header();
        assert_eq!(header.header_checksum, header.calc_header_checksum());
    }
}

/// A UDP checksum over IPv4 of zero means none was computed, and stays zero.
#[test]
fn a_zero_udp_checksum_over_ipv4_stays_zero() {
    let mut packet = build::<Ipv4Addr>(Udp);
    packet[26..28].fill(0);
    rewrite(&mut packet, &destination::<Ipv4Addr>(Udp), Unverified);
    assert_eq!(packet[26..28], [0, 0]);
    assert_valid(&packet, Udp);
}

/// A UDP checksum that computes to zero goes on the wire as all ones.
#[test]
fn a_udp_checksum_of_zero_is_sent_as_all_ones() {
    assert_eq!(ports_summing_to_zero::<Ipv4Addr>(), 1);
    assert_eq!(ports_summing_to_zero::<Ipv6Addr>(), 1);
}

/// How many destination ports make the rewritten UDP packet's checksum all ones (a sum of
/// zero), each checked valid by etherparse.
fn ports_summing_to_zero<A: Addr>() -> usize {
    let at = if A::LEN == 4 { 26 } else { 46 };
    let packet = build::<A>(Udp);
    let to = destination::<A>(Udp);
    (0..=u16::MAX)
        .filter(|&dport| {
            let mut packet = packet.clone();
            rewrite(&mut packet, &Tuple { dport, ..to }, Verified);
            assert_valid(&packet, Udp);
            packet[at..at + 2] == [0xff, 0xff]
        })
        .count()
}

/// A quote cut after 8 transport bytes rewrites as the whole packet does, up to the cut;
/// SCTP's CRC, which a quote cannot cover, stays.
#[test]
fn a_quoted_header_rewrites_as_the_whole_one_up_to_its_cut() {
    for proto in [Tcp, Udp, Sctp] {
        let to = destination::<Ipv4Addr>(proto);
        let mut whole = build::<Ipv4Addr>(proto);
        let mut quote = whole[..28].to_vec();
        rewrite(&mut whole, &to, Verified);
        let mut quoted = Datagram::<Ipv4Addr, _>::new_quoted(&mut quote[..], to.protocol, 20..28)
            .expect("a quote holding the ports");
        quoted.translate(&to, Verified);
        assert_eq!(quote[..], whole[..28], "{proto:?}");
    }
}

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
        l4.set_ports(1, 2, AddressChange(0x1_2345), status);
    }
    let mut buffer = bytes.to_vec();
    if let Ok(mut l4) = TransportHeader::<A, _>::new_quoted(&mut buffer[..], protocol) {
        let _ = (l4.ports(), l4.pseudo_checksum());
        l4.set_ports(3, 4, AddressChange(7), status);
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
