//! Property tests of the engine over generated packets and clusters.
//!
//! 1. Arbitrary bytes, and arbitrary bytes behind valid IPv4/IPv6 (and ICMP error) header
//!    prefixes, never make any entry point panic, and the counters count every call once.
//! 2. An `Accept` leaves the packet byte-identical.
//! 3. Every translated TCP/UDP packet re-parses with etherparse, says what the verdict says,
//!    and carries the checksums etherparse computes from scratch.
//! 4. A reply to a new connection translated on the forward path comes back addressed to the
//!    original source, from the original destination.
//! 5. Round robin hands `k` of `k * n` new flows to each of `n` endpoints.
//! 6. The incremental checksum update equals etherparse's full recomputation.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::{assert_checksums, endpoints};
use etherparse::{IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader};
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSelection, EndpointSlice,
    Engine, Hook, Instant, IpNet, Node, Path, Protocol, ProxyConfig, ProxyMode, Service,
    ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy, Verdict,
    checksum, reference, reject,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;

/// `cases` cases, or `PROPTEST_CASES` when set (for a longer hunt).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------

/// The notes' cluster seen from one of its nodes, with a conntrack table of `capacity`.
fn notes_cluster() -> impl Strategy<Value = ClusterState> {
    (
        prop::sample::select(reference::NODES.map(|(name, _)| name).to_vec()),
        any::<bool>(),
    )
        .prop_map(|(node, iptables)| {
            let mut state = reference::cluster(node);
            state.proxy.conntrack_capacity = 4096;
            if iptables {
                state.proxy.mode = ProxyMode::Iptables;
            }
            state
        })
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(segments: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(segments))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// One generated service: type, ports (protocol, port), policies, affinity, endpoints
/// (node index, ready, serving, terminating).
type ServiceSpec = (
    u8,
    Vec<(bool, u16)>,
    bool,
    bool,
    bool,
    Vec<(usize, bool, bool, bool)>,
);

fn service_spec() -> impl Strategy<Value = ServiceSpec> {
    (
        0u8..3,
        prop::collection::vec((any::<bool>(), 1u16..200), 1..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (
                0usize..3,
                prop::bool::weighted(0.8),
                any::<bool>(),
                any::<bool>(),
            ),
            0..4,
        ),
    )
}

/// A dual-stack cluster: nodes 172.16.0.10+i / fd00:16::10+i, pods 10.20.<node>.x /
/// fd00:20:<node>::x, services 10.96.0.x / fd00:96::x, load balancers 203.0.113.x /
/// 2001:db8:1b::x. Every Service is dual-stack with one endpoint per family per pod.
fn dual_stack_cluster() -> impl Strategy<Value = ClusterState> {
    (
        prop::collection::vec(service_spec(), 1..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![2usize, 16, 4096]),
        any::<u64>(),
    )
        .prop_map(
            |(specs, iptables, masquerade_all, maglev, capacity, seed)| {
                let node_v4 = |i: usize| v4(172, 16, 0, 10 + i as u8);
                let node_v6 = |i: usize| v6([0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10 + i as u16]);
                let mut state = ClusterState {
                    nodes: (0..3)
                        .map(|i| Node {
                            name: format!("n{i}"),
                            addresses: vec![node_v4(i), node_v6(i)],
                        })
                        .collect(),
                    proxy: ProxyConfig {
                        node_name: "n0".into(),
                        node_ips: vec![node_v4(0), node_v6(0)],
                        cluster_cidrs: vec![net("10.20.0.0/16"), net("fd00:20::/48")],
                        service_cidrs: vec![net("10.96.0.0/24"), net("fd00:96::/112")],
                        masquerade_all,
                        mode: if iptables {
                            ProxyMode::Iptables
                        } else {
                            ProxyMode::Nftables
                        },
                        selection: if maglev {
                            EndpointSelection::Maglev { table_size: 251 }
                        } else {
                            EndpointSelection::RoundRobin
                        },
                        conntrack_capacity: capacity,
                        seed,
                        ..ProxyConfig::default()
                    },
                    ..ClusterState::default()
                };
                for (i, (kind, ports, etp_local, itp_local, affinity, eps)) in
                    specs.into_iter().enumerate()
                {
                    let i8 = i as u8 + 1;
                    let name = ServiceName::new("default", format!("svc{i}"));
                    let service_type = match kind {
                        0 => ServiceType::ClusterIp,
                        1 => ServiceType::NodePort,
                        _ => ServiceType::LoadBalancer,
                    };
                    // Distinct port numbers inside one service.
                    let mut seen = Vec::new();
                    let ports: Vec<(Protocol, u16)> = ports
                        .into_iter()
                        .map(|(udp, port)| {
                            let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
                            (protocol, port)
                        })
                        .filter(|p| {
                            let new = !seen.contains(p);
                            seen.push(*p);
                            new
                        })
                        .collect();
                    let service_ports: Vec<ServicePort> = ports
                        .iter()
                        .enumerate()
                        .map(|(j, &(protocol, port))| ServicePort {
                            name: format!("p{j}"),
                            protocol,
                            port,
                            target_port: TargetPort::Number(port + 1000),
                            node_port: (service_type != ServiceType::ClusterIp)
                                .then_some(30000 + (i * 10 + j) as u16),
                        })
                        .collect();
                    let lb = service_type == ServiceType::LoadBalancer;
                    state.services.push(Service {
                        name: name.clone(),
                        service_type,
                        cluster_ips: vec![
                            v4(10, 96, 0, i8),
                            v6([0xfd00, 0x96, 0, 0, 0, 0, 0, u16::from(i8)]),
                        ],
                        ports: service_ports,
                        load_balancer_ips: if lb {
                            vec![
                                v4(203, 0, 113, i8),
                                v6([0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, u16::from(i8)]),
                            ]
                        } else {
                            Vec::new()
                        },
                        external_traffic_policy: if etp_local {
                            TrafficPolicy::Local
                        } else {
                            TrafficPolicy::Cluster
                        },
                        internal_traffic_policy: if itp_local {
                            TrafficPolicy::Local
                        } else {
                            TrafficPolicy::Cluster
                        },
                        session_affinity: if affinity {
                            SessionAffinity::ClientIp {
                                timeout: SessionAffinity::DEFAULT_TIMEOUT,
                            }
                        } else {
                            SessionAffinity::None
                        },
                        ..Service::default()
                    });
                    let mut endpoints = Vec::new();
                    for (e, &(node, ready, serving, terminating)) in eps.iter().enumerate() {
                        let host = (i * 16 + e + 1) as u8;
                        let conditions = EndpointConditions {
                            ready,
                            serving: serving || ready,
                            terminating: terminating && !ready,
                        };
                        for address in [
                            v4(10, 20, node as u8, host),
                            v6([0xfd00, 0x20, node as u16, 0, 0, 0, 0, u16::from(host)]),
                        ] {
                            endpoints.push(Endpoint {
                                addresses: vec![address],
                                conditions,
                                node_name: Some(format!("n{node}")),
                            });
                        }
                    }
                    state.endpoint_slices.push(EndpointSlice {
                        name: format!("svc{i}-abc12"),
                        service: name,
                        ports: ports
                            .iter()
                            .enumerate()
                            .map(|(j, &(protocol, port))| EndpointPort {
                                name: format!("p{j}"),
                                protocol,
                                port: port + 1000,
                            })
                            .collect(),
                        endpoints,
                    });
                }
                state
            },
        )
}

fn any_cluster() -> impl Strategy<Value = ClusterState> {
    prop_oneof![notes_cluster(), dual_stack_cluster()]
}

/// Destinations worth aiming at in `state`: every service address and port (right and wrong
/// protocol), every node address with every NodePort, localhost NodePorts.
fn destinations(state: &ClusterState) -> Vec<(SocketAddr, Protocol)> {
    let mut out = Vec::new();
    let node_ips: Vec<IpAddr> = state
        .nodes
        .iter()
        .flat_map(|n| n.addresses.iter().copied())
        .chain(state.proxy.node_ips.iter().copied())
        .chain([v4(127, 0, 0, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)])
        .collect();
    for service in &state.services {
        let addresses = service
            .cluster_ips
            .iter()
            .chain(&service.external_ips)
            .chain(&service.load_balancer_ips);
        for &address in addresses {
            for port in &service.ports {
                out.push((SocketAddr::new(address, port.port), port.protocol));
                // The other protocol on the same port: not served.
                let other = match port.protocol {
                    Protocol::Tcp => Protocol::Udp,
                    _ => Protocol::Tcp,
                };
                out.push((SocketAddr::new(address, port.port), other));
                out.push((
                    SocketAddr::new(address, port.port.wrapping_add(1)),
                    port.protocol,
                ));
            }
        }
        for port in &service.ports {
            if let Some(node_port) = port.node_port {
                for &ip in &node_ips {
                    out.push((SocketAddr::new(ip, node_port), port.protocol));
                }
            }
        }
    }
    out
}

/// Sources worth sending from in `state`: pods (endpoints), nodes, outside clients.
fn sources(state: &ClusterState) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = state
        .endpoint_slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.iter().copied()))
        .chain(state.nodes.iter().flat_map(|n| n.addresses.iter().copied()))
        .chain([
            v4(10, 10, 0, 50),
            v4(10, 20, 1, 200),
            v4(192, 168, 0, 200),
            v4(192, 168, 0, 10),
            v4(198, 51, 100, 7),
            v6([0xfd00, 0x20, 1, 0, 0, 0, 0, 0x99]),
            v6([0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7]),
        ])
        .collect();
    out.sort();
    out.dedup();
    out
}

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

