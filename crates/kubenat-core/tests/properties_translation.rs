//! Property tests of what the engine writes, over generated clusters and valid flows:
//!
//! 3. Every translated TCP/UDP packet re-parses with etherparse, says what the verdict says,
//!    and carries the checksums etherparse computes from scratch.
//! 4. A reply to a new connection translated on the forward path comes back addressed to the
//!    original source, from the original destination.
//! 5. Round robin hands `k` of `k * n` new flows to each of `n` endpoints.
//! 6. The incremental checksum update equals etherparse's full recomputation.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::cluster_shape::{v4, v6};
use common::generated::{Call, any_cluster, config, destinations, run, sources};
use common::net;
use common::packets::{assert_checksums, endpoints};
use etherparse::{IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader};
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine, Hook, Instant,
    Node, Path, Protocol, ProxyConfig, Rewrite, Service, ServiceName, ServicePort, TargetPort,
    Verdict, checksum, reference,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;

// ---------------------------------------------------------------------------------------
// Valid packets
// ---------------------------------------------------------------------------------------

/// A flow to send: indices into [`destinations`] and [`sources`] (or an arbitrary source),
/// and the packet's details.
#[derive(Clone, Debug)]
struct FlowSpec {
    destination: Index,
    /// Any destination port/address instead of a listed one.
    random_destination: Option<(u32, u128, u16)>,
    source: Index,
    random_source: Option<(u32, u128)>,
    sport: u16,
    /// Use the other protocol than the destination's.
    flip_protocol: bool,
    tcp_flags: u8,
    seq: u32,
    window: u16,
    payload: Vec<u8>,
    /// IPv4 options (words) / IPv6 traffic class.
    ip_options: u8,
    udp_zero_checksum: bool,
    ttl: u8,
}

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    (
        any::<Index>(),
        prop::option::weighted(0.1, any::<(u32, u128, u16)>()),
        any::<Index>(),
        prop::option::weighted(0.2, any::<(u32, u128)>()),
        any::<u16>(),
        prop::bool::weighted(0.1),
        prop_oneof![Just(0x02u8), Just(0x10), Just(0x12), any::<u8>()],
        any::<u32>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..48),
        0u8..4,
        (prop::bool::weighted(0.2), 1u8..=255),
    )
        .prop_map(
            |(
                destination,
                random_destination,
                source,
                random_source,
                sport,
                flip_protocol,
                tcp_flags,
                seq,
                window,
                payload,
                ip_options,
                (udp_zero_checksum, ttl),
            )| FlowSpec {
                destination,
                random_destination,
                source,
                random_source,
                sport,
                flip_protocol,
                tcp_flags,
                seq,
                window,
                payload,
                ip_options,
                udp_zero_checksum,
                ttl,
            },
        )
}

/// The (protocol, source, destination) a spec means in `state`.
fn resolve(state: &ClusterState, spec: &FlowSpec) -> (Protocol, SocketAddr, SocketAddr) {
    let dests = destinations(state);
    let (mut destination, mut protocol) = *spec.destination.get(&dests);
    if let Some((a, b, port)) = spec.random_destination {
        let ip = match destination.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(a)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(b)),
        };
        destination = SocketAddr::new(ip, port);
    }
    if spec.flip_protocol {
        protocol = match protocol {
            Protocol::Tcp => Protocol::Udp,
            _ => Protocol::Tcp,
        };
    }
    let family: Vec<IpAddr> = sources(state)
        .into_iter()
        .filter(|s| s.is_ipv4() == destination.is_ipv4())
        .collect();
    let ip = match (spec.random_source, destination.ip()) {
        (Some((a, _)), IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::from(a)),
        (Some((_, b)), IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::from(b)),
        (None, _) => *spec.source.get(&family),
    };
    (protocol, SocketAddr::new(ip, spec.sport), destination)
}

