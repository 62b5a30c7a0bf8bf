//! Cluster states the tests run on: the course notes' cluster (see
//! `kubenat_core::reference`) with a few changes, and node-a's view of a table of
//! single-port Services, one per kube-proxy rule worth checking.

use std::time::Duration;

use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Node, Protocol,
    ProxyConfig, Service, ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort,
    TrafficPolicy, reference,
};

use super::twins::dual_stack;
use super::{ip, net};

// ---------------------------------------------------------------------------------------
// The notes' cluster, seen from nodoa
// ---------------------------------------------------------------------------------------

/// nodoa's address, and the IPv6 one [`nodoa_dual_stack`] gives it.
pub const NODE: &str = "192.168.0.101";
pub const NODE6: &str = "fd00:192::101";

pub fn endpoint(address: &str, node: &str) -> Endpoint {
    Endpoint {
        addresses: vec![ip(address)],
        conditions: EndpointConditions::default(),
        node_name: Some(node.to_string()),
    }
}

pub fn slice_mut<'a>(state: &'a mut ClusterState, service: &str) -> &'a mut EndpointSlice {
    state
        .endpoint_slices
        .iter_mut()
        .find(|s| s.service.name == service)
        .expect("slice of the service")
}

pub fn dns() -> ServiceName {
    ServiceName::new("kube-system", "kube-dns")
}

/// The notes' cluster from nodoa, with kube-dns served by two pods, so round robin has
/// somewhere to move on to.
pub fn nodoa_two_dns() -> ClusterState {
    let mut state = reference::cluster("nodoa");
    slice_mut(&mut state, "kube-dns").endpoints = vec![
        endpoint("10.10.0.10", "nodo1"),
        endpoint("10.10.0.11", "nodob"),
    ];
    state
}

/// The notes' cluster from nodoa made dual-stack, plus a dual-stack NodePort Service
/// `default/echo` (TCP 7000 -> 7, NodePort 30990; UDP 7000 -> 7, NodePort 30991) with two
/// IPv4 pods and one IPv6 pod.
pub fn nodoa_dual_stack() -> ClusterState {
    let mut state = reference::cluster("nodoa");
    state.proxy.node_ips.push(ip(NODE6));
    for node in &mut state.nodes {
        if node.name == "nodoa" {
            node.addresses.push(ip(NODE6));
        }
    }
    state
        .proxy
        .cluster_cidrs
        .push("fd00:10::/48".parse().unwrap());
    state
        .proxy
        .service_cidrs
        .push("fd00:10:1::/112".parse().unwrap());
    let name = ServiceName::new("default", "echo");
    state.services.push(Service {
        name: name.clone(),
        service_type: ServiceType::NodePort,
        cluster_ips: vec![ip("10.10.1.120"), ip("fd00:10:1::120")],
        ports: vec![
            ServicePort {
                name: "tcp".into(),
                protocol: Protocol::Tcp,
                port: 7000,
                target_port: TargetPort::Number(7),
                node_port: Some(30990),
            },
            ServicePort {
                name: "udp".into(),
                protocol: Protocol::Udp,
                port: 7000,
                target_port: TargetPort::Number(7),
                node_port: Some(30991),
            },
        ],
        ..Service::default()
    });
    let ports = vec![
        EndpointPort {
            name: "tcp".into(),
            protocol: Protocol::Tcp,
            port: 7,
        },
        EndpointPort {
            name: "udp".into(),
            protocol: Protocol::Udp,
            port: 7,
        },
    ];
    state.endpoint_slices.push(EndpointSlice {
        name: "echo-v4".into(),
        service: name.clone(),
        ports: ports.clone(),
        endpoints: vec![
            endpoint("10.10.0.120", "nodob"),
            endpoint("10.10.0.121", "nodoc"),
        ],
    });
    state.endpoint_slices.push(EndpointSlice {
        name: "echo-v6".into(),
        service: name,
        ports,
        endpoints: vec![endpoint("fd00:10::120", "nodob")],
    });
    state
}

// ---------------------------------------------------------------------------------------
// node-a's view of a table of Services
// ---------------------------------------------------------------------------------------

/// A pod that backs no Service.
pub const POD: &str = "10.10.0.50";

