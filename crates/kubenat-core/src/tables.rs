//! The compiled table set: one hash lookup answers each question the packet path asks.
//!
//! Built by [`compile()`](crate::compile()); read by the engine. Service ports get small
//! integer ids that index a flat vector, so per-port state (round-robin cursors) is a plain
//! array.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::categorize::CategorizedEndpoints;
use crate::model::{IpNet, Protocol, ProxyMode, ServiceName};
use crate::port_lines::PortLines;

/// Fixed hasher seeds: the same state compiles to the same tables on every run.
pub(crate) fn fixed_state() -> RandomState {
    RandomState::with_seeds(
        0x6b75_6265_6e61_7401,
        0x6b75_6265_6e61_7402,
        0x6b75_6265_6e61_7403,
        0x6b75_6265_6e61_7404,
    )
}

pub(crate) type FixedMap<K, V> = HashMap<K, V, RandomState>;

/// Index of a compiled service port (one per Service port and address family).
///
/// Valid for the [`Tables`] that handed it out; an update may free it and give it to
/// another port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortId(pub u32);

/// `namespace/name:port`, how kube-proxy names a service port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    /// The Service.
    pub service: ServiceName,
    /// [`ServicePort::name`](crate::ServicePort::name); empty for an unnamed port.
    pub port: String,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // kube-proxy's ServicePortName: an unnamed port adds no suffix.
        if self.port.is_empty() {
            write!(f, "{}", self.service)
        } else {
            write!(f, "{}:{}", self.service, self.port)
        }
    }
}

/// How a packet addressed a service port. ClusterIP traffic follows the internal traffic
/// policy; the others are external and follow the external one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frontend {
    /// One of `spec.clusterIPs`, on `port`.
    ClusterIp,
    /// One of `spec.externalIPs`, on `port`.
    ExternalIp,
    /// A load-balancer ingress IP, on `port` (subject to loadBalancerSourceRanges).
    LoadBalancerIp,
    /// A node address, on `nodePort`.
    NodePort,
}

impl Frontend {
    /// Whether the external traffic policy applies (everything but [`Frontend::ClusterIp`]).
    pub const fn is_external(self) -> bool {
        !matches!(self, Frontend::ClusterIp)
    }

    /// Human-readable name, as traces print it (`"cluster IP"`, `"node port"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Frontend::ClusterIp => "cluster IP",
            Frontend::ExternalIp => "external IP",
            Frontend::LoadBalancerIp => "load-balancer IP",
            Frontend::NodePort => "node port",
        }
    }
}

/// Key of the destination table: (address, protocol, port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrontendKey {
    /// Destination address.
    pub address: IpAddr,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Destination port.
    pub port: u16,
}

/// Everything the packet path needs about one service port in one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledServicePort {
    /// `namespace/name:port` of the Service port.
    pub name: ServicePortName,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Address family: true for the IPv6 cluster IP of a dual-stack Service.
    pub ipv6: bool,
    /// The cluster IP of this family.
    pub cluster_ip: IpAddr,
    /// [`ServicePort::port`](crate::ServicePort::port).
    pub port: u16,
    /// Every (address, protocol, port) that leads here: the cluster IP, external IPs and
    /// load-balancer IPs of this family.
    pub frontends: Vec<(FrontendKey, Frontend)>,
    /// The NodePort, for NodePort and LoadBalancer Services that have one.
    pub node_port: Option<u16>,
    /// externalTrafficPolicy Local on an externally reachable Service: external traffic
    /// from outside the node goes to node-local endpoints only, source kept.
    pub external_policy_local: bool,
    /// internalTrafficPolicy Local: cluster IP traffic goes to node-local endpoints only.
    pub internal_policy_local: bool,
    /// `Some` for sessionAffinity ClientIP: how long a client keeps its endpoint.
    pub affinity_timeout: Option<Duration>,
    /// loadBalancerSourceRanges of this family; applies to load-balancer IP traffic only.
    /// Empty means everyone is allowed (a `/0` range compiles to empty too). When a range
    /// holds a node address, the load-balancer IPs are added, as kube-proxy does.
    pub source_ranges: Vec<IpNet>,
    /// The usable endpoints, split by traffic policy class.
    pub endpoints: CategorizedEndpoints,
    /// Maglev lookup table over `endpoints.cluster`: each slot is an index into it
    /// (empty for round robin or without endpoints).
    pub maglev_cluster: Box<[u32]>,
    /// Maglev lookup table over `endpoints.local`, like `maglev_cluster`.
    pub maglev_local: Box<[u32]>,
}

