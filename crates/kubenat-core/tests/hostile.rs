//! Hostile input the other test files do not already cover (docs/reliability.md maps every
//! case of the list to its test): truncation at every length of every header kind, IHL
//! lies and IPv4 options, IPv6 extension chains, overlapping fragments, TTL / hop limit 1,
//! and a SYN flood against a full conntrack table.
//!
//! Expected values come from netfilter and kube-proxy semantics, never from the engine:
//! netfilter parses headers before NAT and drops what it cannot parse; it skips IPv6
//! extension headers to find the transport (`ipv6_skip_exthdr`), so they do not change the
//! decision; DNAT happens at PREROUTING before routing decrements the TTL; a full
//! conntrack table refuses new connections and leaves tracked ones alone. Packets are built
//! and checked with etherparse.

mod common;

use std::net::SocketAddr;

use common::clusters::{nodoa_dual_stack, nodoa_two_dns};
use common::packets::{assert_checksums, reply_to, split, tcp, udp};
use common::runner::{forward, forward_translated, secs, translated};
use common::sa;
use etherparse::Ipv4Header;
use kubenat_core::{DropReason, Engine, Path, Verdict};

const MALFORMED_IP: Verdict = Verdict::Drop(DropReason::MalformedIpHeader);
const MALFORMED_EXT: Verdict = Verdict::Drop(DropReason::MalformedExtensionHeader);
const MALFORMED_L4: Verdict = Verdict::Drop(DropReason::MalformedTransportHeader);

/// Runs a packet forward and checks the verdict; a packet not translated leaves untouched.
fn expect(engine: &mut Engine, name: &str, packet: Vec<u8>, expected: Verdict) {
    let copy = packet.clone();
    let (verdict, out) = forward(engine, packet, secs(0));
    assert_eq!(verdict, expected, "{name}");
    assert_eq!(out, copy, "{name}: left untouched");
}

/// Sets the IPv4 total length and header checksum to match `packet`'s length.
fn fix_ipv4(packet: &mut [u8]) {
    let total = packet.len() as u16;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    // A header etherparse cannot read (IHL past the packet) keeps its old checksum.
    if let Ok((h, _)) = Ipv4Header::from_slice(packet) {
        packet[10..12].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
    }
}

fn fix_ipv6(packet: &mut [u8]) {
    let payload = (packet.len() - 40) as u16;
    packet[4..6].copy_from_slice(&payload.to_be_bytes());
}

/// `packet` cut to `len` bytes with its IP length fields saying so (a consistent packet
/// whose headers end early).
fn cut_consistently(packet: &[u8], len: usize) -> Vec<u8> {
    let mut out = packet[..len].to_vec();
    if out[0] >> 4 == 4 {
        fix_ipv4(&mut out);
    } else {
        fix_ipv6(&mut out);
    }
    out
}

/// An SCTP packet (INIT chunk) with a valid CRC32c, as the `crc32c` crate computes it.
fn sctp_init(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut sctp = vec![0x13, 0x88, 0x1b, 0x58, 0, 0, 0, 0, 0, 0, 0, 0];
    sctp.extend_from_slice(&[1, 0, 0, 20]);
    sctp.extend_from_slice(&[0; 16]);
    let crc = crc32c::crc32c(&sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    let mut out = Vec::new();
    Ipv4Header::new(sctp.len() as u16, 64, etherparse::IpNumber(132), src, dst)
        .unwrap()
        .write(&mut out)
        .unwrap();
    out.extend_from_slice(&sctp);
    out
}

fn echo_v4() -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 101], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

