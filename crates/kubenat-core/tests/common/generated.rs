//! Generated clusters and the calls the property tests make with them (proptest).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSelection, EndpointSlice,
    Engine, Hook, Instant, Node, Path, Protocol, ProxyConfig, ProxyMode, Service, ServiceName,
    ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy, Verdict, reference,
};
use proptest::prelude::*;

use super::net;

/// `cases` cases, or `PROPTEST_CASES` when set (for a longer hunt).
pub fn config(cases: u32) -> ProptestConfig {
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
pub fn notes_cluster() -> impl Strategy<Value = ClusterState> {
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

pub fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub fn ip6(segments: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(segments))
}

/// One generated service: type, ports (protocol, port), policies, affinity, endpoints
/// (node index, ready, serving, terminating).
pub type ServiceSpec = (
    u8,
    Vec<(bool, u16)>,
    bool,
    bool,
    bool,
    Vec<(usize, bool, bool, bool)>,
);

pub fn service_spec() -> impl Strategy<Value = ServiceSpec> {
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
pub fn dual_stack_cluster() -> impl Strategy<Value = ClusterState> {
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
                let node_v4 = |i: usize| ip4(172, 16, 0, 10 + i as u8);
                let node_v6 = |i: usize| ip6([0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10 + i as u16]);
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
                            ip4(10, 96, 0, i8),
                            ip6([0xfd00, 0x96, 0, 0, 0, 0, 0, u16::from(i8)]),
                        ],
                        ports: service_ports,
                        load_balancer_ips: if lb {
                            vec![
                                ip4(203, 0, 113, i8),
                                ip6([0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, u16::from(i8)]),
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
                            ip4(10, 20, node as u8, host),
                            ip6([0xfd00, 0x20, node as u16, 0, 0, 0, 0, u16::from(host)]),
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

pub fn any_cluster() -> impl Strategy<Value = ClusterState> {
    prop_oneof![notes_cluster(), dual_stack_cluster()]
}

/// Destinations worth aiming at in `state`: every service address and port (right and wrong
/// protocol), every node address with every NodePort, localhost NodePorts.
pub fn destinations(state: &ClusterState) -> Vec<(SocketAddr, Protocol)> {
    let mut out = Vec::new();
    let node_ips: Vec<IpAddr> = state
        .nodes
        .iter()
        .flat_map(|n| n.addresses.iter().copied())
        .chain(state.proxy.node_ips.iter().copied())
        .chain([ip4(127, 0, 0, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)])
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
pub fn sources(state: &ClusterState) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = state
        .endpoint_slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.iter().copied()))
        .chain(state.nodes.iter().flat_map(|n| n.addresses.iter().copied()))
        .chain([
            ip4(10, 10, 0, 50),
            ip4(10, 20, 1, 200),
            ip4(192, 168, 0, 200),
            ip4(192, 168, 0, 10),
            ip4(198, 51, 100, 7),
            ip6([0xfd00, 0x20, 1, 0, 0, 0, 0, 0x99]),
            ip6([0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7]),
        ])
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------

/// How a fuzzed packet is handed to the engine.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Hook(Hook),
    Path(Path),
}

/// Runs one call, checking that an Accept leaves the bytes alone; returns the verdict.
pub fn run(engine: &mut Engine, call: Call, packet: &mut [u8], now: Instant) -> Verdict {
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