/// Builds the packet with etherparse: arbitrary TCP flags, sequence numbers, window, IPv4
/// options, IPv6 traffic class, a zero UDP checksum over IPv4 when asked.
fn build(
    protocol: Protocol,
    src: SocketAddr,
    dst: SocketAddr,
    spec: &FlowSpec,
    flags: u8,
) -> Vec<u8> {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut header =
                Ipv4Header::new(0, spec.ttl, IpNumber::TCP, s.octets(), d.octets()).unwrap();
            header.identification = spec.seq as u16;
            header.dont_fragment = spec.seq & 0x1_0000 != 0;
            // NOP options ending in End of Options, a multiple of 4 bytes.
            let words = usize::from(spec.ip_options);
            if words > 0 {
                let mut options = vec![1u8; words * 4];
                *options.last_mut().unwrap() = 0;
                header.options = etherparse::Ipv4Options::try_from(&options[..]).unwrap();
            }
            etherparse::IpHeaders::Ipv4(header, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => etherparse::IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: spec.ip_options.wrapping_mul(37),
                flow_label: etherparse::Ipv6FlowLabel::try_new(spec.seq & 0xf_ffff).unwrap(),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: spec.ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => unreachable!("same family"),
    };
    let builder = PacketBuilder::ip(ip);
    let mut out = Vec::new();
    match protocol {
        Protocol::Tcp => {
            let mut b = builder.tcp(src.port(), dst.port(), spec.seq, spec.window);
            let bit = |n: u8| flags & (1 << n) != 0;
            if bit(0) {
                b = b.fin();
            }
            if bit(1) {
                b = b.syn();
            }
            if bit(2) {
                b = b.rst();
            }
            if bit(3) {
                b = b.psh();
            }
            if bit(4) {
                b = b.ack(spec.seq.rotate_left(7));
            }
            if bit(5) {
                b = b.urg(spec.window.rotate_left(3));
            }
            if bit(6) {
                b = b.ece();
            }
            if bit(7) {
                b = b.cwr();
            }
            b.write(&mut out, &spec.payload).unwrap();
        }
        _ => {
            builder
                .udp(src.port(), dst.port())
                .write(&mut out, &spec.payload)
                .unwrap();
            if spec.udp_zero_checksum && src.is_ipv4() {
                let at = usize::from(spec.ip_options) * 4 + 20 + 6;
                out[at..at + 2].fill(0);
            }
        }
    }
    out
}

/// TCP flags of a reply to a packet with `flags`: SYN-ACK to a SYN, else ACK.
fn reply_flags(flags: u8) -> u8 {
    if flags & 0x17 == 0x02 { 0x12 } else { 0x10 }
}

/// Checks a translated packet: its checksums are etherparse's, and the rewrite says what
/// changed from `before`, as the packet shows it.
fn check_translated(packet: &[u8], rewrite: Rewrite, before: (SocketAddr, SocketAddr)) {
    assert_checksums(packet);
    let (source, destination) = endpoints(packet);
    assert_eq!(
        (rewrite.source(), rewrite.destination()),
        (source != before.0, destination != before.1),
        "the verdict says what the packet shows ({before:?} -> {source} {destination})"
    );
}

// ---------------------------------------------------------------------------------------
// Valid flows: checksums (3) and replies (4)
// ---------------------------------------------------------------------------------------