/// Checks a translated packet: it parses, its addresses are the verdict's `after`, and its
/// checksums are etherparse's.
fn check_translated(packet: &[u8], after: (SocketAddr, SocketAddr)) {
    assert_checksums(packet);
    assert_eq!(
        endpoints(packet),
        after,
        "the packet says what the verdict says"
    );
}

// ---------------------------------------------------------------------------------------
// Arbitrary bytes
// ---------------------------------------------------------------------------------------

/// Addresses the fuzzer puts in headers: the clusters' and a few arbitrary ones.
fn fuzz_v4() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        prop::sample::select(vec![
            [10, 10, 1, 101],
            [10, 10, 1, 102],
            [10, 10, 1, 105],
            [10, 10, 1, 10],
            [10, 10, 1, 200],
            [10, 10, 0, 102],
            [10, 10, 0, 103],
            [10, 10, 0, 112],
            [10, 10, 0, 10],
            [192, 168, 0, 100],
            [192, 168, 0, 101],
            [192, 168, 0, 102],
            [192, 168, 0, 103],
            [192, 168, 0, 200],
            [127, 0, 0, 1],
            [10, 96, 0, 1],
            [10, 96, 0, 2],
            [203, 0, 113, 1],
            [172, 16, 0, 10],
            [10, 20, 0, 1],
            [10, 20, 1, 2],
        ]),
        any::<[u8; 4]>(),
    ]
}

