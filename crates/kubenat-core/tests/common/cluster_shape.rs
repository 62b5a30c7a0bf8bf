//! Small generated clusters built from a shape: what varies (Service types, families, ports,
//! policies, endpoints and their conditions, proxy settings) is chosen by the caller, the
//! addresses and names follow from the Service's index. The property tests draw shapes with
//! proptest (`generated.rs`); the fuzz targets decode them from bytes
//! (`fuzz/src/packets.rs`, outside the workspace, includes this file with `#[path]`).
//!
//! Addresses: nodes 172.16.0.10+i / fd00:16::10+i (this node is n0), pods 10.20.<node>.x /
//! fd00:20:<node>::x, services 10.96.0.x / fd00:96::x, load balancers 203.0.113.x /
//! 2001:db8:1b::x, external IPs 198.51.100.x / 2001:db8:64::x.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSelection, EndpointSlice,
    IpNet, Node, Protocol, ProxyConfig, ProxyMode, Service, ServiceName, ServicePort, ServiceType,
    SessionAffinity, TargetPort, TrafficPolicy,
};

/// The proxy settings and Services of a generated cluster.
pub struct ClusterShape {
    pub mode: ProxyMode,
    pub masquerade_all: bool,
    pub selection: EndpointSelection,
    pub conntrack_capacity: usize,
    pub masquerade_ports: RangeInclusive<u16>,
    pub seed: u64,
    pub services: Vec<ServiceShape>,
}

/// One Service of a generated cluster.
pub struct ServiceShape {
    pub service_type: ServiceType,
    /// Which families the Service has (cluster IPs, external and load-balancer IPs).
    pub ipv4: bool,
    pub ipv6: bool,
    /// (protocol, port), distinct; the endpoints listen on port + 1000.
    pub ports: Vec<(Protocol, u16)>,
    pub external_ips: bool,
    /// loadBalancerSourceRanges 203.0.113.0/25 and 2001:db8:c::/64.
    pub source_ranges: bool,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    /// sessionAffinity ClientIP with this timeout.
    pub affinity: Option<Duration>,
    /// (node index 0-2, conditions): one pod each, with an endpoint per family.
    pub endpoints: Vec<(usize, EndpointConditions)>,
}

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub fn v6(segments: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(segments))
}

fn node_ips(i: usize) -> [IpAddr; 2] {
    [
        v4(172, 16, 0, 10 + i as u8),
        v6([0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10 + i as u16]),
    ]
}

fn cidr(s: &str) -> IpNet {
    s.parse().expect("CIDR")
}

fn policy(local: bool) -> TrafficPolicy {
    if local {
        TrafficPolicy::Local
    } else {
        TrafficPolicy::Cluster
    }
}

/// The cluster `shape` describes, seen from node n0.
pub fn cluster(shape: ClusterShape) -> ClusterState {
    let mut state = ClusterState {
        nodes: (0..3)
            .map(|i| Node {
                name: format!("n{i}"),
                addresses: node_ips(i).to_vec(),
            })
            .collect(),
        proxy: ProxyConfig {
            node_name: "n0".into(),
            node_ips: node_ips(0).to_vec(),
            cluster_cidrs: vec![cidr("10.20.0.0/16"), cidr("fd00:20::/48")],
            service_cidrs: vec![cidr("10.96.0.0/24"), cidr("fd00:96::/112")],
            masquerade_all: shape.masquerade_all,
            mode: shape.mode,
            selection: shape.selection,
            conntrack_capacity: shape.conntrack_capacity,
            masquerade_ports: shape.masquerade_ports,
            seed: shape.seed,
            ..ProxyConfig::default()
        },
        ..ClusterState::default()
    };
    for (i, service) in shape.services.into_iter().enumerate() {
        let (service, slice) = service_objects(i, service);
        state.services.push(service);
        state.endpoint_slices.push(slice);
    }
    state
}

/// Service `i` of a generated cluster and its one EndpointSlice.
fn service_objects(i: usize, shape: ServiceShape) -> (Service, EndpointSlice) {
    let i8 = i as u8 + 1;
    let families = |a: IpAddr, b: IpAddr| -> Vec<IpAddr> {
        [(shape.ipv4, a), (shape.ipv6, b)]
            .into_iter()
            .filter_map(|(wanted, ip)| wanted.then_some(ip))
            .collect()
    };
    let name = ServiceName::new("default", format!("svc{i}"));
    let service = Service {
        name: name.clone(),
        service_type: shape.service_type,
        cluster_ips: families(
            v4(10, 96, 0, i8),
            v6([0xfd00, 0x96, 0, 0, 0, 0, 0, u16::from(i8)]),
        ),
        ports: shape
            .ports
            .iter()
            .enumerate()
            .map(|(j, &(protocol, port))| ServicePort {
                name: format!("p{j}"),
                protocol,
                port,
                target_port: TargetPort::Number(port + 1000),
                node_port: (shape.service_type != ServiceType::ClusterIp)
                    .then_some(30000 + (i * 10 + j) as u16),
            })
            .collect(),
        external_ips: if shape.external_ips {
            families(
                v4(198, 51, 100, i8),
                v6([0x2001, 0xdb8, 0x64, 0, 0, 0, 0, u16::from(i8)]),
            )
        } else {
            Vec::new()
        },
        load_balancer_ips: if shape.service_type == ServiceType::LoadBalancer {
            families(
                v4(203, 0, 113, i8),
                v6([0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, u16::from(i8)]),
            )
        } else {
            Vec::new()
        },
        load_balancer_source_ranges: if shape.source_ranges {
            vec![cidr("203.0.113.0/25"), cidr("2001:db8:c::/64")]
        } else {
            Vec::new()
        },
        external_traffic_policy: policy(shape.external_policy_local),
        internal_traffic_policy: policy(shape.internal_policy_local),
        session_affinity: match shape.affinity {
            Some(timeout) => SessionAffinity::ClientIp { timeout },
            None => SessionAffinity::None,
        },
    };
    let mut endpoints = Vec::new();
    for (e, &(node, conditions)) in shape.endpoints.iter().enumerate() {
        let host = (i * 16 + e + 1) as u8;
        for address in families(
            v4(10, 20, node as u8, host),
            v6([0xfd00, 0x20, node as u16, 0, 0, 0, 0, u16::from(host)]),
        ) {
            endpoints.push(Endpoint {
                addresses: vec![address],
                conditions,
                node_name: Some(format!("n{node}")),
            });
        }
    }
    let slice = EndpointSlice {
        name: format!("svc{i}-x1"),
        service: name,
        ports: shape
            .ports
            .iter()
            .enumerate()
            .map(|(j, &(protocol, port))| EndpointPort {
                name: format!("p{j}"),
                protocol,
                port: port + 1000,
            })
            .collect(),
        endpoints,
    };
    (service, slice)
}
