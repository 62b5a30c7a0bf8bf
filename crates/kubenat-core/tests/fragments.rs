//! Fragments: the first carries the ports and is translated like any packet; later ones
//! follow their first fragment's connection, or are dropped when it was never seen.
//! netfilter reassembles before NAT, so every fragment of a datagram to a Service is
//! translated like the whole datagram would be.

mod common;

use std::net::IpAddr;

use common::clusters::nodoa_dual_stack;
use common::packets::{
    assert_checksums, endpoints, reassemble, split, tcp, transport_payload, udp,
};
use common::runner::{Tally, secs, translated};
use common::sa;
use etherparse::{IpHeaders, IpNumber, Ipv4Header, PacketBuilder, UdpHeader};
use kubenat_core::{DropReason, Engine, Instant, Path, Verdict, reference};

/// Reassembles two translated IPv4 fragments, which must carry the same addresses and
/// valid header checksums; returns the IPv4 header and the datagram it carries.
fn reassemble_checked(first: &[u8], later: &[u8]) -> (Ipv4Header, Vec<u8>) {
    let (h1, _) = Ipv4Header::from_slice(first).unwrap();
    let (h2, _) = Ipv4Header::from_slice(later).unwrap();
    assert_eq!(
        (h1.source, h1.destination),
        (h2.source, h2.destination),
        "fragments translated alike"
    );
    assert_eq!(h1.header_checksum, h1.calc_header_checksum());
    assert_eq!(h2.header_checksum, h2.calc_header_checksum());
    let whole = reassemble(&[first.to_vec(), later.to_vec()]);
    let (header, datagram) = Ipv4Header::from_slice(&whole).unwrap();
    (header, datagram.to_vec())
}

#[test]
fn a_fragmented_datagram_to_a_service_is_translated_whole() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let payload = vec![0x5a; 100];
    let whole = udp(sa("10.10.0.102:53001"), sa("10.10.1.10:53"), &payload);
    let [mut first, mut later] = split(&whole, 24, 7);
    assert!(matches!(
        engine.process_path(Path::Forward, &mut first, Instant::ZERO),
        Verdict::Translated(_)
    ));
    assert!(matches!(
        engine.process_path(Path::Forward, &mut later, Instant::ZERO),
        Verdict::Translated(_)
    ));
    let (header, datagram) = reassemble_checked(&first, &later);
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
    let [mut first, mut later] = split(&whole, 16, 9);
    engine.process_path(Path::Forward, &mut first, Instant::ZERO);
    engine.process_path(Path::Forward, &mut later, Instant::ZERO);
    let (header, datagram) = reassemble_checked(&first, &later);
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
    let [_, mut later] = split(&whole, 24, 3);
    assert_eq!(
        engine.process_path(Path::Forward, &mut later, Instant::ZERO),
        Verdict::Drop(DropReason::Fragment)
    );
}

#[test]
fn fragments_of_unrelated_traffic_pass_untouched() {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let whole = udp(sa("10.10.0.102:53001"), sa("10.10.0.10:53"), &[0; 64]);
    let [first, later] = split(&whole, 24, 4);
    for original in [first, later] {
        let mut packet = original.clone();
        assert_eq!(
            engine.process_path(Path::Forward, &mut packet, Instant::ZERO),
            Verdict::Accept
        );
        assert_eq!(packet, original);
    }
}

/// A UDP datagram with the don't-fragment bit set.
fn v4_dont_fragment(src: &str, dst: &str) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("v4 only")
    };
    let mut header = Ipv4Header::new(0, 64, IpNumber::UDP, s.octets(), d.octets()).unwrap();
    header.dont_fragment = true;
    let mut out = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(header, Default::default()))
        .udp(src.port(), dst.port())
        .write(&mut out, b"0123456789abcdef")
        .unwrap();
    out
}

/// Datagrams to Services of [`nodoa_dual_stack`] with 100 bytes of payload, v4 and v6,
/// UDP and TCP: (name, datagram, the endpoint it is DNATed to).
fn service_datagrams() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "v4 udp",
            udp(sa("10.10.0.50:40000"), sa("10.10.1.10:53"), &[7u8; 100]),
            "10.10.0.10:53",
        ),
        (
            "v4 tcp",
            tcp(
                sa("10.10.0.50:40001"),
                sa("10.10.1.101:3307"),
                "syn",
                &[7u8; 100],
            ),
            "10.10.0.103:3306",
        ),
        (
            "v6 udp",
            udp(
                sa("[fd00:10::50]:40000"),
                sa("[fd00:10:1::120]:7000"),
                &[7u8; 100],
            ),
            "[fd00:10::120]:7",
        ),
        (
            "v6 tcp",
            tcp(
                sa("[fd00:10::50]:40001"),
                sa("[fd00:10:1::120]:7000"),
                "syn",
                &[7u8; 100],
            ),
            "[fd00:10::120]:7",
        ),
    ]
}

#[test]
fn fragments_follow_their_first_fragment() {
    // netfilter reassembles before NAT, so every fragment of a datagram to a Service is
    // translated like the whole datagram would be; reassembled, it must be the translated
    // datagram with valid checksums.
    for (id, (name, datagram, pod)) in service_datagrams().into_iter().enumerate() {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let (client, _) = endpoints(&datagram);
        let [first, second] = split(&datagram, 32, 100 + id as u16);
        let mut out = [first, second];
        for (i, fragment) in out.iter_mut().enumerate() {
            let verdict = engine.process_path(Path::Forward, fragment, secs(0));
            assert!(
                matches!(verdict, Verdict::Translated(_)),
                "{name}: fragment {i}: {verdict:?}"
            );
        }
        let whole = reassemble(&out);
        assert_checksums(&whole);
        assert_eq!(endpoints(&whole), (client, sa(pod)), "{name}");
        assert_eq!(transport_payload(&whole), [7u8; 100], "{name}");
        assert_eq!(engine.connections(), 1, "{name}");
    }
}

#[test]
fn fragments_without_their_first_fragment_are_dropped() {
    let mut t = Tally::new(&nodoa_dual_stack());
    let fragment = Verdict::Drop(DropReason::Fragment);
    for (name, datagram, _) in service_datagrams() {
        let [_, second] = split(&datagram, 32, 7);
        t.check(
            &format!("{name}: later fragment, first never seen"),
            second.clone(),
            fragment,
        );
        // Another datagram's first fragment (other id) does not adopt it.
        let [first_other, _] = split(&datagram, 32, 8);
        let mut first_other = first_other;
        t.engine
            .process_path(Path::Forward, &mut first_other, secs(0));
        t.seen += 1;
        t.check(
            &format!("{name}: later fragment, other id"),
            second,
            fragment,
        );
    }
    // Don't-fragment is not a fragment: the UDP DNS query is translated.
    let mut df = v4_dont_fragment("10.10.0.50:40009", "10.10.1.10:53");
    let verdict = t.engine.process_path(Path::Forward, &mut df, secs(0));
    t.seen += 1;
    translated(verdict);
    assert_checksums(&df);
    assert_eq!(
        t.engine.counters().drops(DropReason::Fragment),
        t.drops[&DropReason::Fragment]
    );
    assert_eq!(t.engine.counters().total(), t.seen);
}
