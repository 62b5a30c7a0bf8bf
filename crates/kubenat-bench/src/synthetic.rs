//! Synthetic clusters and traffic at scale: N Services with M endpoints each, and packets of
//! F flows from pods to them, built once so measurements time only the engine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use etherparse::PacketBuilder;
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Protocol,
    ProxyConfig, Service, ServiceName, ServicePort, TargetPort,
};

/// The node every synthetic engine runs on.
pub const NODE: &str = "bench-node";
/// Services live in 172.16.0.0/12 (room for 1M cluster IPs), pods in 10.0.0.0/8.
const SERVICE_BASE: u32 = u32::from_be_bytes([172, 16, 0, 0]);
const POD_BASE: u32 = u32::from_be_bytes([10, 0, 0, 0]);
const SERVICE_PORT: u16 = 80;
const TARGET_PORT: u16 = 8080;

/// The cluster IP of service `i`.
pub fn service_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(SERVICE_BASE + i as u32)
}

/// Endpoint `j` of service `i`: pods are numbered densely across services.
pub(crate) fn endpoint_ip(i: usize, j: usize, per_service: usize) -> Ipv4Addr {
    Ipv4Addr::from(POD_BASE + 1 + (i * per_service + j) as u32)
}

/// `services` ClusterIP Services (TCP 80 -> 8080), each with `endpoints` ready endpoints on
/// other nodes, seen from [`NODE`]; conntrack sized for `connections`.
pub fn cluster(services: usize, endpoints: usize, connections: usize) -> ClusterState {
    let mut state = ClusterState {
        proxy: ProxyConfig {
            node_name: NODE.to_string(),
            node_ips: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))],
            cluster_cidrs: vec!["10.0.0.0/8".parse::<IpNet>().expect("literal")],
            service_cidrs: vec!["172.16.0.0/12".parse::<IpNet>().expect("literal")],
            conntrack_capacity: connections.max(1),
            ..ProxyConfig::default()
        },
        ..ClusterState::default()
    };
    state.services.reserve(services);
    state.endpoint_slices.reserve(services);
    for i in 0..services {
        let name = ServiceName::new("bench", format!("svc-{i}"));
        state.services.push(service(&name, i));
        state.endpoint_slices.push(slice(&name, i, endpoints, 0));
    }
    state
}

fn service(name: &ServiceName, i: usize) -> Service {
    Service {
        name: name.clone(),
        cluster_ips: vec![IpAddr::V4(service_ip(i))],
        ports: vec![ServicePort {
            name: "http".to_string(),
            protocol: Protocol::Tcp,
            port: SERVICE_PORT,
            target_port: TargetPort::Number(TARGET_PORT),
            node_port: None,
        }],
        ..Service::default()
    }
}

/// The EndpointSlice of service `i`; `generation` shifts its pods, so a new generation is
/// an update that changes every endpoint.
pub fn slice(name: &ServiceName, i: usize, endpoints: usize, generation: usize) -> EndpointSlice {
    EndpointSlice {
        name: format!("{}-slice", name.name),
        service: name.clone(),
        ports: vec![EndpointPort {
            name: "http".to_string(),
            protocol: Protocol::Tcp,
            port: TARGET_PORT,
        }],
        endpoints: (0..endpoints)
            .map(|j| Endpoint {
                addresses: vec![IpAddr::V4(endpoint_ip(i, j + generation, endpoints))],
                conditions: EndpointConditions::default(),
                node_name: Some(format!("node-{}", j % 16)),
            })
            .collect(),
    }
}

/// A small deterministic generator (splitmix64): traffic is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One flow of the synthetic traffic: a pod's socket to a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    pub client: SocketAddr,
    pub service: SocketAddr,
}

/// `flows` distinct flows from pods (10.128.0.0/9, outside the endpoint range) to random
/// services among `services`.
pub fn flows(services: usize, flows: usize, seed: u64) -> Vec<FlowSpec> {
    let mut rng = Rng::new(seed);
    (0..flows)
        .map(|k| {
            let client = Ipv4Addr::from(u32::from_be_bytes([10, 128, 0, 0]) + (k / 50_000) as u32);
            FlowSpec {
                client: SocketAddr::new(IpAddr::V4(client), 10_000 + (k % 50_000) as u16),
                service: SocketAddr::new(IpAddr::V4(service_ip(rng.below(services))), SERVICE_PORT),
            }
        })
        .collect()
}

/// A TCP segment of `flow` from the client (SYN for a new connection, ACK with a small
/// payload for an established one), as raw IPv4.
pub fn packet(flow: &FlowSpec, syn: bool) -> Vec<u8> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (flow.client.ip(), flow.service.ip()) else {
        unreachable!("synthetic traffic is IPv4");
    };
    let builder = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(
        flow.client.port(),
        flow.service.port(),
        1,
        64_240,
    );
    let builder = if syn { builder.syn() } else { builder.ack(1) };
    let mut out = Vec::with_capacity(64);
    let payload: &[u8] = if syn { &[] } else { b"GET / HTTP/1.1\r\n" };
    builder
        .write(&mut out, payload)
        .expect("writing to a Vec cannot fail");
    out
}