fn fuzz_v6() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        prop::sample::select(vec![
            [0xfd00u16, 0x96, 0, 0, 0, 0, 0, 1],
            [0xfd00, 0x96, 0, 0, 0, 0, 0, 2],
            [0xfd00, 0x96, 0, 0, 0, 0, 0, 0x99],
            [0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10],
            [0xfd00, 0x20, 0, 0, 0, 0, 0, 1],
            [0xfd00, 0x20, 1, 0, 0, 0, 0, 2],
            [0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, 1],
            [0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7],
            [0, 0, 0, 0, 0, 0, 0, 1],
        ])
        .prop_map(|s| Ipv6Addr::from(s).octets()),
        any::<[u8; 16]>(),
    ]
}

fn fuzz_port() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            53u16, 80, 3306, 3307, 8080, 8081, 30880, 30000, 30001, 30010, 30020, 1001, 1002,
        ]),
        1u16..200,
        any::<u16>(),
    ]
}

/// A transport header start: ports aimed at services, then junk (flags, lengths, options);
/// or a header both TCP and UDP accept (the UDP length is the TCP sequence number's top
/// half), with flags that open connections, so fuzzing reaches conntrack and the rewrite.
fn fuzz_transport() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        6 => (
            any::<u16>(),
            fuzz_port(),
            prop_oneof![3 => Just(0x50u8), 1 => any::<u8>()],
            prop_oneof![
                3 => Just(0x02u8),
                3 => Just(0x10),
                1 => Just(0x12),
                1 => Just(0x11),
                1 => Just(0x04),
                1 => any::<u8>()
            ],
            any::<[u8; 12]>(),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(sport, dport, offset, flags, junk, payload)| {
                let mut out = sport.to_be_bytes().to_vec();
                out.extend_from_slice(&dport.to_be_bytes());
                let length = (20 + payload.len()) as u16;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&junk[..6]);
                out.extend_from_slice(&[offset, flags]);
                out.extend_from_slice(&junk[6..]);
                out.extend(payload);
                out
            }),
        1 => (
            any::<u16>(),
            fuzz_port(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(sport, dport, rest)| {
                let mut out = sport.to_be_bytes().to_vec();
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend(rest);
                out
            }),
    ]
}

