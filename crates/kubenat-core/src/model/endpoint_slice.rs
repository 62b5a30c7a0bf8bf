//! An EndpointSlice: the endpoints of a Service, their conditions and ports.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Protocol, ServiceName};

/// `endpoints[].conditions` of an EndpointSlice, with the API's meaning of absent values
/// already applied (absent `ready`/`serving` mean true, absent `terminating` means false).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `addresses`: kube-proxy uses only the first address of an endpoint (an endpoint
    /// without one is skipped; one of the other family serves the other cluster IP).
    pub addresses: Vec<IpAddr>,
    /// `conditions`.
    pub conditions: EndpointConditions,
    /// `nodeName`: the endpoint is node-local when this equals [`ProxyConfig::node_name`](super::ProxyConfig::node_name)
    /// (traffic policy `Local`). `None` is never local.
    pub node_name: Option<String>,
}

/// One entry of an EndpointSlice's `ports`: the resolved target port for the Service port
/// with the same name and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPort {
    /// `name`: equal to the [`ServicePort::name`](super::ServicePort::name) it belongs to (empty for an unnamed port).
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