/// This node (node-a) and the other one (node-b).
pub const NODE_A: &str = "192.168.0.101";
pub const NODE_B: &str = "192.168.0.102";
/// Clients on the Internet; EXT is the one loadBalancerSourceRanges allow.
pub const EXT: &str = "203.0.113.7";
pub const EXT2: &str = "203.0.113.8";

#[derive(Clone, Copy)]
struct Ep {
    ip: &'static str,
    node: &'static str,
    ready: bool,
    serving: bool,
    terminating: bool,
}

const fn ready(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: true,
        serving: true,
        terminating: false,
    }
}

/// Terminating but still serving: used only when no ready endpoint exists.
const fn draining(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: true,
        terminating: true,
    }
}

/// Terminating and no longer serving: never used.
const fn gone(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: false,
        terminating: true,
    }
}

/// Not ready, not serving, not terminating (e.g. failing its readiness probe).
const fn unready(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: false,
        terminating: false,
    }
}

/// One single-port Service (TCP port 80 -> 8080 unless said otherwise).
#[derive(Clone, Copy)]
struct Svc {
    name: &'static str,
    kind: ServiceType,
    cluster_ip: &'static str,
    node_port: Option<u16>,
    external_ips: &'static [&'static str],
    lb_ips: &'static [&'static str],
    ranges: &'static [&'static str],
    etp: TrafficPolicy,
    itp: TrafficPolicy,
    affinity_secs: Option<u64>,
    endpoints: &'static [Ep],
}

const SVC: Svc = Svc {
    name: "",
    kind: ServiceType::ClusterIp,
    cluster_ip: "",
    node_port: None,
    external_ips: &[],
    lb_ips: &[],
    ranges: &[],
    etp: TrafficPolicy::Cluster,
    itp: TrafficPolicy::Cluster,
    affinity_secs: None,
    endpoints: &[],
};

const LOCAL: TrafficPolicy = TrafficPolicy::Local;
const LOAD_BALANCER: ServiceType = ServiceType::LoadBalancer;

/// Endpoints on node-a (local) and node-b (remote).
const A1: Ep = ready("10.10.0.11", "node-a");
const B1: Ep = ready("10.10.0.21", "node-b");
const B2: Ep = ready("10.10.0.22", "node-b");

