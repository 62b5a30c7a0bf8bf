//! The views against etherparse: a rewrite through them leaves every checksum as an
//! independent parser computes it ([`rewrites`]), `new_checked` names what is short and no
//! input panics ([`robustness`]). Here: the packets they start from.

mod rewrites;
mod robustness;

use etherparse::{IpNumber, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use super::*;
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::meta::ChecksumStatus;

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

fn assert_valid_ip_header(packet: &[u8]) {
    if let Ok(v4) = etherparse::Ipv4HeaderSlice::from_slice(packet) {
        let header = v4.to_header();
        assert_eq!(header.header_checksum, header.calc_header_checksum());
    }
}