fn fuzz_protocol() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![6u8, 17, 132, 1, 58, 0, 43, 44, 60, 59, 4, 41, 47, 50]),
        any::<u8>(),
    ]
}

/// An IPv4 header (mostly well-formed: right length, no fragment flags) and arbitrary bytes.
fn fuzz_ipv4(inner: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        (
            prop_oneof![8 => Just(5u8), 1 => 0u8..16],
            prop::collection::vec(any::<u8>(), 40),
            prop_oneof![8 => Just(None), 1 => any::<u16>().prop_map(Some)],
            prop_oneof![8 => Just(0u16), 1 => Just(0x4000), 1 => any::<u16>()],
            if inner {
                prop::sample::select(vec![6u8, 17, 132, 1]).boxed()
            } else {
                fuzz_protocol().boxed()
            },
        ),
        fuzz_v4(),
        fuzz_v4(),
        fuzz_transport(),
        any::<bool>(),
    )
        .prop_map(
            |((ihl, options, total, frag, protocol), src, dst, tail, good_checksum)| {
                let header_len = usize::from(ihl.max(5)) * 4;
                let mut out = vec![0u8; header_len];
                out[0] = 0x40 | ihl;
                out[4..6].copy_from_slice(&[0x12, 0x34]);
                out[6..8].copy_from_slice(&frag.to_be_bytes());
                out[8] = 64;
                out[9] = protocol;
                out[12..16].copy_from_slice(&src);
                out[16..20].copy_from_slice(&dst);
                out[20..].copy_from_slice(&options[..header_len - 20]);
                out.extend(tail);
                let total = total.unwrap_or(out.len() as u16);
                out[2..4].copy_from_slice(&total.to_be_bytes());
                if good_checksum {
                    let sum = checksum::compute(0, &out[..header_len]);
                    out[10..12].copy_from_slice(&sum.to_be_bytes());
                }
                out
            },
        )
}

/// An IPv6 header (mostly the right payload length) and arbitrary bytes.
fn fuzz_ipv6(inner: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        if inner {
            prop::sample::select(vec![6u8, 17, 132, 58]).boxed()
        } else {
            fuzz_protocol().boxed()
        },
        prop_oneof![8 => Just(None), 1 => any::<u16>().prop_map(Some)],
        fuzz_v6(),
        fuzz_v6(),
        fuzz_transport(),
    )
        .prop_map(|(next, length, src, dst, tail)| {
            let mut out = vec![0x60, 0, 0, 0, 0, 0, next, 64];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            let length = length.unwrap_or(tail.len() as u16);
            out[4..6].copy_from_slice(&length.to_be_bytes());
            out.extend(tail);
            out
        })
}