fn echo_v6() -> Vec<u8> {
    let src: std::net::Ipv6Addr = "fd00:10::50".parse().unwrap();
    let dst: std::net::Ipv6Addr = "fd00:10:1::120".parse().unwrap();
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

/// An extension header: its type number and its 8 bytes, next header left 0.
type Ext = (u8, [u8; 8]);

/// Extension headers, each as (its type number, its 8 bytes with next header left 0).
const HOP_BY_HOP: Ext = (0, [0, 0, 1, 4, 0, 0, 0, 0]);
const DEST_OPTS: Ext = (60, [0, 0, 1, 4, 0, 0, 0, 0]);
/// Routing type 253 (experimental), segments left 0: nothing to route.
const ROUTING: Ext = (43, [0, 0, 253, 0, 0, 0, 0, 0]);
/// An atomic fragment (offset 0, no more fragments): RFC 6946, the packet is whole.
const ATOMIC_FRAGMENT: Ext = (44, [0, 0, 0, 0, 0, 0, 0x0a, 0x0b]);

/// An IPv6 packet with `chain` inserted between the IPv6 header and the transport.
fn with_extensions(packet: &[u8], chain: &[Ext]) -> Vec<u8> {
    let transport = packet[6];
    let mut out = packet[..40].to_vec();
    if let Some((first, _)) = chain.first() {
        out[6] = *first;
    }
    for (i, (_, bytes)) in chain.iter().enumerate() {
        let mut ext = *bytes;
        ext[0] = chain.get(i + 1).map_or(transport, |(next, _)| *next);
        out.extend_from_slice(&ext);
    }
    out.extend_from_slice(&packet[40..]);
    fix_ipv6(&mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Truncated headers at every length
// ---------------------------------------------------------------------------------------

#[test]
fn every_header_cut_at_every_length_is_dropped_with_its_reason() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    let v6_tcp = tcp(
        sa("[fd00:10::50]:40000"),
        sa("[fd00:10:1::120]:7000"),
        "syn",
        b"",
    );
    // (name, whole packet, IP header length incl. extensions, transport header length)
    let cases: Vec<(&str, Vec<u8>, usize, usize)> = vec![
        (
            "IPv4 TCP",
            tcp(sa("10.10.0.50:40000"), sa("10.10.1.101:3307"), "syn", b""),
            20,
            20,
        ),
        (
            "IPv4 UDP",
            udp(sa("10.10.0.50:40001"), sa("10.10.1.10:53"), b"q"),
            20,
            8,
        ),
        (
            "IPv4 SCTP",
            sctp_init([10, 10, 0, 50], [10, 10, 1, 120]),
            20,
            12,
        ),
        ("ICMP echo", echo_v4(), 20, 8),
        ("ICMPv6 echo", echo_v6(), 40, 8),
        (
            "IPv6 TCP behind hop-by-hop and destination options",
            with_extensions(&v6_tcp, &[HOP_BY_HOP, DEST_OPTS]),
            56,
            20,
        ),
    ];
    for (name, packet, ip_len, l4_len) in cases {
        let v4 = packet[0] >> 4 == 4;
        let fixed_header = if v4 { 20 } else { 40 };
        // Consistent lengths: the IP layer says the packet ends where it ends.
        for len in fixed_header..ip_len + l4_len {
            let expected = if len < ip_len {
                MALFORMED_EXT
            } else {
                MALFORMED_L4
            };
            let cut = cut_consistently(&packet, len);
            expect(
                &mut engine,
                &format!("{name} ending at {len}"),
                cut,
                expected,
            );
        }
        // The IP layer claims the whole packet, the buffer ends early.
        for len in 0..packet.len() {
            let cut = packet[..len].to_vec();
            expect(
                &mut engine,
                &format!("{name} cut at {len}"),
                cut,
                MALFORMED_IP,
            );
        }
        // Whole, it is not dropped.
        let (verdict, _) = forward(&mut engine, packet, secs(0));
        assert!(!matches!(verdict, Verdict::Drop(_)), "{name}: {verdict:?}");
    }
}

// ---------------------------------------------------------------------------------------
// IHL and total-length lies; IPv4 options
// ---------------------------------------------------------------------------------------

#[test]
fn ihl_and_total_length_lies_are_dropped() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    let syn = tcp(sa("10.10.0.50:40000"), sa("10.10.1.101:3307"), "syn", b"");
    for ihl in 0..5u8 {
        let mut p = syn.clone();
        p[0] = 0x40 | ihl;
        expect(&mut engine, &format!("IHL {ihl}"), p, MALFORMED_IP);
    }
    // IHL says options follow, more than the packet (40 bytes) holds.
    for ihl in 11..=15u8 {
        let mut p = syn.clone();
        p[0] = 0x40 | ihl;
        fix_ipv4(&mut p);
        expect(
            &mut engine,
            &format!("IHL {ihl} past the packet"),
            p,
            MALFORMED_IP,
        );
    }
    // IHL inside the packet but beyond the total length.
    let mut p = syn.clone();
    p[0] = 0x46;
    p[2..4].copy_from_slice(&20u16.to_be_bytes());
    let (mut h, _) = Ipv4Header::from_slice(&syn).unwrap();
    h.total_len = 20;
    p[10..12].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
    expect(&mut engine, "IHL 6 with total length 20", p, MALFORMED_IP);
    // Total length inside the IP header.
    for total in [0u16, 1, 19] {
        let mut p = syn.clone();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        expect(
            &mut engine,
            &format!("total length {total}"),
            p,
            MALFORMED_IP,
        );
    }
}

#[test]
fn ipv4_options_are_kept_and_the_packet_translated() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    for (words, option) in [(1usize, 1u8), (4, 1), (10, 1), (1, 0)] {
        // `words` 32-bit words of NOP (1) or EOL (0) options: IHL 5 + words.
        let client = SocketAddr::new("10.10.0.50".parse().unwrap(), 41000 + words as u16);
        let plain = tcp(client, sa("10.10.1.101:3307"), "syn", b"x");
        let mut p = plain[..20].to_vec();
        p[0] = 0x45 + words as u8;
        p.extend(std::iter::repeat_n(option, words * 4));
        p.extend_from_slice(&plain[20..]);
        fix_ipv4(&mut p);
        let options = p[20..20 + words * 4].to_vec();
        let (_, destination, out) = forward_translated(&mut engine, p, secs(0));
        assert_eq!(destination, sa("10.10.0.103:3306"), "{words} option words");
        assert_eq!(&out[20..20 + words * 4], &options[..], "options untouched");
        assert_eq!(out[0], 0x45 + words as u8, "IHL untouched");
    }
}

