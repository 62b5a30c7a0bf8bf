//! A Service and the types of its spec: protocol, type, traffic policies, affinity, ports.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IpNet;

/// Transport protocol of a Service port (Kubernetes `TCP`, `UDP`, `SCTP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TrafficPolicy {
    /// `Cluster` (the default): any usable endpoint on any node. External traffic is
    /// masqueraded so replies come back through this node.
    #[default]
    Cluster,
    /// `Local`: only endpoints on this node ([`ProxyConfig::node_name`](super::ProxyConfig::node_name)); traffic is dropped
    /// when there is none. External traffic keeps its client source address.
    Local,
}

/// `sessionAffinity`: with `ClientIp`, a client keeps its endpoint for `timeout` after its
/// last new connection (Kubernetes' default timeout is 10800 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetPort {
    /// A port number on the pod.
    Number(u16),
    /// The name of a container port, resolved per pod.
    Name(String),
}

/// `namespace/name` of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// `name`: matched against [`EndpointPort::name`](super::EndpointPort::name) to find the endpoints' port. Empty
    /// when the Service has a single unnamed port.
    pub name: String,
    /// `protocol`: also matched against [`EndpointPort::protocol`](super::EndpointPort::protocol).
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
/// cluster IP's family. Endpoints come from the [`EndpointSlice`](super::EndpointSlice)s whose
/// [`EndpointSlice::service`](super::EndpointSlice::service) is this Service's `name`. The default is an empty ClusterIP
/// Service named `default/`, meant for struct-update syntax (`..Service::default()`).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
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
