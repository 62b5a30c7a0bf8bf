//! What kube-proxy sees on one node: Services, EndpointSlices, Nodes and its own settings.
//!
//! Plain data, no behaviour: [`compile()`](crate::compile()) turns a [`ClusterState`] into
//! lookup tables, and [`Update`](crate::Update) carries changes to it. Field names follow the
//! Kubernetes API in snake case (`spec.externalIPs` is [`Service::external_ips`]); values are
//! taken as already validated by the API server. The Kubernetes import (YAML/JSON) lives in
//! its own crate and produces these types.
//!
//! [`IpNet`] (a CIDR such as `10.96.0.0/12`) is re-exported from the `ipnet` crate.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub use ipnet::IpNet;

/// Transport protocol of a Service port (Kubernetes `TCP`, `UDP`, `SCTP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `TCP` (IP protocol 6).
    Tcp,
    /// `UDP` (IP protocol 17).
    Udp,
    /// `SCTP` (IP protocol 132).
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
///
/// Every type answers on its cluster IPs and `spec.externalIPs`; the others add to that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// `ClusterIP` (the default): cluster IPs and external IPs only.
    #[default]
    ClusterIp,
    /// `NodePort`: also [`ServicePort::node_port`] on the node's addresses.
    NodePort,
    /// `LoadBalancer`: a NodePort Service that also answers on
    /// [`Service::load_balancer_ips`], filtered by its source ranges.
    LoadBalancer,
}

/// `spec.externalTrafficPolicy` / `spec.internalTrafficPolicy`: which endpoints a
/// connection may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// `Cluster` (the default): any usable endpoint on any node. External traffic is
    /// masqueraded so replies come back through this node.
    #[default]
    Cluster,
    /// `Local`: only endpoints on this node ([`ProxyConfig::node_name`]); traffic is dropped
    /// when there is none. External traffic keeps its client source address.
    Local,
}

/// `sessionAffinity`: with `ClientIp`, a client keeps its endpoint for `timeout` after its
/// last new connection (Kubernetes' default timeout is 10800 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SessionAffinity {
    /// `None` (the default): every new connection picks an endpoint afresh.
    #[default]
    None,
    /// `ClientIP`: new connections from one client address go to the endpoint its last
    /// connection to this service port got, while that endpoint is still usable.
    ClientIp {
        /// `sessionAffinityConfig.clientIP.timeoutSeconds`; see
        /// [`SessionAffinity::DEFAULT_TIMEOUT`].
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
    /// A port number on the pod.
    Number(u16),
    /// The name of a container port, resolved per pod.
    Name(String),
}

/// `namespace/name` of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceName {
    /// The Service `name` in `namespace`.
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
    /// `name`: matched against [`EndpointPort::name`] to find the endpoints' port. Empty
    /// when the Service has a single unnamed port.
    pub name: String,
    /// `protocol`: also matched against [`EndpointPort::protocol`].
    pub protocol: Protocol,
    /// `port`: the port the Service answers on at its cluster, external and load-balancer
    /// IPs.
    pub port: u16,
    /// `targetPort`: informational here (see [`TargetPort`]).
    pub target_port: TargetPort,
    /// `nodePort`: the port the Service answers on at the node's addresses. Used only for
    /// [`ServiceType::NodePort`] and [`ServiceType::LoadBalancer`]; ignored otherwise.
    pub node_port: Option<u16>,
}

