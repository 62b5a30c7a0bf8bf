//! What kube-proxy sees on one node: Services, EndpointSlices, Nodes and its own settings.
//!
//! Plain data, no behaviour: [`crate::compile`] turns a [`ClusterState`] into lookup tables.
//! The Kubernetes import (YAML/JSON) lives in its own crate and produces these types.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub use ipnet::IpNet;

/// Transport protocol of a Service port (Kubernetes `TCP`, `UDP`, `SCTP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number carried in the IPv4 protocol / IPv6 next-header field.
    pub const fn ip_number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol for an IP protocol number, if it is one Services can use.
    pub const fn from_ip_number(number: u8) -> Option<Protocol> {
        match number {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Lower-case name, as nft and the CLI print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.type` of a Service. ExternalName Services program no rules and are not represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    #[default]
    ClusterIp,
    NodePort,
    LoadBalancer,
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// `sessionAffinity`: with `ClientIp`, a client keeps its endpoint for `timeout` after its
/// last new connection (Kubernetes' default timeout is 10800 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SessionAffinity {
    #[default]
    None,
    ClientIp {
        timeout: Duration,
    },
}

impl SessionAffinity {
    /// The Kubernetes default `sessionAffinityConfig.clientIP.timeoutSeconds`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10_800);
}

/// `targetPort`: kube-proxy never reads it directly (the EndpointSlice port named like the
/// Service port carries the resolved number); the import uses it to convert legacy Endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// `namespace/name` of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
}

impl ServiceName {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceName {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One entry of `spec.ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// Empty when the Service has a single unnamed port.
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub target_port: TargetPort,
    pub node_port: Option<u16>,
}

/// A Service as kube-proxy uses it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Service {
    pub name: ServiceName,
    pub service_type: ServiceType,
    /// `spec.clusterIPs`: one per family (dual-stack). Empty for headless Services.
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<ServicePort>,
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`, without those whose `ipMode` is `Proxy`.
    pub load_balancer_ips: Vec<IpAddr>,
    pub load_balancer_source_ranges: Vec<IpNet>,
    pub external_traffic_policy: TrafficPolicy,
    pub internal_traffic_policy: TrafficPolicy,
    pub session_affinity: SessionAffinity,
}

impl Default for ServiceName {
    fn default() -> Self {
        ServiceName::new("default", "")
    }
}

/// `endpoints[].conditions` of an EndpointSlice, with the API's meaning of absent values
/// already applied (absent `ready`/`serving` mean true, absent `terminating` means false).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointConditions {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

impl Default for EndpointConditions {
    fn default() -> Self {
        EndpointConditions {
            ready: true,
            serving: true,
            terminating: false,
        }
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// kube-proxy uses only the first address of an endpoint.
    pub addresses: Vec<IpAddr>,
    pub conditions: EndpointConditions,
    pub node_name: Option<String>,
}

/// One entry of an EndpointSlice's `ports`: the resolved target port for the Service port
/// with the same name and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// A `discovery.k8s.io/v1` EndpointSlice, attached to its Service by the
/// `kubernetes.io/service-name` label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSlice {
    pub name: String,
    pub service: ServiceName,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// A Node: its name and addresses (kube-proxy reads its own node's addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// kube-proxy's backend. The two differ in a few observable ways, which the engine honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Traffic to a ClusterIP on a port the Service lacks is rejected; traffic to an
    /// unallocated address inside the service CIDRs is dropped; no localhost NodePorts.
    #[default]
    Nftables,
    /// NodePorts also answer on 127.0.0.1 when `localhost_node_ports` is set.
    Iptables,
}

/// How the engine picks one endpoint of a service port for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointSelection {
    /// Strict rotation per service port and traffic class: deterministic and even.
    /// (kube-proxy draws at random; rotation gives the same long-run spread reproducibly.)
    #[default]
    RoundRobin,
    /// Maglev consistent hashing of the 5-tuple over a table of `table_size` slots
    /// (a prime; 65537 in the Maglev paper).
    Maglev { table_size: u32 },
}

/// Conntrack timeouts: Linux defaults, with kube-proxy's overrides
/// (`tcpEstablishedTimeout` 24 h, `tcpCloseWaitTimeout` 1 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConntrackTimeouts {
    pub tcp_syn_sent: Duration,
    pub tcp_syn_recv: Duration,
    pub tcp_established: Duration,
    pub tcp_fin_wait: Duration,
    pub tcp_close_wait: Duration,
    pub tcp_last_ack: Duration,
    pub tcp_time_wait: Duration,
    pub tcp_close: Duration,
    /// UDP until the flow has seen traffic in both directions.
    pub udp: Duration,
    /// UDP once replied (`udp_timeout_stream`).
    pub udp_stream: Duration,
    pub sctp_handshake: Duration,
    pub sctp_established: Duration,
    pub sctp_closing: Duration,
}

impl Default for ConntrackTimeouts {
    fn default() -> Self {
        let secs = Duration::from_secs;
        ConntrackTimeouts {
            tcp_syn_sent: secs(120),
            tcp_syn_recv: secs(60),
            tcp_established: secs(86_400),
            tcp_fin_wait: secs(120),
            tcp_close_wait: secs(3_600),
            tcp_last_ack: secs(30),
            tcp_time_wait: secs(120),
            tcp_close: secs(10),
            udp: secs(30),
            udp_stream: secs(120),
            sctp_handshake: secs(3),
            sctp_established: secs(210),
            sctp_closing: secs(10),
        }
    }
}

/// kube-proxy's settings for this node, plus the engine's own limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This node's name (`hostnameOverride`), used for node-local endpoints.
    pub node_name: String,
    /// This node's own addresses: NodePorts answer here, masquerade uses the first of the
    /// packet's family, and traffic from them is the node's own.
    pub node_ips: Vec<IpAddr>,
    /// The pod network (`clusterCIDR`): sources inside it are pods, others are outside.
    pub cluster_cidrs: Vec<IpNet>,
    /// The service ranges (ServiceCIDR objects); nftables mode drops traffic to unallocated
    /// addresses inside them.
    pub service_cidrs: Vec<IpNet>,
    pub masquerade_all: bool,
    /// `nodePortAddresses`: the node addresses NodePorts answer on. Empty means all of
    /// `node_ips`.
    pub node_port_addresses: Vec<IpNet>,
    /// iptables mode only: NodePorts also answer on 127.0.0.1.
    pub localhost_node_ports: bool,
    pub mode: ProxyMode,
    pub selection: EndpointSelection,
    pub timeouts: ConntrackTimeouts,
    /// Connections tracked per address family; new flows beyond it are dropped.
    pub conntrack_capacity: usize,
    /// Source ports masquerade may choose (Linux `fully-random` uses 1024-65535).
    pub masquerade_ports: std::ops::RangeInclusive<u16>,
    /// Seeds masquerade port choice and Maglev tables, so runs are reproducible.
    pub seed: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: String::new(),
            node_ips: Vec::new(),
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            masquerade_all: false,
            node_port_addresses: Vec::new(),
            localhost_node_ports: true,
            mode: ProxyMode::default(),
            selection: EndpointSelection::default(),
            timeouts: ConntrackTimeouts::default(),
            conntrack_capacity: 262_144,
            masquerade_ports: 1024..=65535,
            seed: 0x6b75_6265_6e61_7421,
        }
    }
}

/// Everything one node's engine is compiled from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    pub proxy: ProxyConfig,
}
