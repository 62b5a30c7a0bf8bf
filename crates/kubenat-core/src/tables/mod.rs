//! The compiled table set: one hash lookup answers each question the packet path asks.
//!
//! Built once for the whole cluster by a [`ControlPlane`](crate::ControlPlane)
//! ([`ClusterTables`]) and read by every node's engines with the node's own settings
//! ([`Tables`]). Service ports get small integer ids that index a flat vector, so per-port
//! state (round-robin cursors) is a plain array.

mod changes;
mod cluster_ips;
mod frontends;
mod recent;
mod settings;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::categorize::Endpoints;
use crate::chunks::Chunks;
use crate::cidr;
use crate::model::{IpNet, Protocol};
use crate::port_lines::PortLines;
pub(crate) use crate::service_port::PortIds;
pub use crate::service_port::{
    CompiledServicePort, EndpointClass, Frontend, FrontendKey, MaglevTables, ServicePortId,
    ServicePortName,
};
use cluster_ips::ClusterIps;
use frontends::Frontends;
use recent::RecentChanges;
pub use settings::NodeSettings;
use settings::PodSources;

/// Fixed hasher seeds: the same state compiles to the same tables on every run.
pub(crate) fn fixed_state() -> RandomState {
    RandomState::with_seeds(
        0x6b75_6265_6e61_7401,
        0x6b75_6265_6e61_7402,
        0x6b75_6265_6e61_7403,
        0x6b75_6265_6e61_7404,
    )
}

pub(crate) type FixedState = RandomState;
pub(crate) type FixedMap<K, V> = HashMap<K, V, FixedState>;

/// What changes from one snapshot to the next, for the engines that follow: which
/// service ports were recompiled, so round-robin turns restart there and stale UDP
/// connections are flushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Everything (a full compile).
    All,
    /// The ports of one Service: those it had before and those it has now.
    Ports {
        ids: Box<[ServicePortId]>,
        /// Whether one of them is UDP (only UDP connections are flushed).
        udp: bool,
    },
}

/// The compiled tables of the whole cluster: one immutable snapshot, published by a
/// [`ControlPlane`](crate::ControlPlane) and read by every node's engines at once.
///
/// Nothing in it depends on a node: each Service's local endpoints are grouped by node
/// ([`CategorizedEndpoints::local`](crate::categorize::CategorizedEndpoints::local)), and
/// what differs between nodes (their name, addresses, NodePort addresses, local-traffic
/// detection) is in [`NodeSettings`]. [`Tables`] pairs the two.
///
/// The control plane keeps one to write, and publishes snapshots of
/// it, which share everything: the service ports sit in a persistent array and the lookup
/// maps behind shared pointers, so a change copies the run of ports it touches, and a map
/// only when it adds or removes a key.
#[derive(Debug)]
pub struct ClusterTables {
    ports: Chunks<Option<Arc<CompiledServicePort>>, PORT_LEAF>,
    free_ports: Vec<u32>,
    frontends: Arc<Frontends>,
    /// (protocol, node port, is IPv6) → service port.
    node_ports: Arc<FixedMap<(Protocol, u16, bool), ServicePortId>>,
    /// Cluster IPs with how many service ports use them, for the wrong-port check.
    cluster_ips: Arc<ClusterIps>,
    /// Compiled service ports per family: [IPv4, IPv6].
    ports_per_family: [usize; 2],
    /// The packet path's compact copy: a line per port, cluster IPs indexed.
    lines: PortLines,
    /// Counts the snapshots a control plane published; the first is 0.
    generation: u64,
    /// The changes of the last few generations.
    recent: RecentChanges,
}

/// Service ports per leaf of the persistent array: 16, so a change clones
/// few port pointers.
const PORT_LEAF: usize = 16;

impl ClusterTables {
    /// The packet path's compact copy: a line per service port, cluster IPs indexed.
    #[inline]
    pub(crate) fn lines(&self) -> &PortLines {
        &self.lines
    }

    /// No service port yet, with room for about `ports` of them.
    pub(crate) fn with_capacity(ports: usize) -> ClusterTables {
        ClusterTables {
            ports: Chunks::new(None),
            free_ports: Vec::new(),
            frontends: Arc::new(Frontends::with_capacity(ports)),
            node_ports: Arc::new(FixedMap::with_hasher(fixed_state())),
            cluster_ips: Arc::new(ClusterIps::with_capacity(ports)),
            ports_per_family: [0; 2],
            lines: PortLines::with_capacity(ports),
            generation: 0,
            recent: RecentChanges::default(),
        }
    }

    /// Which snapshot of its control plane this is: 0 for the first, one more for each
    /// change published since.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Carries on the generation count of `earlier` (a recompile of everything).
    pub(crate) fn continue_from(&mut self, earlier: &ClusterTables) {
        self.generation = earlier.generation;
        self.recent = earlier.recent.writer_copy();
    }

    /// Starts the next generation, made of `change`.
    pub(crate) fn next_generation(&mut self, change: Changed) {
        self.generation += 1;
        self.recent.push(self.generation, change);
    }

    /// Calls `each` with the changes since generation `since`, newest first; false when
    /// they are no longer all remembered (treat everything as changed).
    pub(crate) fn each_change_since(&self, since: u64, each: impl FnMut(&Changed)) -> bool {
        since >= self.generation || self.recent.each_since(since, each)
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
        self.frontends.get(&FrontendKey {
            address,
            protocol,
            port,
        })
    }

    /// The service port behind NodePort `port` of the family (`ipv6`), on whatever node
    /// address it answers ([`NodeSettings::serves_node_ports_on`]).
    #[inline]
    pub fn node_port(&self, protocol: Protocol, port: u16, ipv6: bool) -> Option<ServicePortId> {
        self.node_ports.get(&(protocol, port, ipv6)).copied()
    }