#[rustfmt::skip]
const SERVICES: &[Svc] = &[
    Svc { name: "etp-local", kind: LOAD_BALANCER, cluster_ip: "10.10.1.11", node_port: Some(30011), lb_ips: &["198.51.100.11"], external_ips: &["198.51.100.111"], etp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "etp-local-remote", kind: LOAD_BALANCER, cluster_ip: "10.10.1.12", node_port: Some(30012), lb_ips: &["198.51.100.12"], external_ips: &["198.51.100.112"], etp: LOCAL, endpoints: &[B1, B2], ..SVC },
    Svc { name: "etp-cluster", kind: LOAD_BALANCER, cluster_ip: "10.10.1.13", node_port: Some(30013), lb_ips: &["198.51.100.13"], external_ips: &["198.51.100.113"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "itp-local", cluster_ip: "10.10.1.14", itp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "itp-local-remote", cluster_ip: "10.10.1.15", itp: LOCAL, endpoints: &[B1], ..SVC },
    Svc { name: "no-endpoints", kind: LOAD_BALANCER, cluster_ip: "10.10.1.16", node_port: Some(30016), lb_ips: &["198.51.100.16"], external_ips: &["198.51.100.116"], ..SVC },
    Svc { name: "source-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.17", node_port: Some(30017), lb_ips: &["198.51.100.17"], external_ips: &["198.51.100.117"], ranges: &["203.0.113.7/32"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "all-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.18", node_port: Some(30018), lb_ips: &["198.51.100.18"], ranges: &["0.0.0.0/0"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "ranges-with-node", kind: LOAD_BALANCER, cluster_ip: "10.10.1.19", node_port: Some(30019), lb_ips: &["198.51.100.19"], ranges: &["203.0.113.7/32", "192.168.0.101/32"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "hairpin", cluster_ip: "10.10.1.20", endpoints: &[A1], ..SVC },
    Svc { name: "ready-and-draining", cluster_ip: "10.10.1.21", endpoints: &[A1, draining("10.10.0.12", "node-a"), gone("10.10.0.13", "node-a")], ..SVC },
    Svc { name: "draining-only", cluster_ip: "10.10.1.22", endpoints: &[draining("10.10.0.12", "node-a"), gone("10.10.0.13", "node-a"), unready("10.10.0.14", "node-b")], ..SVC },
    Svc { name: "not-serving-only", cluster_ip: "10.10.1.23", endpoints: &[gone("10.10.0.13", "node-a"), unready("10.10.0.14", "node-b")], ..SVC },
    Svc { name: "external-ips", cluster_ip: "10.10.1.24", external_ips: &["198.51.100.124"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "external-ips-local", cluster_ip: "10.10.1.25", external_ips: &["198.51.100.125"], etp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "no-endpoints-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.26", node_port: Some(30026), lb_ips: &["198.51.100.26"], ranges: &["203.0.113.7/32"], ..SVC },
    Svc { name: "etp-local-draining", kind: LOAD_BALANCER, cluster_ip: "10.10.1.27", node_port: Some(30027), lb_ips: &["198.51.100.27"], etp: LOCAL, endpoints: &[draining("10.10.0.12", "node-a"), B1], ..SVC },
    Svc { name: "three-endpoints", cluster_ip: "10.10.1.31", endpoints: &[A1, B1, B2], ..SVC },
    Svc { name: "affinity", kind: ServiceType::NodePort, cluster_ip: "10.10.1.30", node_port: Some(30030), affinity_secs: Some(60), endpoints: &[A1, B1, B2], ..SVC },
];

/// node-a's view of [`SERVICES`], dual-stack, after `tweak` on the IPv4 settings.
pub fn custom_cluster(tweak: impl FnOnce(&mut ProxyConfig)) -> ClusterState {
    let mut state = ClusterState {
        proxy: ProxyConfig {
            node_name: "node-a".to_string(),
            node_ips: vec![ip(NODE_A)],
            cluster_cidrs: vec![net("10.10.0.0/24")],
            service_cidrs: vec![net("10.10.1.0/24")],
            ..ProxyConfig::default()
        },
        nodes: vec![
            Node {
                name: "node-a".to_string(),
                addresses: vec![ip(NODE_A)],
            },
            Node {
                name: "node-b".to_string(),
                addresses: vec![ip(NODE_B)],
            },
        ],
        ..ClusterState::default()
    };
    for svc in SERVICES {
        let name = ServiceName::new("default", svc.name);
        state.services.push(Service {
            name: name.clone(),
            service_type: svc.kind,
            cluster_ips: vec![ip(svc.cluster_ip)],
            ports: vec![ServicePort {
                name: "http".to_string(),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(8080),
                node_port: svc.node_port,
            }],
            external_ips: svc.external_ips.iter().map(|s| ip(s)).collect(),
            load_balancer_ips: svc.lb_ips.iter().map(|s| ip(s)).collect(),
            load_balancer_source_ranges: svc.ranges.iter().map(|s| net(s)).collect(),
            external_traffic_policy: svc.etp,
            internal_traffic_policy: svc.itp,
            session_affinity: match svc.affinity_secs {
                Some(secs) => SessionAffinity::ClientIp {
                    timeout: Duration::from_secs(secs),
                },
                None => SessionAffinity::None,
            },
        });
        state.endpoint_slices.push(EndpointSlice {
            name: format!("{}-x1", svc.name),
            service: name,
            ports: vec![EndpointPort {
                name: "http".to_string(),
                protocol: Protocol::Tcp,
                port: 8080,
            }],
            endpoints: svc
                .endpoints
                .iter()
                .map(|ep| Endpoint {
                    addresses: vec![ip(ep.ip)],
                    conditions: EndpointConditions {
                        ready: ep.ready,
                        serving: ep.serving,
                        terminating: ep.terminating,
                    },
                    node_name: Some(ep.node.to_string()),
                })
                .collect(),
        });
    }
    tweak(&mut state.proxy);
    dual_stack(state)
}

/// Endpoint sets of [`SERVICES`] that rows expect.
pub const BOTH_AB: &[&str] = &["10.10.0.11:8080", "10.10.0.21:8080"];
pub const ONLY_A: &[&str] = &["10.10.0.11:8080"];
pub const REMOTE_B: &[&str] = &["10.10.0.21:8080", "10.10.0.22:8080"];