// ---------------------------------------------------------------------------------------
// IPv6 extension chains
// ---------------------------------------------------------------------------------------

#[test]
fn ipv6_extension_headers_do_not_change_the_translation() {
    let chains: &[(&str, &[Ext])] = &[
        ("hop-by-hop", &[HOP_BY_HOP]),
        ("destination options", &[DEST_OPTS]),
        ("hop-by-hop, routing", &[HOP_BY_HOP, ROUTING]),
        (
            "hop-by-hop, routing, atomic fragment",
            &[HOP_BY_HOP, ROUTING, ATOMIC_FRAGMENT],
        ),
        (
            "RFC 8200 order, final destination options included",
            &[HOP_BY_HOP, DEST_OPTS, ROUTING, ATOMIC_FRAGMENT, DEST_OPTS],
        ),
        // Linux's ipv6_skip_exthdr walks any number of them.
        ("a long chain: ten destination options", &[DEST_OPTS; 10]),
        ("routing twice", &[ROUTING, ROUTING]),
    ];
    for (i, (name, chain)) in chains.iter().enumerate() {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let client = SocketAddr::new("fd00:10::50".parse().unwrap(), 42000 + i as u16);
        let plain = tcp(client, sa("[fd00:10:1::120]:7000"), "syn", b"x");
        let packet = with_extensions(&plain, chain);
        let ext_len = 8 * chain.len();
        let (source, destination, out) = forward_translated(&mut engine, packet.clone(), secs(0));
        assert_eq!(
            (source, destination),
            (client, sa("[fd00:10::120]:7")),
            "{name}"
        );
        assert_eq!(
            &out[40..40 + ext_len],
            &packet[40..40 + ext_len],
            "{name}: chain untouched"
        );
        // The reply, with the same chain, comes back from the Service.
        let reply = with_extensions(&reply_to(&strip(&out, ext_len), "syn,ack", b""), chain);
        let (source, destination, _) = forward_translated(&mut engine, reply, secs(1));
        assert_eq!(
            (source, destination),
            (sa("[fd00:10:1::120]:7000"), client),
            "{name}: reply"
        );
    }
}

