//! What kube-proxy sees on one node: Services, EndpointSlices, Nodes and its own settings.
//!
//! Plain data, no behaviour: [`compile()`](crate::compile()) turns a [`ClusterState`] into
//! lookup tables, and [`Update`](crate::Update) carries changes to it. Field names follow the
//! Kubernetes API in snake case (`spec.externalIPs` is [`Service::external_ips`]); values are
//! taken as already validated by the API server. The Kubernetes import (YAML/JSON) lives in
//! its own crate and produces these types.
//!
//! [`IpNet`] (a CIDR such as `10.96.0.0/12`) is re-exported from the `ipnet` crate.

mod endpoint_slice;
mod node;
mod proxy_config;
mod service;

pub use endpoint_slice::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
pub use ipnet::IpNet;
pub use node::Node;
pub use proxy_config::{ConntrackTimeouts, EndpointSelection, ProxyConfig, ProxyMode};
pub use service::{
    Protocol, Service, ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort,
    TrafficPolicy,
};

/// Everything one node's engine is compiled from: pass it to
/// [`Engine::new`](crate::Engine::new) or [`compile()`](crate::compile()), or send a new one
/// as [`Update::Replace`](crate::Update::Replace).
///
/// See `reference::cluster` (feature `reference`) for a complete small example.
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
