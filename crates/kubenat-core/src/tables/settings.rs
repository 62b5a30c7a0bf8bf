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

/// [`NodeSettings::is_outside_cluster`] for a new connection's path: a node with a single
/// IPv4 cluster CIDR (the usual case) answers an IPv4 source with one mask and compare,
/// the CIDRs kept as a (network, mask) pair; anything else asks the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PodSources {
    single_v4: Option<(u32, u32)>,
}

impl PodSources {
    /// The test for `settings`' cluster CIDRs.
    pub(crate) fn of(settings: &NodeSettings) -> PodSources {
        let mut v4 = settings.cluster_cidrs.iter().filter_map(|net| match net {
            IpNet::V4(net) => Some(net),
            IpNet::V6(_) => None,
        });
        let single_v4 = match (v4.next(), v4.next()) {
            (Some(net), None) => {
                // Shifted in 64 bits, a /0 shifts all 32 mask bits out.
                let mask = (u64::MAX << (32 - u32::from(net.prefix_len()))) as u32;
                Some((net.addr().to_bits() & mask, mask))
            }
            _ => None,
        };
        PodSources { single_v4 }
    }

    /// `settings.is_outside_cluster(ip)`, for the `settings` this test was made of.
    #[inline(always)]
    pub(crate) fn is_outside(&self, settings: &NodeSettings, ip: IpAddr) -> bool {
        match (self.single_v4, ip) {
            (Some((net, mask)), IpAddr::V4(ip)) => ip.to_bits() & mask != net,
            _ => settings.is_outside_cluster(ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The compact test agrees with the settings' walk over any cluster CIDRs.
        #[test]
        fn pod_sources_agree_with_the_settings(
            v4 in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..3),
            v6 in proptest::collection::vec((any::<u128>(), 0u8..=128), 0..2),
            probes in proptest::collection::vec(any::<u32>(), 1..20),
            probe6 in any::<u128>(),
        ) {
            let mut settings = NodeSettings::default();
            for &(addr, len) in &v4 {
                let net = ipnet::Ipv4Net::new(addr.into(), len).expect("prefix within 32");
                settings.cluster_cidrs.push(IpNet::V4(net));
            }
            for &(addr, len) in &v6 {
                let net = ipnet::Ipv6Net::new(addr.into(), len).expect("prefix within 128");
                settings.cluster_cidrs.push(IpNet::V6(net));
            }
            let pods = PodSources::of(&settings);
            // Inside a CIDR as well as anywhere.
            let near = v4.first().map(|&(addr, _)| addr ^ 1);
            for ip in probes.iter().copied().chain(near).map(|ip| IpAddr::from(std::net::Ipv4Addr::from(ip))) {
                prop_assert_eq!(pods.is_outside(&settings, ip), settings.is_outside_cluster(ip));
            }
            let ip6 = IpAddr::from(std::net::Ipv6Addr::from(probe6));
            prop_assert_eq!(pods.is_outside(&settings, ip6), settings.is_outside_cluster(ip6));
        }
    }
}
