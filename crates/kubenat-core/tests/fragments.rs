//! Fragments: the first carries the ports and is translated like any packet; later ones
//! follow their first fragment's connection, or are dropped when it was never seen.

mod common;

use common::{sa, udp};
use etherparse::{IpFragOffset, IpNumber, Ipv4Header, UdpHeader};
use kubenat_core::{DropReason, Engine, Instant, Path, Verdict, reference};

/// Splits an IPv4 packet into fragments whose payloads are `first_len` bytes (a multiple
/// of 8) and the rest.
fn fragment(packet: &[u8], first_len: usize, id: u16) -> (Vec<u8>, Vec<u8>) {
    let (header, payload) = Ipv4Header::from_slice(packet).unwrap();
    let make = |offset: usize, part: &[u8], more: bool| {
        let mut h = header.clone();
        h.identification = id;
        h.more_fragments = more;
        h.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
        h.set_payload_len(part.len()).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(part);
        out
    };
    (
        make(0, &payload[..first_len], true),
        make(first_len, &payload[first_len..], false),
    )
}

fn reassemble(first: &[u8], later: &[u8]) -> (Ipv4Header, Vec<u8>) {
    let (h1, p1) = Ipv4Header::from_slice(first).unwrap();
    let (h2, p2) = Ipv4Header::from_slice(later).unwrap();
    assert_eq!(
        (h1.source, h1.destination),
        (h2.source, h2.destination),
        "fragments translated alike"
    );
    assert_eq!(h1.header_checksum, h1.calc_header_checksum());
    assert_eq!(h2.header_checksum, h2.calc_header_checksum());
    let mut datagram = p1[..h1.payload_len().unwrap() as usize].to_vec();
    datagram.extend_from_slice(&p2[..h2.payload_len().unwrap() as usize]);
    (h1, datagram)
}

#[test]
fn a_fragmented_datagram_to_a_service_is_translated_whole() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let payload = vec![0x5a; 100];
    let whole = udp(sa("10.10.0.102:53001"), sa("10.10.1.10:53"), &payload);
    let (mut first, mut later) = fragment(&whole, 24, 7);
    assert!(matches!(
        engine.process_path(Path::Forward, &mut first, Instant::ZERO),
        Verdict::Translated(_)
    ));
    assert!(matches!(
        engine.process_path(Path::Forward, &mut later, Instant::ZERO),
        Verdict::Translated(_)
    ));
    let (header, datagram) = reassemble(&first, &later);
    assert_eq!(header.destination, [10, 10, 0, 10]);
    let (udp_header, data) = UdpHeader::from_slice(&datagram).unwrap();
    assert_eq!(udp_header.destination_port, 53);
    let expected = udp_header
        .calc_checksum_ipv4_raw(header.source, header.destination, data)
        .unwrap();
    assert_eq!(
        udp_header.checksum, expected,
        "UDP checksum over the reassembled datagram"
    );
    assert_eq!(header.protocol, IpNumber::UDP);
}

#[test]
fn masqueraded_fragments_get_the_same_source() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let whole = udp(sa("192.168.0.200:5000"), sa("10.10.1.10:53"), &[1; 64]);
    let (mut first, mut later) = fragment(&whole, 16, 9);
    engine.process_path(Path::Forward, &mut first, Instant::ZERO);
    engine.process_path(Path::Forward, &mut later, Instant::ZERO);
    let (header, datagram) = reassemble(&first, &later);
    assert_eq!(header.source, [192, 168, 0, 101], "masqueraded to the node");
    let (udp_header, data) = UdpHeader::from_slice(&datagram).unwrap();
    let expected = udp_header
        .calc_checksum_ipv4_raw(header.source, header.destination, data)
        .unwrap();
    assert_eq!(udp_header.checksum, expected);
}

#[test]
fn a_later_fragment_without_its_first_is_dropped() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let whole = udp(sa("10.10.0.102:53001"), sa("10.10.1.10:53"), &[0; 64]);
    let (_, mut later) = fragment(&whole, 24, 3);
    assert_eq!(
        engine.process_path(Path::Forward, &mut later, Instant::ZERO),
        Verdict::Drop(DropReason::Fragment)
    );
}

#[test]
fn fragments_of_unrelated_traffic_pass_untouched() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let whole = udp(sa("10.10.0.102:53001"), sa("10.10.0.10:53"), &[0; 64]);
    let (first, later) = fragment(&whole, 24, 4);
    for original in [first, later] {
        let mut packet = original.clone();
        assert_eq!(
            engine.process_path(Path::Forward, &mut packet, Instant::ZERO),
            Verdict::Accept
        );
        assert_eq!(packet, original);
    }
}