/// `packet` without the `ext_len` bytes of extensions after its IPv6 header.
fn strip(packet: &[u8], ext_len: usize) -> Vec<u8> {
    let mut out = packet[..40].to_vec();
    // The last extension header's next header is the transport.
    out[6] = packet[40 + ext_len - 8];
    out.extend_from_slice(&packet[40 + ext_len..]);
    fix_ipv6(&mut out);
    out
}

#[test]
fn ipv6_unknown_or_truncated_extensions() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    let syn = tcp(
        sa("[fd00:10::50]:43000"),
        sa("[fd00:10:1::120]:7000"),
        "syn",
        b"",
    );
    // An unknown next header (253, reserved for experiments) after hop-by-hop gets the
    // verdict the same protocol gets without it, and the packet is not rewritten.
    let mut bare = syn.clone();
    bare[6] = 253;
    let mut engine_bare = Engine::new(&nodoa_dual_stack());
    let (bare_verdict, bare_out) = forward(&mut engine_bare, bare.clone(), secs(0));
    assert!(!matches!(bare_verdict, Verdict::Translated(_)));
    assert_eq!(bare_out, bare);
    let mut unknown = with_extensions(&syn, &[HOP_BY_HOP]);
    unknown[40] = 253;
    expect(
        &mut engine,
        "unknown header after hop-by-hop",
        unknown,
        bare_verdict,
    );
    // An extension header whose length runs past the packet.
    let mut long = with_extensions(&syn, &[HOP_BY_HOP]);
    long[41] = 200;
    expect(
        &mut engine,
        "hop-by-hop longer than the packet",
        long,
        MALFORMED_EXT,
    );
    let mut long = with_extensions(&syn, &[HOP_BY_HOP, ROUTING]);
    long[49] = 30;
    expect(
        &mut engine,
        "routing header longer than the packet",
        long,
        MALFORMED_EXT,
    );
    // Hop-by-hop anywhere but first is malformed (RFC 8200 4.1; etherparse refuses it).
    let misplaced = with_extensions(&syn, &[DEST_OPTS, HOP_BY_HOP]);
    let (verdict, out) = forward(&mut engine, misplaced.clone(), secs(0));
    assert!(
        matches!(verdict, Verdict::Drop(_)) || verdict == bare_verdict,
        "misplaced hop-by-hop: {verdict:?}"
    );
    assert_eq!(out, misplaced, "misplaced hop-by-hop untouched");
}

// ---------------------------------------------------------------------------------------
// Overlapping fragments
// ---------------------------------------------------------------------------------------

/// A later fragment of the datagram of `first` at `offset` bytes carrying `data`.
fn later_fragment(first: &[u8], offset: usize, data: &[u8], more: bool) -> Vec<u8> {
    let (mut h, _) = Ipv4Header::from_slice(first).unwrap();
    h.fragment_offset = etherparse::IpFragOffset::try_new((offset / 8) as u16).unwrap();
    h.more_fragments = more;
    h.set_payload_len(data.len()).unwrap();
    h.header_checksum = h.calc_header_checksum();
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

#[test]
fn overlapping_and_repeated_fragments_follow_their_first_fragment() {
    // kube-dns has two pods: a fragment that went to the wrong one would show.
    let mut engine = Engine::new(&nodoa_two_dns());
    let whole = udp(sa("10.10.0.50:53001"), sa("10.10.1.10:53"), &[0x5a; 64]);
    let [first, last] = split(&whole, 32, 9);
    let (verdict, first_out) = forward(&mut engine, first.clone(), secs(0));
    assert!(translated(verdict).destination());
    let header = |p: &[u8]| Ipv4Header::from_slice(p).unwrap().0;
    let pod = header(&first_out).destination;
    // The first fragment again (a retransmission), a later one overlapping it (offset 8
    // inside the first's 32 bytes), one overlapping the last, then the last.
    let overlapping = later_fragment(&first, 8, &[0xee; 16], true);
    let overlapping_last = later_fragment(&first, 24, &[0xdd; 24], true);
    for (name, packet) in [
        ("first fragment again", first.clone()),
        ("fragment overlapping the first", overlapping),
        ("fragment overlapping the last", overlapping_last),
        ("last fragment", last),
    ] {
        let (verdict, out) = forward(&mut engine, packet.clone(), secs(1));
        assert!(translated(verdict).destination(), "{name}");
        let h = header(&out);
        assert_eq!(h.destination, pod, "{name}: same pod as the first");
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "{name}");
        if name == "first fragment again" {
            assert_eq!(out, first_out, "{name}: translated exactly as before");
        } else {
            assert_eq!(&out[20..], &packet[20..], "{name}: payload untouched");
        }
    }
    assert_eq!(engine.connections(), 1, "one datagram, one connection");
}