fn flow_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => Just(Call::Path(Path::Forward)),
        1 => Just(Call::Path(Path::LocalOut)),
        1 => Just(Call::Hook(Hook::Prerouting)),
        1 => Just(Call::Hook(Hook::Output)),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Property 3: translated packets, and the replies to them, are valid to etherparse.
    #[test]
    fn translated_packets_have_valid_checksums(
        state in any_cluster(),
        flows in prop::collection::vec((flow_spec(), flow_call()), 1..8),
    ) {
        let mut engine = Engine::new(&state);
        for (i, (spec, call)) in flows.iter().enumerate() {
            let now = Instant::from_millis(i as u64);
            let (protocol, src, dst) = resolve(&state, spec);
            let mut packet = build(protocol, src, dst, spec, spec.tcp_flags);
            assert_checksums(&packet);
            if let Verdict::Translated(t) = run(&mut engine, *call, &mut packet, now) {
                check_translated(&packet, t, (src, dst));
                let (source, destination) = endpoints(&packet);
                // The reply, through the forward path.
                let mut reply = build(
                    protocol,
                    destination,
                    source,
                    spec,
                    reply_flags(spec.tcp_flags),
                );
                if let Verdict::Translated(r) =
                    run(&mut engine, Call::Path(Path::Forward), &mut reply, now)
                {
                    check_translated(&reply, r, (destination, source));
                }
            }
        }
    }

    /// Property 4: forward, then reply, restores the original tuple.
    #[test]
    fn reply_restores_original_tuple(
        state in any_cluster(),
        flows in prop::collection::vec(flow_spec(), 1..8),
    ) {
        let mut engine = Engine::new(&state);
        for (i, spec) in flows.iter().enumerate() {
            let now = Instant::from_millis(i as u64);
            let (protocol, src, dst) = resolve(&state, spec);
            let mut packet = build(protocol, src, dst, spec, spec.tcp_flags);
            let tracked = engine.connections();
            let verdict = engine.process_path(Path::Forward, &mut packet, now);
            let Verdict::Translated(t) = verdict else { continue };
            if engine.connections() != tracked + 1 {
                // Not a new connection (a packet of one already tracked).
                continue;
            }
            let (to_src, to_dst) = endpoints(&packet);
            let mut reply = build(protocol, to_dst, to_src, spec, reply_flags(spec.tcp_flags));
            let back = engine.process_path(Path::Forward, &mut reply, now);
            prop_assert!(
                matches!(back, Verdict::Translated(_)),
                "reply to {:?} got {:?}", t, back
            );
            prop_assert_eq!(endpoints(&reply), (dst, src), "reply to {:?}", t);
            assert_checksums(&reply);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Round robin (5)
// ---------------------------------------------------------------------------------------

/// One ClusterIP service (`protocol` port 80) with `n` endpoints on assorted nodes.
fn one_service(n: usize, ipv6: bool, protocol: Protocol, nodes: &[usize]) -> ClusterState {
    let endpoint_ip = |i: usize| {
        if ipv6 {
            v6([0xfd00, 0x20, 0, 0, 0, 0, 1, i as u16 + 1])
        } else {
            v4(10, 20, 1, i as u8 + 1)
        }
    };
    let name = ServiceName::new("default", "rr");
    let mut state = ClusterState {
        nodes: (0..3)
            .map(|i| Node {
                name: format!("n{i}"),
                addresses: vec![v4(172, 16, 0, 10 + i)],
            })
            .collect(),
        proxy: ProxyConfig {
            node_name: "n0".into(),
            node_ips: vec![v4(172, 16, 0, 10), v6([0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10])],
            cluster_cidrs: vec![net("10.20.0.0/16"), net("fd00:20::/48")],
            service_cidrs: vec![net("10.96.0.0/24"), net("fd00:96::/112")],
            conntrack_capacity: 1024,
            ..ProxyConfig::default()
        },
        ..ClusterState::default()
    };
    state.services.push(Service {
        name: name.clone(),
        cluster_ips: vec![if ipv6 {
            v6([0xfd00, 0x96, 0, 0, 0, 0, 0, 1])
        } else {
            v4(10, 96, 0, 1)
        }],
        ports: vec![ServicePort {
            name: "http".into(),
            protocol,
            port: 80,
            target_port: TargetPort::Number(8080),
            node_port: None,
        }],
        ..Service::default()
    });
    state.endpoint_slices.push(EndpointSlice {
        name: "rr-1".into(),
        service: name,
        ports: vec![EndpointPort {
            name: "http".into(),
            protocol,
            port: 8080,
        }],
        endpoints: (0..n)
            .map(|i| Endpoint {
                addresses: vec![endpoint_ip(i)],
                conditions: EndpointConditions::default(),
                node_name: Some(format!("n{}", nodes[i % nodes.len()])),
            })
            .collect(),
    });
    state
}

proptest! {
    #![proptest_config(config(256))]

    /// Property 5: k * n new flows (distinct source ports) to one ClusterIP give each of
    /// the n endpoints exactly k.
    #[test]
    fn round_robin_is_even(
        (n, k, sports) in (1usize..8, 1usize..10).prop_flat_map(|(n, k)| {
            (Just(n), Just(k), prop::collection::btree_set(1024u16.., n * k))
        }),
        ipv6 in any::<bool>(),
        udp in any::<bool>(),
        outside in any::<bool>(),
        nodes in prop::collection::vec(0usize..3, 1..4),
    ) {
        let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
        let state = one_service(n, ipv6, protocol, &nodes);
        let mut engine = Engine::new(&state);
        let (client, service) = match (ipv6, outside) {
            (false, false) => (v4(10, 20, 2, 7), v4(10, 96, 0, 1)),
            (false, true) => (v4(198, 51, 100, 7), v4(10, 96, 0, 1)),
            (true, false) => (
                v6([0xfd00, 0x20, 2, 0, 0, 0, 0, 7]),
                v6([0xfd00, 0x96, 0, 0, 0, 0, 0, 1]),
            ),
            (true, true) => (
                v6([0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7]),
                v6([0xfd00, 0x96, 0, 0, 0, 0, 0, 1]),
            ),
        };
        let mut hits: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        for sport in sports {
            let src = SocketAddr::new(client, sport);
            let dst = SocketAddr::new(service, 80);
            let mut packet = match protocol {
                Protocol::Tcp => common::packets::tcp(src, dst, "syn", b""),
                _ => common::packets::udp(src, dst, b"q"),
            };
            let verdict = engine.process(Hook::Prerouting, &mut packet, Instant::ZERO);
            let Verdict::Translated(t) = verdict else {
                return Err(TestCaseError::fail(format!("{src} -> {dst}: {verdict:?}")));
            };
            prop_assert!(t.destination());
            *hits.entry(endpoints(&packet).1).or_default() += 1;
        }
        let expected: BTreeMap<SocketAddr, usize> = state.endpoint_slices[0]
            .endpoints
            .iter()
            .map(|e| (SocketAddr::new(e.addresses[0], 8080), k))
            .collect();
        prop_assert_eq!(hits, expected);
    }
}

// ---------------------------------------------------------------------------------------
// Incremental checksums (6)
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    /// Property 6: RFC 1624 update of an IPv4 header checksum after its addresses change
    /// equals etherparse's recomputation of the new header.
    #[test]
    fn incremental_ipv4_checksum_matches_etherparse(
        (tos, payload_len, id, df, ttl, protocol) in
            (any::<u8>(), 0u16..1400, any::<u16>(), any::<bool>(), any::<u8>(), any::<u8>()),
        option_words in 0usize..=10,
        option_byte in any::<u8>(),
        (old_src, old_dst, new_src, new_dst) in any::<([u8; 4], [u8; 4], [u8; 4], [u8; 4])>(),
        which in 0u8..3,
    ) {
        let mut header =
            Ipv4Header::new(payload_len, ttl, IpNumber(protocol), old_src, old_dst).unwrap();
        header.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
        header.ecn = etherparse::IpEcn::try_new(tos & 3).unwrap();
        header.identification = id;
        header.dont_fragment = df;
        header.options =
            etherparse::Ipv4Options::try_from(&vec![option_byte; option_words * 4][..]).unwrap();
        header.header_checksum = header.calc_header_checksum();
        let old_bytes = header.to_bytes();
        let mut changed = header.clone();
        if which != 1 {
            changed.source = new_src;
        }
        if which != 0 {
            changed.destination = new_dst;
        }
        let new_bytes = changed.to_bytes();
        // Whole address block, and each address on its own, must agree.
        let at_once = checksum::update(header.header_checksum, &old_bytes[12..20], &new_bytes[12..20]);
        let one_by_one = checksum::update(
            checksum::update(header.header_checksum, &old_bytes[12..16], &new_bytes[12..16]),
            &old_bytes[16..20],
            &new_bytes[16..20],
        );
        let expected = changed.calc_header_checksum();
        prop_assert_eq!(at_once, expected);
        prop_assert_eq!(one_by_one, expected);
    }

    /// The same for a TCP checksum whose pseudo-header addresses and ports change (what the
    /// NAT rewrite does), against etherparse's computation over IPv4 and IPv6.
    #[test]
    fn incremental_tcp_checksum_matches_etherparse(
        ports in any::<(u16, u16, u16, u16)>(),
        (seq, window) in any::<(u32, u16)>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        v4 in any::<([u8; 4], [u8; 4], [u8; 4], [u8; 4])>(),
        v6 in any::<([u8; 16], [u8; 16], [u8; 16], [u8; 16])>(),
        ipv6 in any::<bool>(),
    ) {
        let (sport, dport, new_sport, new_dport) = ports;
        let old = TcpHeader::new(sport, dport, seq, window);
        let new = TcpHeader::new(new_sport, new_dport, seq, window);
        let (old_addrs, new_addrs, before, after) = if ipv6 {
            let (s, d, ns, nd) = v6;
            (
                [s, d].concat(),
                [ns, nd].concat(),
                old.calc_checksum_ipv6_raw(s, d, &payload).unwrap(),
                new.calc_checksum_ipv6_raw(ns, nd, &payload).unwrap(),
            )
        } else {
            let (s, d, ns, nd) = v4;
            (
                [s, d].concat(),
                [ns, nd].concat(),
                old.calc_checksum_ipv4_raw(s, d, &payload).unwrap(),
                new.calc_checksum_ipv4_raw(ns, nd, &payload).unwrap(),
            )
        };
        let sum = checksum::update(before, &old_addrs, &new_addrs);
        let old_ports = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
        let new_ports = [new_sport.to_be_bytes(), new_dport.to_be_bytes()].concat();
        prop_assert_eq!(checksum::update(sum, &old_ports, &new_ports), after);
    }
}

/// A sanity anchor for the generators: the reference cluster's ClusterIP flow is
/// translated to its one endpoint and the reply comes back (so property 4 is not vacuous).
#[test]
fn generators_reach_translation() {
    let state = reference::cluster("nodoa");
    let dests = destinations(&state);
    assert!(dests.contains(&(common::sa("10.10.1.101:3307"), Protocol::Tcp)));
    assert!(dests.contains(&(common::sa("192.168.0.101:30880"), Protocol::Tcp)));
    let mut engine = Engine::new(&state);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut spec = flow_spec().new_tree(&mut runner).unwrap().current();
    spec.payload = vec![1, 2, 3];
    spec.ip_options = 2;
    let src = common::sa("10.10.0.50:40000");
    let dst = common::sa("10.10.1.101:3307");
    let mut packet = build(Protocol::Tcp, src, dst, &spec, 0x02);
    assert_checksums(&packet);
    let Verdict::Translated(t) = engine.process_path(Path::Forward, &mut packet, Instant::ZERO)
    else {
        panic!("pod to mariadb-service is DNATed");
    };
    check_translated(&packet, t, (src, dst));
    assert_eq!(endpoints(&packet).1, common::sa("10.10.0.103:3306"));
}
