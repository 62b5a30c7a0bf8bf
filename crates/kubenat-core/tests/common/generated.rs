//! Generated clusters and the calls the property tests make with them (proptest).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use kubenat_core::{
    ClusterState, EndpointConditions, EndpointSelection, Engine, Hook, Instant, Path, Protocol,
    ProxyConfig, ProxyMode, ServiceType, SessionAffinity, Verdict, reference,
};
use proptest::prelude::*;

use super::cluster_shape::{self, ClusterShape, ServiceShape, v4, v6};

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

/// One generated service: type, ports (udp?, port), external and internal policy Local,
/// affinity, endpoints (node index, ready, serving, terminating).
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

/// A dual-stack cluster ([`cluster_shape`] gives the addresses): every Service is
/// dual-stack with one endpoint per family per pod.
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
                cluster_shape::cluster(ClusterShape {
                    mode: if iptables {
                        ProxyMode::Iptables
                    } else {
                        ProxyMode::Nftables
                    },
                    masquerade_all,
                    selection: if maglev {
                        EndpointSelection::Maglev { table_size: 251 }
                    } else {
                        EndpointSelection::RoundRobin
                    },
                    conntrack_capacity: capacity,
                    masquerade_ports: ProxyConfig::default().masquerade_ports,
                    seed,
                    services: specs.into_iter().map(service_shape).collect(),
                })
            },
        )
}

fn service_shape(spec: ServiceSpec) -> ServiceShape {
    let (kind, ports, etp_local, itp_local, affinity, endpoints) = spec;
    // Distinct (protocol, port) pairs inside one service.
    let mut distinct: Vec<(Protocol, u16)> = Vec::new();
    for (udp, port) in ports {
        let port = (if udp { Protocol::Udp } else { Protocol::Tcp }, port);
        if !distinct.contains(&port) {
            distinct.push(port);
        }
    }
    ServiceShape {
        service_type: match kind {
            0 => ServiceType::ClusterIp,
            1 => ServiceType::NodePort,
            _ => ServiceType::LoadBalancer,
        },
        ipv4: true,
        ipv6: true,
        ports: distinct,
        external_ips: false,
        source_ranges: false,
        external_policy_local: etp_local,
        internal_policy_local: itp_local,
        affinity: affinity.then_some(SessionAffinity::DEFAULT_TIMEOUT),
        endpoints: endpoints
            .into_iter()
            .map(|(node, ready, serving, terminating)| {
                let conditions = EndpointConditions {
                    ready,
                    serving: serving || ready,
                    terminating: terminating && !ready,
                };
                (node, conditions)
            })
            .collect(),
    }
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
pub fn sources(state: &ClusterState) -> Vec<IpAddr> {
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