    /// Whether `address` is the cluster IP of some compiled service port (on any port).
    pub fn is_cluster_ip(&self, address: IpAddr) -> bool {
        self.cluster_ips.contains(address)
    }

    /// A compiled service port. Panics on an id not handed out by these tables.
    #[inline]
    pub fn port(&self, id: ServicePortId) -> &CompiledServicePort {
        self.ports
            .get(id.0 as usize)
            .as_deref()
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
            .filter_map(|(i, p)| p.as_deref().map(|p| (ServicePortId(i as u32), p)))
    }

    /// Whether some service port of the family (IPv6 or IPv4) is compiled.
    pub fn has_family(&self, ipv6: bool) -> bool {
        self.ports_per_family[usize::from(ipv6)] > 0
    }

    /// Every frontend, sorted, for printing.
    pub fn sorted_frontends(&self) -> Vec<(FrontendKey, ServicePortId, Frontend)> {
        let mut v: Vec<_> = self.frontends.iter().collect();
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

/// One node's view of the compiled tables: the cluster's shared snapshot
/// ([`ClusterTables`]) with the node's own settings. Made by [`compile()`](crate::compile())
/// or read through [`Engine::tables`](crate::Engine::tables); cheap to clone (two shared
/// pointers).
///
/// Answers, with one hash lookup each, which service port a destination belongs to
/// ([`Tables::lookup`]) and everything about that port ([`Tables::port`]).
#[derive(Clone, Debug)]
pub struct Tables {
    cluster: Arc<ClusterTables>,
    node: Arc<NodeSettings>,
    /// `node`'s cluster CIDRs, as a new connection tests its source against them.
    pods: PodSources,
}

impl Tables {
    /// The node `node`'s view of `cluster`.
    pub fn new(cluster: Arc<ClusterTables>, node: Arc<NodeSettings>) -> Tables {
        let pods = PodSources::of(&node);
        Tables {
            cluster,
            node,
            pods,
        }
    }

    /// [`NodeSettings::is_outside_cluster`], in one compare for a node with one IPv4
    /// cluster CIDR.
    #[inline(always)]
    pub(crate) fn is_outside_cluster(&self, ip: IpAddr) -> bool {
        self.pods.is_outside(&self.node, ip)
    }

    /// The cluster's shared snapshot.
    pub fn cluster(&self) -> &Arc<ClusterTables> {
        &self.cluster
    }

    /// The packet path's compact copy: a line per service port, cluster IPs indexed.
    #[inline]
    pub(crate) fn lines(&self) -> &PortLines {
        self.cluster.lines()
    }

    /// The node's own settings.
    pub fn settings(&self) -> &NodeSettings {
        &self.node
    }

    /// Follows another snapshot of the cluster.
    pub(crate) fn set_cluster(&mut self, cluster: Arc<ClusterTables>) {
        self.cluster = cluster;
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
        self.cluster.frontend(address, protocol, port)
    }

    /// The service port behind a NodePort on destination `address`, if NodePorts answer
    /// on that address on this node ([`NodeSettings::serves_node_ports_on`]).
    #[inline]
    pub fn node_port(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<ServicePortId> {
        if !self.node.serves_node_ports_on(address) {
            return None;
        }
        self.cluster.node_port(protocol, port, address.is_ipv6())
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
        self.cluster.is_cluster_ip(address)
    }

    /// Whether `address` is inside [`NodeSettings::service_cidrs`].
    pub fn in_service_cidrs(&self, address: IpAddr) -> bool {
        self.node
            .service_cidrs
            .iter()
            .any(|c| cidr::contains(c, address))
    }

    /// A compiled service port. Panics on an id not handed out by these tables.
    #[inline]
    pub fn port(&self, id: ServicePortId) -> &CompiledServicePort {
        self.cluster.port(id)
    }

    /// The usable endpoints of service port `id` on this node, for traffic policy Local.
    pub fn local_endpoints(&self, id: ServicePortId) -> Endpoints<'_> {
        self.port(id).endpoints.local_on(&self.node.node_name)
    }

    /// The endpoints a new connection of `class` to service port `id` picks from here.
    pub fn endpoints_of(&self, id: ServicePortId, class: EndpointClass) -> Endpoints<'_> {
        self.port(id).endpoints_of(class, &self.node.node_name)
    }

    /// The sources allowed to reach service port `id`'s load-balancer IPs from this node
    /// (empty: everyone); see [`CompiledServicePort::allowed_sources`].
    pub fn allowed_sources(&self, id: ServicePortId) -> Vec<IpNet> {
        self.port(id).allowed_sources(&self.node.node_ips)
    }

    /// Upper bound of the ids handed out, for arrays indexed by [`ServicePortId`].
    pub fn port_slots(&self) -> usize {
        self.cluster.port_slots()
    }

    /// Every compiled service port, in id order.
    pub fn ports(&self) -> impl Iterator<Item = (ServicePortId, &CompiledServicePort)> {
        self.cluster.ports()
    }

    /// Whether the family (IPv6 or IPv4) has a node address or a service port here.
    pub fn uses_family(&self, ipv6: bool) -> bool {
        self.node.node_ips.iter().any(|ip| ip.is_ipv6() == ipv6) || self.cluster.has_family(ipv6)
    }

    /// Every frontend, sorted, for printing.
    pub fn sorted_frontends(&self) -> Vec<(FrontendKey, ServicePortId, Frontend)> {
        self.cluster.sorted_frontends()
    }

    /// Every NodePort as (protocol, port, is IPv6, service port), sorted, for printing.
    pub fn sorted_node_ports(&self) -> Vec<(Protocol, u16, bool, ServicePortId)> {
        self.cluster.sorted_node_ports()
    }
}