/// A Service as kube-proxy uses it.
///
/// Each cluster IP (one per address family) combined with each entry of `ports` compiles to
/// one service port; external IPs, load-balancer IPs and source ranges are used only in the
/// cluster IP's family. Endpoints come from the [`EndpointSlice`]s whose
/// [`EndpointSlice::service`] is this Service's `name`. The default is an empty ClusterIP
/// Service named `default/`, meant for struct-update syntax (`..Service::default()`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Service {
    /// `metadata.namespace` and `metadata.name`; identifies the Service in
    /// [`Update`](crate::Update)s and links its EndpointSlices.
    pub name: ServiceName,
    /// `spec.type`.
    pub service_type: ServiceType,
    /// `spec.clusterIPs`: one per family (dual-stack). Empty for headless Services, which
    /// program nothing.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
    /// `spec.externalIPs`: further addresses that answer on every port, whatever the type.
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`, without those whose `ipMode` is `Proxy`. Answer
    /// only for [`ServiceType::LoadBalancer`].
    pub load_balancer_ips: Vec<IpAddr>,
    /// `spec.loadBalancerSourceRanges`: when not empty, traffic to a load-balancer IP from
    /// other sources is dropped
    /// ([`DropReason::SourceRangeDenied`](crate::DropReason::SourceRangeDenied)).
    /// Cluster IP, external IP and NodePort traffic is not filtered.
    pub load_balancer_source_ranges: Vec<IpNet>,
    /// `spec.externalTrafficPolicy`: for traffic to external IPs, load-balancer IPs and
    /// NodePorts. Ignored for a ClusterIP Service without external or load-balancer IPs.
    pub external_traffic_policy: TrafficPolicy,
    /// `spec.internalTrafficPolicy`: for traffic to the cluster IPs.
    pub internal_traffic_policy: TrafficPolicy,
    /// `spec.sessionAffinity` with its `sessionAffinityConfig`.
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
    /// `ready`: the endpoint takes new connections. Ready endpoints are always preferred.
    pub ready: bool,
    /// `serving`: like `ready`, but also reported while terminating. A serving and
    /// terminating endpoint gets new connections only when its class has no ready one.
    pub serving: bool,
    /// `terminating`: the pod is shutting down.
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
    /// `addresses`: kube-proxy uses only the first address of an endpoint (an endpoint
    /// without one is skipped; one of the other family serves the other cluster IP).
    pub addresses: Vec<IpAddr>,
    /// `conditions`.
    pub conditions: EndpointConditions,
    /// `nodeName`: the endpoint is node-local when this equals [`ProxyConfig::node_name`]
    /// (traffic policy `Local`). `None` is never local.
    pub node_name: Option<String>,
}

/// One entry of an EndpointSlice's `ports`: the resolved target port for the Service port
/// with the same name and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPort {
    /// `name`: equal to the [`ServicePort::name`] it belongs to (empty for an unnamed port).
    pub name: String,
    /// `protocol`: equal to the Service port's protocol.
    pub protocol: Protocol,
    /// `port`: the port on the endpoint's address that connections are DNATed to.
    pub port: u16,
}

/// A `discovery.k8s.io/v1` EndpointSlice, attached to its Service by the
/// `kubernetes.io/service-name` label.
///
/// A Service's endpoints are the union of all its slices; an address listed twice for the
/// same port counts once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSlice {
    /// `metadata.name`: identifies the slice among its Service's slices (for updates and
    /// [`Update::RemoveEndpointSlice`](crate::Update::RemoveEndpointSlice)).
    pub name: String,
    /// The Service it belongs to: its own namespace and the `kubernetes.io/service-name`
    /// label.
    pub service: ServiceName,
    /// `ports`: the target port of each Service port, matched by name and protocol. A
    /// Service port with no entry here gets no endpoints from this slice.
    pub ports: Vec<EndpointPort>,
    /// `endpoints`.
    pub endpoints: Vec<Endpoint>,
}

/// A Node: its name and addresses (kube-proxy reads its own node's addresses).
///
/// Informational: the engine compiles from [`ProxyConfig::node_name`] and
/// [`ProxyConfig::node_ips`], not from this list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// `status.addresses[].address` that are IPs.
    pub addresses: Vec<IpAddr>,
}

/// kube-proxy's backend. The two differ in a few observable ways, which the engine honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Traffic to a ClusterIP on a port the Service lacks is rejected; traffic to an
    /// unallocated address inside the service CIDRs is dropped; no localhost NodePorts.
    #[default]
    Nftables,
    /// NodePorts also answer on 127.0.0.1 when `localhost_node_ports` is set; other
    /// ports of a cluster IP and unallocated service addresses are not kube-proxy's business
    /// (passed untouched); loadBalancerSourceRanges apply only while the Service has
    /// endpoints.
    Iptables,
}

/// How the engine picks one endpoint of a service port for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointSelection {
    /// Strict rotation per service port and traffic class: deterministic and even.
    /// (kube-proxy draws at random; rotation gives the same long-run spread reproducibly.)
    #[default]
    RoundRobin,
    /// Maglev consistent hashing of the 5-tuple over a lookup table: a flow keeps its
    /// endpoint across engines and when other endpoints come or go.
    Maglev {
        /// Slots per table, rounded up to a prime by
        /// [`maglev::table_size`](crate::maglev::table_size) (65537 in the Maglev paper).
        /// Larger spreads more evenly and costs 4 bytes a slot, twice per service port.
        table_size: u32,
    },
}

/// Conntrack timeouts: Linux defaults, with kube-proxy's overrides
/// (`tcpEstablishedTimeout` 24 h, `tcpCloseWaitTimeout` 1 h).
///
/// A connection's timer restarts with its state's timeout on every packet; when it runs
/// out the connection is forgotten (see [`Engine::handle_timeout`](crate::Engine::handle_timeout)).
/// Each field names the Linux sysctl `net.netfilter.nf_conntrack_<protocol>_timeout_<state>`
/// it mirrors; defaults in parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConntrackTimeouts {
    /// TCP after the client's SYN (120 s).
    pub tcp_syn_sent: Duration,
    /// TCP after the SYN-ACK (60 s).
    pub tcp_syn_recv: Duration,
    /// TCP once established (24 h, kube-proxy's `conntrack.tcpEstablishedTimeout`).
    pub tcp_established: Duration,
    /// TCP after the first FIN (120 s).
    pub tcp_fin_wait: Duration,
    /// TCP once the first FIN is acknowledged (1 h, kube-proxy's
    /// `conntrack.tcpCloseWaitTimeout`).
    pub tcp_close_wait: Duration,
    /// TCP after the second FIN (30 s).
    pub tcp_last_ack: Duration,
    /// TCP after the last ACK (120 s); a new SYN reopens the tuple.
    pub tcp_time_wait: Duration,
    /// TCP after a RST (10 s); a new SYN reopens the tuple.
    pub tcp_close: Duration,
    /// UDP until the flow has seen traffic in both directions (30 s).
    pub udp: Duration,
    /// UDP once replied (`udp_timeout_stream`, 120 s).
    pub udp_stream: Duration,
    /// SCTP from INIT until the association is up (`COOKIE_WAIT`, 3 s).
    pub sctp_handshake: Duration,
    /// SCTP association up (210 s).
    pub sctp_established: Duration,
    /// SCTP after ABORT or SHUTDOWN (10 s).
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
///
/// The default is an nftables-mode node with no name and no addresses; set at least
/// `node_name`, `node_ips` and `cluster_cidrs` (struct-update syntax keeps the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This node's name (`hostnameOverride`), used for node-local endpoints.
    pub node_name: String,
    /// This node's own addresses: NodePorts answer here, masquerade uses the first
    /// non-loopback one of the packet's family, and traffic from them (or from loopback) is
    /// the node's own.
    pub node_ips: Vec<IpAddr>,
    /// The pod network (`clusterCIDR`): sources inside it are pods, others are outside, and
    /// outside sources reaching a cluster IP are masqueraded. Without a range of the
    /// packet's family, no such masquerade.
    pub cluster_cidrs: Vec<IpNet>,
    /// The service ranges (ServiceCIDR objects); nftables mode drops traffic to unallocated
    /// addresses inside them.
    pub service_cidrs: Vec<IpNet>,
    /// `masqueradeAll`: masquerade every connection to a cluster IP, pods' included.
    pub masquerade_all: bool,
    /// `nodePortAddresses`: the node addresses NodePorts answer on. Empty means all of
    /// `node_ips`.
    pub node_port_addresses: Vec<IpNet>,
    /// iptables mode only: NodePorts also answer on 127.0.0.1 (`iptables.localhostNodePorts`,
    /// default true). IPv4 only.
    pub localhost_node_ports: bool,
    /// `mode`: `nftables` (the default) or `iptables`.
    pub mode: ProxyMode,
    /// How new connections pick an endpoint (default round robin).
    pub selection: EndpointSelection,
    /// Conntrack timeouts per state.
    pub timeouts: ConntrackTimeouts,
    /// Connections tracked per address family in use (default 262144); new flows beyond it
    /// are dropped ([`DropReason::ConntrackFull`](crate::DropReason::ConntrackFull)). A family
    /// with no node address and no Service gets no table: its packets meet no NAT rule and
    /// pass untracked. The session-affinity table holds an eighth as many clients (at least
    /// 1024). Fixed when the [`Engine`](crate::Engine) is made.
    pub conntrack_capacity: usize,
    /// Source ports masquerade may choose (Linux `fully-random` uses 1024-65535).
    pub masquerade_ports: std::ops::RangeInclusive<u16>,
    /// Seeds masquerade port choice and Maglev tables, so runs are reproducible. The
    /// masquerade sequence is seeded once, when the [`Engine`](crate::Engine) is made.
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

/// Everything one node's engine is compiled from: pass it to
/// [`Engine::new`](crate::Engine::new) or [`compile()`](crate::compile()), or send a new one
/// as [`Update::Replace`](crate::Update::Replace).
///
/// See [`reference::cluster`](crate::reference::cluster) for a complete small example.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// Every Service (ExternalName ones left out). Services with the same name: the last wins.
    pub services: Vec<Service>,
    /// Every EndpointSlice, attached to its Service by [`EndpointSlice::service`]. Slices
    /// of unknown Services are kept until their Service appears.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// The cluster's Nodes (informational; see [`Node`]).
    pub nodes: Vec<Node>,
    /// This node's kube-proxy settings.
    pub proxy: ProxyConfig,
}
