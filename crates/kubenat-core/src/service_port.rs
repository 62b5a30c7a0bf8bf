//! A compiled service port: its id, its name, the frontends that lead to it and its
//! endpoints. Shared by the full tables and the packet path's port lines; the public paths
//! are in [`tables`](crate::tables).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::categorize::{CategorizedEndpoints, Endpoints};
use crate::cidr;
use crate::model::{IpNet, Protocol, ServiceName};

/// Index of a compiled service port (one per Service port and address family).
///
/// Valid for the [`Tables`](crate::tables::Tables) that handed it out; an update may free it and give it to
/// another port. Opaque: only the tables hand ids out ([`Tables::lookup`](crate::tables::Tables::lookup),
/// [`Tables::ports`](crate::tables::Tables::ports), ...), so an id cannot be made up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortId(pub(crate) u32);

/// The ids of one Service's ports. Nearly every Service has one port in one family: its id
/// is held inline, where a boxed slice took an allocation (and a free) of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum PortIds {
    #[default]
    None,
    One(ServicePortId),
    Many(Box<[ServicePortId]>),
}

impl std::ops::Deref for PortIds {
    type Target = [ServicePortId];

    fn deref(&self) -> &[ServicePortId] {
        match self {
            PortIds::None => &[],
            PortIds::One(id) => std::slice::from_ref(id),
            PortIds::Many(ids) => ids,
        }
    }
}

impl FromIterator<ServicePortId> for PortIds {
    fn from_iter<I: IntoIterator<Item = ServicePortId>>(ids: I) -> PortIds {
        let mut ids = ids.into_iter();
        match (ids.next(), ids.next()) {
            (None, _) => PortIds::None,
            (Some(id), None) => PortIds::One(id),
            (Some(first), Some(second)) => {
                PortIds::Many([first, second].into_iter().chain(ids).collect())
            }
        }
    }
}

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
    /// External and load-balancer IPs and source ranges, when the port has any.
    pub(crate) external: Option<Box<External>>,
    /// The NodePort, for NodePort and LoadBalancer Services that have one.
    pub node_port: Option<u16>,
    /// externalTrafficPolicy Local on an externally reachable Service: external traffic
    /// from outside the node goes to node-local endpoints only, source kept.
    pub external_policy_local: bool,
    /// internalTrafficPolicy Local: cluster IP traffic goes to node-local endpoints only.
    pub internal_policy_local: bool,
    /// `Some` for sessionAffinity ClientIP: how long a client keeps its endpoint.
    pub affinity_timeout: Option<Duration>,
    /// The usable endpoints, split by traffic policy class.
    pub endpoints: CategorizedEndpoints,
    /// The Maglev lookup tables, under endpoint selection Maglev when the port has
    /// endpoints (boxed: most ports use round robin and need none).
    pub maglev: Option<Box<MaglevTables>>,
}

/// A service port's Maglev lookup tables: each slot is an index into the endpoints it was
/// built over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTables {
    /// Over `endpoints.cluster`.
    pub cluster: Box<[u32]>,
    /// Over each node's local endpoints, in the order of `endpoints.local`.
    pub local: Box<[Box<[u32]>]>,
}

/// The traffic class a new connection draws its endpoint from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointClass {
    /// Every usable endpoint ([`CategorizedEndpoints::cluster`]).
    Cluster,
    /// Usable endpoints on this node only ([`CategorizedEndpoints::local`]).
    Local,
}

/// What leads to a port beside its cluster IP, and who may come that way. Boxed in the
/// port: most ports have none of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct External {
    /// The external IPs and load-balancer IPs of the port's family.
    frontends: Box<[(FrontendKey, Frontend)]>,
    /// loadBalancerSourceRanges of the family ([`CompiledServicePort::source_ranges`]).
    source_ranges: Box<[IpNet]>,
}

impl External {
    /// `None` when there is nothing beside the cluster IP.
    pub(crate) fn new(
        frontends: Vec<(FrontendKey, Frontend)>,
        source_ranges: Box<[IpNet]>,
    ) -> Option<Box<External>> {
        (!frontends.is_empty() || !source_ranges.is_empty()).then(|| {
            Box::new(External {
                frontends: frontends.into_boxed_slice(),
                source_ranges,
            })
        })
    }
}