/// The traffic class a new connection draws its endpoint from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointClass {
    /// Every usable endpoint ([`CategorizedEndpoints::cluster`]).
    Cluster,
    /// Usable endpoints on this node only ([`CategorizedEndpoints::local`]).
    Local,
}

impl CompiledServicePort {
    /// The endpoints (address and target port) a new connection of `class` picks from.
    pub fn endpoints_of(&self, class: EndpointClass) -> &[SocketAddr] {
        match class {
            EndpointClass::Cluster => &self.endpoints.cluster,
            EndpointClass::Local => &self.endpoints.local,
        }
    }

    pub(crate) fn maglev_of(&self, class: EndpointClass) -> &[u32] {
        match class {
            EndpointClass::Cluster => &self.maglev_cluster,
            EndpointClass::Local => &self.maglev_local,
        }
    }

    /// kube-proxy's `hasEndpoints`: some usable endpoint exists on some node.
    pub fn has_endpoints(&self) -> bool {
        !self.endpoints.cluster.is_empty() || !self.endpoints.local.is_empty()
    }
}

/// The node-wide settings the packet path consults: a copy of the corresponding
/// [`ProxyConfig`](crate::ProxyConfig) fields, which document them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSettings {
    /// [`ProxyConfig::node_ips`](crate::ProxyConfig::node_ips).
    pub node_ips: Vec<IpAddr>,
    /// [`ProxyConfig::cluster_cidrs`](crate::ProxyConfig::cluster_cidrs).
    pub cluster_cidrs: Vec<IpNet>,
    /// [`ProxyConfig::service_cidrs`](crate::ProxyConfig::service_cidrs).
    pub service_cidrs: Vec<IpNet>,
    /// [`ProxyConfig::node_port_addresses`](crate::ProxyConfig::node_port_addresses).
    pub node_port_addresses: Vec<IpNet>,
    /// [`ProxyConfig::masquerade_all`](crate::ProxyConfig::masquerade_all).
    pub masquerade_all: bool,
    /// [`ProxyConfig::mode`](crate::ProxyConfig::mode).
    pub mode: ProxyMode,
    /// [`ProxyConfig::localhost_node_ports`](crate::ProxyConfig::localhost_node_ports).
    pub localhost_node_ports: bool,
}

impl NodeSettings {
    /// Is `ip` a pod address (inside the cluster CIDRs)?
    pub fn is_pod_ip(&self, ip: IpAddr) -> bool {
        self.cluster_cidrs.iter().any(|c| c.contains(&ip))
    }

    /// Can pod traffic be told apart for `ip`'s family (a cluster CIDR of that family is
    /// known)? kube-proxy runs one proxier per family, each with its own detector.
    pub fn detects_pods(&self, ip: IpAddr) -> bool {
        self.cluster_cidrs
            .iter()
            .any(|c| c.addr().is_ipv4() == ip.is_ipv4())
    }

    /// Is `ip` one of this node's own addresses or a loopback address (`fib saddr type local`)?
    pub fn is_local_ip(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(&ip)
    }

    /// Does a NodePort answer on destination `ip`?
    pub fn serves_node_ports_on(&self, ip: IpAddr) -> bool {
        let listed = self.node_port_addresses.iter().any(|n| n.contains(&ip));
        if ip.is_loopback() {
            // iptables mode only, IPv4 only; an explicit nodePortAddresses must list it.
            return self.mode == ProxyMode::Iptables
                && self.localhost_node_ports
                && ip.is_ipv4()
                && (self.node_port_addresses.is_empty() || listed);
        }
        self.node_ips.contains(&ip) && (self.node_port_addresses.is_empty() || listed)
    }

    /// The address masquerade rewrites sources to: the node's first non-loopback address
    /// of the family (`ipv6` true for IPv6), if it has one.
    pub fn masquerade_address(&self, ipv6: bool) -> Option<IpAddr> {
        self.node_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv6() == ipv6 && !ip.is_loopback())
    }
}