/// An ICMP (v4) or ICMPv6 error quoting a (cut) packet of the same family.
fn fuzz_icmp_error() -> impl Strategy<Value = Vec<u8>> {
    let v4 = (
        fuzz_v4(),
        fuzz_v4(),
        prop::sample::select(vec![3u8, 11, 12, 5, 4]),
        any::<u8>(),
        fuzz_ipv4(true),
        any::<usize>(),
    )
        .prop_map(|(src, dst, kind, code, quoted, cut)| {
            let quoted = &quoted[..cut % (quoted.len() + 1)];
            let mut out = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            out.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(quoted);
            let total = out.len() as u16;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            let sum = checksum::compute(0, &out[..20]);
            out[10..12].copy_from_slice(&sum.to_be_bytes());
            out
        });
    let v6 = (
        fuzz_v6(),
        fuzz_v6(),
        prop::sample::select(vec![1u8, 2, 3, 4]),
        any::<u8>(),
        fuzz_ipv6(true),
        any::<usize>(),
    )
        .prop_map(|(src, dst, kind, code, quoted, cut)| {
            let quoted = &quoted[..cut % (quoted.len() + 1)];
            let mut out = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            out.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(quoted);
            let length = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&length.to_be_bytes());
            out
        });
    prop_oneof![v4, v6]
}

fn fuzz_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..1500),
        3 => fuzz_ipv4(false),
        3 => fuzz_ipv6(false),
        2 => fuzz_icmp_error(),
    ]
}

/// How a fuzzed packet is handed to the engine.
#[derive(Clone, Copy, Debug)]
enum Call {
    Hook(Hook),
    Path(Path),
}

fn call() -> impl Strategy<Value = Call> {
    prop::sample::select(vec![
        Call::Hook(Hook::Prerouting),
        Call::Hook(Hook::Output),
        Call::Hook(Hook::Postrouting),
        Call::Path(Path::Forward),
        Call::Path(Path::LocalOut),
    ])
}

/// What to feed next: a fresh packet, or the previous output with its addresses and ports
/// swapped (a "reply", to reach the conntrack paths).
#[derive(Clone, Debug)]
enum Feed {
    /// A fuzzed packet, maybe aimed (see [`aim`]) at one of the cluster's destinations from
    /// one of its sources.
    Fresh(Vec<u8>, Option<(Index, Index)>),
    SwapPrevious,
    RepeatPrevious,
    /// An ICMP error about the previous output packet (cut to `.0` bytes), sent back to its
    /// source by its destination, as a router or the endpoint would.
    IcmpAboutPrevious(usize, u8),
}

fn feed() -> impl Strategy<Value = Feed> {
    prop_oneof![
        4 => (fuzz_packet(), prop::option::of(any::<(Index, Index)>()))
            .prop_map(|(bytes, aim)| Feed::Fresh(bytes, aim)),
        2 => Just(Feed::SwapPrevious),
        1 => Just(Feed::RepeatPrevious),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(cut, code)| Feed::IcmpAboutPrevious(cut, code)),
    ]
}

