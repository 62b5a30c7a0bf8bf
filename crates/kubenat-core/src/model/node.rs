//! A Node and its addresses.

use std::net::IpAddr;

/// A Node: its name and addresses (kube-proxy reads its own node's addresses).
///
/// Informational: the engine compiles from [`ProxyConfig::node_name`](super::ProxyConfig::node_name) and
/// [`ProxyConfig::node_ips`](super::ProxyConfig::node_ips), not from this list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// `status.addresses[].address` that are IPs.
    pub addresses: Vec<IpAddr>,
}