/// The compiled tables of one node: made by [`compile()`](crate::compile()), read through
/// [`Engine::tables`](crate::Engine::tables) or [`ServiceMap::tables`](crate::ServiceMap::tables).
///
/// Answers, with one hash lookup each, which service port a destination belongs to
/// ([`Tables::lookup`]) and everything about that port ([`Tables::port`]).
#[derive(Clone, Debug)]
pub struct Tables {
    pub(crate) ports: Vec<Option<CompiledServicePort>>,
    pub(crate) free_ports: Vec<u32>,
    pub(crate) frontends: FixedMap<FrontendKey, (ServicePortId, Frontend)>,
    /// (protocol, node port, is IPv6) → service port.
    pub(crate) node_ports: FixedMap<(Protocol, u16, bool), ServicePortId>,
    /// Cluster IPs with how many service ports use them, for the wrong-port check.
    pub(crate) cluster_ips: FixedMap<IpAddr, u32>,
    /// Compiled service ports per family: [IPv4, IPv6].
    pub(crate) ports_per_family: [usize; 2],
    pub(crate) settings: NodeSettings,
    /// The packet path's compact copy: a line per port, cluster IPs indexed.
    pub(crate) lines: PortLines,
}

impl Tables {
    /// No service port yet, with room for about `ports` of them.
    pub(crate) fn with_capacity(settings: NodeSettings, ports: usize) -> Tables {
        Tables {
            ports: Vec::with_capacity(ports),
            free_ports: Vec::new(),
            frontends: FixedMap::with_capacity_and_hasher(ports, fixed_state()),
            node_ports: FixedMap::with_hasher(fixed_state()),
            cluster_ips: FixedMap::with_capacity_and_hasher(ports, fixed_state()),
            ports_per_family: [0; 2],
            settings,
            lines: PortLines::with_capacity(ports),
        }
    }

    /// The node-wide settings the tables were compiled with.
    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    /// The service port behind `address:port`, if a ClusterIP, external IP or
    /// load-balancer IP serves it.
    #[inline]
    pub fn frontend(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, Frontend)> {
        self.frontends
            .get(&FrontendKey {
                address,
                protocol,
                port,
            })
            .copied()
    }

    /// The service port behind a NodePort on destination `address`, if NodePorts answer
    /// on that address ([`NodeSettings::serves_node_ports_on`]).
    #[inline]
    pub fn node_port(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<ServicePortId> {
        if !self.settings.serves_node_ports_on(address) {
            return None;
        }
        self.node_ports
            .get(&(protocol, port, address.is_ipv6()))
            .copied()
    }

    /// The service port a new connection to `address:port` is for, and how it got there:
    /// [`Tables::frontend`] first, then [`Tables::node_port`].
    #[inline]
    pub fn lookup(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, Frontend)> {
        self.frontend(address, protocol, port).or_else(|| {
            self.node_port(address, protocol, port)
                .map(|id| (id, Frontend::NodePort))
        })
    }

    /// Whether `address` is the cluster IP of some compiled service port (on any port).
    pub fn is_cluster_ip(&self, address: IpAddr) -> bool {
        self.cluster_ips.contains_key(&address)
    }

    /// Whether `address` is inside [`NodeSettings::service_cidrs`].
    pub fn in_service_cidrs(&self, address: IpAddr) -> bool {
        self.settings
            .service_cidrs
            .iter()
            .any(|c| c.contains(&address))
    }

    /// A compiled service port. Panics on an id not handed out by these tables.
    #[inline]
    pub fn port(&self, id: ServicePortId) -> &CompiledServicePort {
        self.ports[id.0 as usize]
            .as_ref()
            .expect("service port id from these tables")
    }

    /// Upper bound of the ids handed out, for arrays indexed by [`ServicePortId`].
    pub fn port_slots(&self) -> usize {
        self.ports.len()
    }

    /// Every compiled service port, in id order.
    pub fn ports(&self) -> impl Iterator<Item = (ServicePortId, &CompiledServicePort)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (ServicePortId(i as u32), p)))
    }

    /// Whether the family (IPv6 or IPv4) has a node address or a service port here.
    pub fn uses_family(&self, ipv6: bool) -> bool {
        self.settings.node_ips.iter().any(|ip| ip.is_ipv6() == ipv6)
            || self.ports_per_family[usize::from(ipv6)] > 0
    }

    /// Every frontend, sorted, for printing.
    pub fn sorted_frontends(&self) -> Vec<(FrontendKey, ServicePortId, Frontend)> {
        let mut v: Vec<_> = self
            .frontends
            .iter()
            .map(|(k, &(id, f))| (*k, id, f))
            .collect();
        v.sort();
        v
    }

    /// Every NodePort as (protocol, port, is IPv6, service port), sorted, for printing.
    pub fn sorted_node_ports(&self) -> Vec<(Protocol, u16, bool, ServicePortId)> {
        let mut v: Vec<_> = self
            .node_ports
            .iter()
            .map(|(&(proto, port, v6), &id)| (proto, port, v6, id))
            .collect();
        v.sort();
        v
    }
}