// ---------------------------------------------------------------------------------------
// TTL / hop limit 1
// ---------------------------------------------------------------------------------------

#[test]
fn ttl_and_hop_limit_one_are_translated_like_any_packet() {
    // DNAT happens at PREROUTING, before the forward path decrements the TTL (and sends
    // time exceeded): the engine does not route, so TTL 1 and 0 are translated as usual
    // and the TTL byte is left for the router.
    for ttl in [0u8, 1, 255] {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let mut v4 = tcp(sa("10.10.0.50:44000"), sa("10.10.1.101:3307"), "syn", b"");
        v4[8] = ttl;
        fix_ipv4(&mut v4);
        let (_, destination, out) = forward_translated(&mut engine, v4, secs(0));
        assert_eq!(destination, sa("10.10.0.103:3306"), "TTL {ttl}");
        assert_eq!(out[8], ttl, "TTL {ttl} untouched");
        let mut v6 = tcp(
            sa("[fd00:10::50]:44000"),
            sa("[fd00:10:1::120]:7000"),
            "syn",
            b"",
        );
        v6[7] = ttl;
        let (_, destination, out) = forward_translated(&mut engine, v6, secs(0));
        assert_eq!(destination, sa("[fd00:10::120]:7"), "hop limit {ttl}");
        assert_eq!(out[7], ttl, "hop limit {ttl} untouched");
    }
}

// ---------------------------------------------------------------------------------------
// SYN flood
// ---------------------------------------------------------------------------------------

#[test]
fn syn_flood_fills_conntrack_without_touching_established_flows() {
    const CAPACITY: usize = 64;
    let mut state = nodoa_dual_stack();
    state.proxy.conntrack_capacity = CAPACITY;
    let mut engine = Engine::new(&state);
    // An established connection before the flood.
    let client = sa("10.10.0.50:45000");
    let service = sa("10.10.1.101:3307");
    let (_, pod, syn_out) =
        forward_translated(&mut engine, tcp(client, service, "syn", b""), secs(0));
    forward_translated(&mut engine, reply_to(&syn_out, "syn,ack", b""), secs(0));
    forward_translated(&mut engine, tcp(client, service, "ack", b""), secs(0));
    // 2000 SYNs from spoofed outside sources to a NodePort.
    let (mut accepted, mut dropped) = (0u64, 0u64);
    for i in 0..2000u32 {
        let source = SocketAddr::new(
            std::net::Ipv4Addr::from(0xc633_6400 + i).into(),
            (1024 + i % 60000) as u16,
        );
        let syn = tcp(source, sa("192.168.0.101:30880"), "syn", b"");
        let (verdict, out) = forward(&mut engine, syn.clone(), secs(1));
        match verdict {
            Verdict::Translated(_) => {
                accepted += 1;
                assert_checksums(&out);
            }
            Verdict::Drop(DropReason::ConntrackFull) => {
                dropped += 1;
                assert_eq!(out, syn, "a refused SYN is not rewritten");
            }
            other => panic!("SYN {i}: {other:?}"),
        }
        assert!(
            engine.connections() <= CAPACITY,
            "memory bounded at SYN {i}"
        );
        // The established connection keeps going both ways, all through the flood.
        if i % 250 == 0 {
            let (_, d, _) =
                forward_translated(&mut engine, tcp(client, service, "ack", b"q"), secs(1));
            assert_eq!(d, pod);
            let (s, d, _) = forward_translated(&mut engine, tcp(pod, client, "ack", b"a"), secs(1));
            assert_eq!((s, d), (service, client));
        }
    }
    assert_eq!(accepted, CAPACITY as u64 - 1, "the table fills");
    assert_eq!(dropped, 2000 - accepted);
    assert_eq!(engine.counters().drops(DropReason::ConntrackFull), dropped);
    // The half-open connections expire after SYN_SENT's 120 s; the established one stays,
    // and new connections are taken again.
    engine.handle_timeout(secs(122));
    assert_eq!(engine.connections(), 1);
    let (_, d, _) = forward_translated(
        &mut engine,
        tcp(
            sa("203.0.113.9:50000"),
            sa("192.168.0.101:30880"),
            "syn",
            b"",
        ),
        secs(122),
    );
    assert_eq!(d, sa("10.10.0.105:80"));
    let (_, d, _) = forward_translated(&mut engine, tcp(client, service, "ack", b""), secs(123));
    assert_eq!(d, pod, "the established connection outlived the flood");
}