impl CompiledServicePort {
    /// loadBalancerSourceRanges of this family; applies to load-balancer IP traffic only.
    /// Empty means everyone is allowed (a `/0` range compiles to empty too). A node whose
    /// address is in a range also lets its load-balancer IPs through
    /// ([`CompiledServicePort::allowed_sources`]).
    pub fn source_ranges(&self) -> &[IpNet] {
        self.external
            .as_ref()
            .map_or(&[], |external| &external.source_ranges)
    }

    /// The external IPs and load-balancer IPs of this family that lead here.
    fn other_frontends(&self) -> &[(FrontendKey, Frontend)] {
        self.external
            .as_ref()
            .map_or(&[], |external| &external.frontends)
    }

    /// Every (address, protocol, port) that leads here: the cluster IP first, then the
    /// external IPs and load-balancer IPs of this family.
    pub fn frontends(&self) -> impl Iterator<Item = (FrontendKey, Frontend)> + '_ {
        let cluster_ip = FrontendKey {
            address: self.cluster_ip,
            protocol: self.protocol,
            port: self.port,
        };
        std::iter::once((cluster_ip, Frontend::ClusterIp))
            .chain(self.other_frontends().iter().copied())
    }

    /// Whether `other` is reached the same way: same cluster IP, port, protocol,
    /// frontends and NodePort (what the lookup maps and the cluster-IP index hold).
    pub(crate) fn same_frontends(&self, other: &CompiledServicePort) -> bool {
        self.cluster_ip == other.cluster_ip
            && self.port == other.port
            && self.protocol == other.protocol
            && self.ipv6 == other.ipv6
            && self.node_port == other.node_port
            && self.other_frontends() == other.other_frontends()
    }

    /// The endpoints (address and target port) a new connection of `class` on node `node`
    /// picks from.
    pub fn endpoints_of(&self, class: EndpointClass, node: &str) -> Endpoints<'_> {
        match class {
            EndpointClass::Cluster => self.endpoints.cluster.view(),
            EndpointClass::Local => self.endpoints.local_on(node),
        }
    }

    pub(crate) fn maglev_of(&self, class: EndpointClass, node: &str) -> &[u32] {
        let Some(maglev) = &self.maglev else {
            return &[];
        };
        match class {
            EndpointClass::Cluster => &maglev.cluster,
            EndpointClass::Local => self
                .endpoints
                .local
                .binary_search_by(|group| (*group.node).cmp(node))
                .ok()
                .and_then(|i| maglev.local.get(i))
                .map_or(&[], |table| table),
        }
    }

    /// kube-proxy's `hasEndpoints`: some usable endpoint exists on some node. (A node's
    /// local endpoints are usable cluster-wide too, so the cluster set says it.)
    pub fn has_endpoints(&self) -> bool {
        !self.endpoints.cluster.is_empty()
    }

    /// The sources allowed to reach the load-balancer IPs from a node with addresses
    /// `node_ips` (empty: everyone). When a range holds a node address, the
    /// load-balancer IPs themselves are allowed too (traffic the node sends to its own
    /// VIP), as kube-proxy does.
    pub fn allowed_sources(&self, node_ips: &[IpAddr]) -> Vec<IpNet> {
        let mut allowed = self.source_ranges().to_vec();
        if self.lets_node_through(node_ips) {
            allowed.extend(self.load_balancer_ips().map(IpNet::from));
        }
        allowed
    }

    /// Whether `src` may reach the load-balancer IPs ([`CompiledServicePort::allowed_sources`]),
    /// without building the list.
    pub fn allows_source(&self, src: IpAddr, node_ips: &[IpAddr]) -> bool {
        let ranges = self.source_ranges();
        ranges.is_empty()
            || ranges.iter().any(|r| cidr::contains(r, src))
            || (self.load_balancer_ips().any(|ip| ip == src) && self.lets_node_through(node_ips))
    }

    fn lets_node_through(&self, node_ips: &[IpAddr]) -> bool {
        node_ips
            .iter()
            .any(|ip| self.source_ranges().iter().any(|r| r.contains(ip)))
    }

    fn load_balancer_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.other_frontends()
            .iter()
            .filter(|(_, frontend)| *frontend == Frontend::LoadBalancerIp)
            .map(|(key, _)| key.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ids_read_back_as_collected() {
        for count in 0..4 {
            let ids: Vec<ServicePortId> = (0..count).map(|i| ServicePortId(i * 7)).collect();
            let collected: PortIds = ids.iter().copied().collect();
            assert_eq!(*collected, *ids);
        }
    }
}
