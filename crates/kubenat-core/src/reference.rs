//! The course notes' cluster ("Comunicaciones en Kubernetes"): the reference scenario of
//! the demo, the examples and the flow tests.
//!
//! Four nodes on the company LAN 192.168.0.0/16, pods on 10.10.0.0/24, Services on
//! 10.10.1.0/24 (both inside the pod network 10.10.0.0/16 the notes draw):
//!
//! | Service | cluster IP | endpoints |
//! |---|---|---|
//! | `mariadb-service` | 10.10.1.101:3307 | 10.10.0.103:3306 (nodoc) |
//! | `wp-service` | 10.10.1.102:8080 | 10.10.0.102:80 (nodoa), 10.10.0.112:80 (nodob) |
//! | `nginx` (NodePort 30880) | 10.10.1.105:8081 | 10.10.0.105:80 (nodob) |
//! | `kube-system/kube-dns` | 10.10.1.10:53 | 10.10.0.10:53 (nodo1) |

use std::net::IpAddr;

use crate::model::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Node, Protocol,
    ProxyConfig, Service, ServiceName, ServicePort, ServiceType, TargetPort,
};

/// The nodes of the notes: (name, address).
pub const NODES: [(&str, &str); 4] = [
    ("nodo1", "192.168.0.100"),
    ("nodoa", "192.168.0.101"),
    ("nodob", "192.168.0.102"),
    ("nodoc", "192.168.0.103"),
];

/// The external load balancer in front of the NodePorts (not a node: traffic from it is
/// external).
pub const LOAD_BALANCER: &str = "192.168.0.10";
/// The PC of the notes: an outside client on the LAN.
pub const PC: &str = "192.168.0.200";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("literal CIDR")
}

struct Spec {
    namespace: &'static str,
    name: &'static str,
    cluster_ip: &'static str,
    service_type: ServiceType,
    /// (port name, protocol, port, target port, node port)
    ports: &'static [(&'static str, Protocol, u16, u16, Option<u16>)],
    /// (pod IP, node)
    endpoints: &'static [(&'static str, &'static str)],
}

const SERVICES: &[Spec] = &[
    Spec {
        namespace: "default",
        name: "mariadb-service",
        cluster_ip: "10.10.1.101",
        service_type: ServiceType::ClusterIp,
        ports: &[("mysql", Protocol::Tcp, 3307, 3306, None)],
        endpoints: &[("10.10.0.103", "nodoc")],
    },
    Spec {
        namespace: "default",
        name: "wp-service",
        cluster_ip: "10.10.1.102",
        service_type: ServiceType::ClusterIp,
        ports: &[("http", Protocol::Tcp, 8080, 80, None)],
        endpoints: &[("10.10.0.102", "nodoa"), ("10.10.0.112", "nodob")],
    },
    Spec {
        namespace: "default",
        name: "nginx",
        cluster_ip: "10.10.1.105",
        service_type: ServiceType::NodePort,
        ports: &[("http", Protocol::Tcp, 8081, 80, Some(30880))],
        endpoints: &[("10.10.0.105", "nodob")],
    },
    Spec {
        namespace: "kube-system",
        name: "kube-dns",
        cluster_ip: "10.10.1.10",
        service_type: ServiceType::ClusterIp,
        ports: &[
            ("dns", Protocol::Udp, 53, 53, None),
            ("dns-tcp", Protocol::Tcp, 53, 53, None),
        ],
        endpoints: &[("10.10.0.10", "nodo1")],
    },
];

/// The notes' cluster as seen by the kube-proxy of `node` (one of [`NODES`]).
///
/// nftables mode, cluster CIDR 10.10.0.0/16, service CIDR 10.10.1.0/24, every endpoint ready,
/// and `node`'s address as its only node IP (an unknown name gives a node without
/// addresses, so nothing is masqueradable). Everything else is [`ProxyConfig::default`].
///
/// ```
/// use kubenat_core::{Engine, Flow, Hook, Instant, Verdict, reference};
///
/// // On nodob, the PC opens a TCP connection to nginx's NodePort.
/// let mut engine = Engine::new(&reference::cluster("nodob"));
/// let mut syn = Vec::new();
/// etherparse::PacketBuilder::ipv4([192, 168, 0, 200], [192, 168, 0, 102], 64)
///     .tcp(50000, 30880, 1, 64240)
///     .syn()
///     .write(&mut syn, &[])
///     .unwrap();
/// match engine.process(Hook::Prerouting, &mut syn, Instant::ZERO) {
///     // DNAT to nginx's only pod; masquerade follows in POSTROUTING.
///     Verdict::Translated(_) => {
///         let after = Flow::of_packet(&syn).unwrap();
///         assert_eq!(after.destination, "10.10.0.105:80".parse().unwrap())
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn cluster(node: &str) -> ClusterState {
    let node_ip = NODES
        .iter()
        .find(|(name, _)| *name == node)
        .map(|(_, address)| ip(address));
    let mut state = ClusterState {
        proxy: ProxyConfig {
            node_name: node.to_string(),
            node_ips: node_ip.into_iter().collect(),
            cluster_cidrs: vec![net("10.10.0.0/16")],
            service_cidrs: vec![net("10.10.1.0/24")],
            ..ProxyConfig::default()
        },
        nodes: NODES
            .iter()
            .map(|(name, address)| Node {
                name: name.to_string(),
                addresses: vec![ip(address)],
            })
            .collect(),
        ..ClusterState::default()
    };
    for spec in SERVICES {
        let name = ServiceName::new(spec.namespace, spec.name);
        state.services.push(Service {
            name: name.clone(),
            service_type: spec.service_type,
            cluster_ips: vec![ip(spec.cluster_ip)],
            ports: spec
                .ports
                .iter()
                .map(
                    |&(port_name, protocol, port, target, node_port)| ServicePort {
                        name: port_name.to_string(),
                        protocol,
                        port,
                        target_port: TargetPort::Number(target),
                        node_port,
                    },
                )
                .collect(),
            ..Service::default()
        });
        state.endpoint_slices.push(EndpointSlice {
            name: format!("{}-abc12", spec.name),
            service: name,
            ports: spec
                .ports
                .iter()
                .map(|&(port_name, protocol, _, target, _)| EndpointPort {
                    name: port_name.to_string(),
                    protocol,
                    port: target,
                })
                .collect(),
            endpoints: spec
                .endpoints
                .iter()
                .map(|&(pod, node)| Endpoint {
                    addresses: vec![ip(pod)],
                    conditions: EndpointConditions::default(),
                    node_name: Some(node.to_string()),
                })
                .collect(),
        });
    }
    state
}
