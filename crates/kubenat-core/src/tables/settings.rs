//! The node-wide settings the packet path consults.

use std::net::IpAddr;

use crate::model::{IpNet, ProxyMode};

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