/// Wraps `quoted` in an ICMP destination-unreachable (v4) / ICMPv6 unreachable from its
/// destination to its source; `None` when it is not IP.
fn icmp_error_about(quoted: &[u8], cut: usize, code: u8) -> Option<Vec<u8>> {
    match quoted.first().map(|b| b >> 4) {
        Some(4) if quoted.len() >= 20 => {
            let cut = &quoted[..20 + cut % (quoted.len() - 19)];
            let mut out = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            out.extend_from_slice(&quoted[16..20]);
            out.extend_from_slice(&quoted[12..16]);
            out.extend_from_slice(&[3, code % 16, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(cut);
            let total = out.len() as u16;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            let sum = checksum::compute(0, &out[..20]);
            out[10..12].copy_from_slice(&sum.to_be_bytes());
            let sum = checksum::compute(0, &out[20..]);
            out[22..24].copy_from_slice(&sum.to_be_bytes());
            Some(out)
        }
        Some(6) if quoted.len() >= 40 => {
            let cut = &quoted[..40 + cut % (quoted.len() - 39)];
            let mut out = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            out.extend_from_slice(&quoted[24..40]);
            out.extend_from_slice(&quoted[8..24]);
            out.extend_from_slice(&[1, code % 8, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(cut);
            let length = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&length.to_be_bytes());
            Some(out)
        }
        _ => None,
    }
}

/// Points a fuzzed IP packet at a destination of `state` (address, protocol, port) from one
/// of its sources, keeping a valid IPv4 header checksum valid.
fn aim(state: &ClusterState, packet: &mut [u8], destination: &Index, source: &Index) {
    let (dst, protocol) = *destination.get(&destinations(state));
    let family: Vec<IpAddr> = sources(state)
        .into_iter()
        .filter(|s| s.is_ipv4() == dst.is_ipv4())
        .collect();
    let src = *source.get(&family);
    let l4 = match (packet.first().map(|b| b >> 4), dst.ip(), src) {
        (Some(4), IpAddr::V4(d), IpAddr::V4(s)) if packet.len() >= 20 => {
            let ihl = usize::from(packet[0] & 0xf) * 4;
            let valid =
                ihl >= 20 && packet.len() >= ihl && checksum::compute(0, &packet[..ihl]) == 0;
            packet[9] = protocol.ip_number();
            packet[12..16].copy_from_slice(&s.octets());
            packet[16..20].copy_from_slice(&d.octets());
            if valid {
                packet[10..12].fill(0);
                let sum = checksum::compute(0, &packet[..ihl]);
                packet[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            ihl
        }
        (Some(6), IpAddr::V6(d), IpAddr::V6(s)) if packet.len() >= 40 => {
            packet[6] = protocol.ip_number();
            packet[8..24].copy_from_slice(&s.octets());
            packet[24..40].copy_from_slice(&d.octets());
            40
        }
        _ => return,
    };
    if packet.len() >= l4 + 4 {
        packet[l4 + 2..l4 + 4].copy_from_slice(&dst.port().to_be_bytes());
    }
}

/// Swaps source and destination addresses and (when present) ports, by the layout of a
/// plain IPv4/IPv6 header.
fn swap(packet: &mut [u8]) {
    let (src, dst, len, l4) = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => (12, 16, 4, usize::from(packet[0] & 0xf) * 4),
        Some(6) if packet.len() >= 40 => (8, 24, 16, 40),
        _ => return,
    };
    for i in 0..len {
        packet.swap(src + i, dst + i);
    }
    if l4 >= 20 && packet.len() >= l4 + 4 {
        packet.swap(l4, l4 + 2);
        packet.swap(l4 + 1, l4 + 3);
    }
}

/// Runs one call, checking that an Accept leaves the bytes alone; returns the verdict.
fn run(engine: &mut Engine, call: Call, packet: &mut [u8], now: Instant) -> Verdict {
    let before = packet.to_vec();
    let verdict = match call {
        Call::Hook(hook) => engine.process(hook, packet, now),
        Call::Path(path) => engine.process_path(path, packet, now),
    };
    if verdict == Verdict::Accept {
        assert_eq!(
            packet,
            &before[..],
            "Accept must leave the packet untouched"
        );
    }
    verdict
}

proptest! {
    #![proptest_config(config(256))]

    /// Properties 1 and 2 over fuzzed packets, with connection state carried between them.
    #[test]
    fn arbitrary_bytes_never_panic(
        state in any_cluster(),
        feeds in prop::collection::vec((feed(), call(), 0u64..200), 1..16),
    ) {
        let mut engine = Engine::new(&state);
        let mut previous: Vec<u8> = Vec::new();
        let mut calls = 0u64;
        let mut now = 0u64;
        let mut reply = vec![0u8; reject::MAX_REPLY_LEN];
        for (feed, call, advance) in feeds {
            now += advance * 1_000_000_000 / 4;
            let mut packet = match feed {
                Feed::Fresh(mut bytes, target) => {
                    if let Some((destination, source)) = target {
                        aim(&state, &mut bytes, &destination, &source);
                    }
                    bytes
                }
                Feed::SwapPrevious => {
                    let mut p = previous.clone();
                    swap(&mut p);
                    p
                }
                Feed::RepeatPrevious => previous.clone(),
                Feed::IcmpAboutPrevious(cut, code) => {
                    icmp_error_about(&previous, cut, code).unwrap_or_else(|| previous.clone())
                }
            };
            let input = packet.clone();
            let verdict = run(&mut engine, call, &mut packet, Instant::from_nanos(now));
            calls += 1;
            if let Verdict::Reject(_) = verdict {
                // Must not panic; the reply quotes the packet as it was.
                let _ = engine.write_reject_reply(&input, &mut reply);
            }
            if let Verdict::Translated(t) = verdict {
                // A translated packet parsed; whatever the transport, the IP header sum holds.
                if let Ok((header, _)) = Ipv4Header::from_slice(&packet)
                    && Ipv4Header::from_slice(&input).is_ok_and(|(h, _)| h.header_checksum == h.calc_header_checksum())
                {
                    prop_assert_eq!(header.header_checksum, header.calc_header_checksum(), "{:?}", t);
                }
            }
            prop_assert_eq!(engine.counters().total(), calls);
            previous = packet;
        }
        let _ = engine.poll_at();
        // Once every timeout has run out, nothing is tracked.
        engine.handle_timeout(Instant::from_secs(10_000_000));
        prop_assert_eq!(engine.connections(), 0);
        prop_assert_eq!(engine.counters().total(), calls);
    }

    /// Property 1 for bytes with no structure at all, each through every entry point.
    #[test]
    fn raw_bytes_never_panic(
        state in notes_cluster(),
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1500), 1..4),
    ) {
        let mut engine = Engine::new(&state);
        let calls = [
            Call::Hook(Hook::Prerouting),
            Call::Hook(Hook::Output),
            Call::Hook(Hook::Postrouting),
            Call::Path(Path::Forward),
            Call::Path(Path::LocalOut),
        ];
        let mut count = 0;
        for packet in packets {
            for call in calls {
                let mut p = packet.clone();
                run(&mut engine, call, &mut p, Instant::ZERO);
                count += 1;
                prop_assert_eq!(engine.counters().total(), count);
            }
        }
    }
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
                check_translated(&packet, (t.after.source, t.after.destination));
                prop_assert_eq!(t.before.source, src);
                prop_assert_eq!(t.before.destination, dst);
                // The reply, through the forward path.
                let mut reply = build(
                    protocol,
                    t.after.destination,
                    t.after.source,
                    spec,
                    reply_flags(spec.tcp_flags),
                );
                if let Verdict::Translated(r) =
                    run(&mut engine, Call::Path(Path::Forward), &mut reply, now)
                {
                    check_translated(&reply, (r.after.source, r.after.destination));
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
                Protocol::Tcp => common::tcp(src, dst, "syn", b""),
                _ => common::udp(src, dst, b"q"),
            };
            let verdict = engine.process(Hook::Prerouting, &mut packet, Instant::ZERO);
            let Verdict::Translated(t) = verdict else {
                return Err(TestCaseError::fail(format!("{src} -> {dst}: {verdict:?}")));
            };
            prop_assert_eq!(endpoints(&packet).1, t.after.destination);
            *hits.entry(t.after.destination).or_default() += 1;
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
    assert_eq!(t.after.destination, common::sa("10.10.0.103:3306"));
    check_translated(&packet, (src, common::sa("10.10.0.103:3306")));
}