// ---------------------------------------------------------------------------------------
// Two connections, one post-DNAT tuple (found by the packet_cluster fuzz target)
// ---------------------------------------------------------------------------------------

#[test]
fn a_connection_is_masqueraded_only_when_it_was_marked_for_it() {
    use common::clusters::{EXT, custom_cluster};
    // default/external-ips-local: cluster IP 10.10.1.25, external IP 198.51.100.125, port 80
    // -> 8080, externalTrafficPolicy Local, endpoints 10.10.0.11 (this node) and 10.10.0.21.
    let mut engine = Engine::new(&custom_cluster(|_| {}));
    let local_pod = sa("10.10.0.11:8080");
    // An outside client reaches the cluster IP: masqueraded (kube-proxy marks outside
    // sources to cluster IPs). Round robin: retry from new ports until the local pod.
    let mut port = 50000;
    loop {
        let client = SocketAddr::new(EXT.parse().unwrap(), port);
        let (_, d, _) = forward_translated(
            &mut engine,
            tcp(client, sa("10.10.1.25:80"), "syn", b""),
            secs(0),
        );
        if d == local_pod {
            break;
        }
        port += 1;
    }
    let client = SocketAddr::new(EXT.parse().unwrap(), port);
    // The same client address and port to the external IP: externalTrafficPolicy Local
    // keeps the client's source (no masquerade mark), and it reaches the same pod.
    let (s, d, out) = forward_translated(
        &mut engine,
        tcp(client, sa("198.51.100.125:80"), "syn", b""),
        secs(1),
    );
    assert_eq!(d, local_pod);
    assert_eq!(
        s, client,
        "not masqueraded: its own connection carries no mark"
    );
    let (s, d, _) = forward_translated(&mut engine, reply_to(&out, "syn,ack", b""), secs(1));
    assert_eq!((s, d), (sa("198.51.100.125:80"), client), "its reply");
}

/// Found by fuzzing: a TCP packet without flags is invalid to conntrack (not tracked, not
/// translated). When it has the tuple a masqueraded connection leaves DNAT with, it must
/// still leave unmarked: Linux does no NAT on invalid packets, whatever shares their tuple.
#[test]
fn an_invalid_packet_is_not_masqueraded_as_the_connection_sharing_its_tuple() {
    let mut engine = Engine::new(&kubenat_core::reference::cluster("nodoa"));
    let client = sa("245.245.0.50:40000");
    // An outside client to mariadb-service: DNAT to the pod and masquerade.
    let (s, d, _) = forward_translated(
        &mut engine,
        tcp(client, sa("10.10.1.101:3307"), "syn", b""),
        secs(0),
    );
    assert_eq!(d, sa("10.10.0.103:3306"));
    assert_ne!(s, client, "masqueraded");
    // The same client straight to the pod, no flags: the connection's post-DNAT tuple.
    let invalid = tcp(client, sa("10.10.0.103:3306"), "", b"");
    for path in [Path::Forward, Path::LocalOut] {
        let mut packet = invalid.clone();
        let verdict = engine.process_path(path, &mut packet, secs(10));
        assert_eq!(verdict, Verdict::Accept, "{path:?}");
        assert_eq!(packet, invalid, "{path:?}: byte-identical");
    }
}
