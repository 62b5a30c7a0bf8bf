//! Rewrites through the views keep every checksum right, as etherparse computes it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::meta::ChecksumStatus::{Partial, Unverified, Verified};

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
