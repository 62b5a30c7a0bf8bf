//! The node-wide settings the packet path consults: what differs between the nodes that
//! share one compiled snapshot.

use std::net::IpAddr;

use crate::cidr;
use crate::model::{IpNet, ProxyConfig, ProxyMode};

/// The node-wide settings the packet path consults: a copy of the corresponding
/// [`ProxyConfig`] fields, which document them. Small, and unchanged by Service and
/// EndpointSlice updates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSettings {
    /// [`ProxyConfig::node_name`]: picks the node's local endpoints.
    pub node_name: String,
    /// [`ProxyConfig::node_ips`].
    pub node_ips: Vec<IpAddr>,
    /// [`ProxyConfig::cluster_cidrs`].
    pub cluster_cidrs: Vec<IpNet>,
    /// [`ProxyConfig::service_cidrs`].
    pub service_cidrs: Vec<IpNet>,
    /// [`ProxyConfig::node_port_addresses`].
    pub node_port_addresses: Vec<IpNet>,
    /// [`ProxyConfig::masquerade_all`].
    pub masquerade_all: bool,
    /// [`ProxyConfig::mode`].
    pub mode: ProxyMode,
    /// [`ProxyConfig::localhost_node_ports`].
    pub localhost_node_ports: bool,
}

impl NodeSettings {
    /// The settings of the node `proxy` configures.
    pub fn from_proxy(proxy: &ProxyConfig) -> NodeSettings {
        NodeSettings {
            node_name: proxy.node_name.clone(),
            node_ips: proxy.node_ips.clone(),
            cluster_cidrs: proxy.cluster_cidrs.clone(),
            service_cidrs: proxy.service_cidrs.clone(),
            node_port_addresses: proxy.node_port_addresses.clone(),
            masquerade_all: proxy.masquerade_all,
            mode: proxy.mode,
            localhost_node_ports: proxy.localhost_node_ports,
        }
    }

    /// Is `ip` a pod address (inside the cluster CIDRs)?
    pub fn is_pod_ip(&self, ip: IpAddr) -> bool {
        self.cluster_cidrs.iter().any(|c| cidr::contains(c, ip))
    }

    /// Is `ip` outside the cluster CIDRs of its family, where one is known (kube-proxy runs
    /// one proxier per family, each with its own pod detector)? One pass over the CIDRs.
    pub fn is_outside_cluster(&self, ip: IpAddr) -> bool {
        let mut detected = false;
        for net in &self.cluster_cidrs {
            match cidr::same_family_contains(net, ip) {
                Some(true) => return false,
                Some(false) => detected = true,
                None => {}
            }
        }
        detected
    }

    /// Is `ip` one of this node's own addresses or a loopback address (`fib saddr type local`)?
    pub fn is_local_ip(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(&ip)
    }

    /// Does a NodePort answer on destination `ip`?
    pub fn serves_node_ports_on(&self, ip: IpAddr) -> bool {
        let listed = self
            .node_port_addresses
            .iter()
            .any(|n| cidr::contains(n, ip));
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
