//! The policy routing that puts kubenat where netfilter's NAT hooks are: every packet
//! arriving on the node's interfaces, and every packet the node sends to a Service
//! address, is routed into the TUN device; what kubenat writes back into the TUN takes the
//! ordinary tables. The same rules and tables exist for IPv4 and, when the cluster has
//! IPv6 addresses, for IPv6.
//!
//! ```text
//! pref 1  iif TUN lookup local      packets kubenat wrote back: delivered here…
//! pref 2  iif TUN lookup main       …or routed as usual
//! pref 3  iif IF ipproto P lookup 27501
//!                                   each node interface and P in tcp, udp, sctp, icmp
//!                                   (IPv6: tcp, udp, sctp):
//!                                   table 27501 is `default dev TUN`
//! pref 4  iif lo lookup 27502       sent by the node: table 27502 holds the service ranges
//!                                   and each Service address outside them
//! pref 4  iif lo to NODE-IP ipproto P dport LOW-HIGH lookup 27501
//!                                   sent by the node to its own NodePorts (the range of
//!                                   the Services' nodePorts per protocol)
//! pref 5  lookup local              moved here from pref 0, so that NodePorts and replies
//!                                   to masqueraded connections (to the node's own
//!                                   addresses) reach kubenat before local delivery
//! ```
//!
//! The tables are looked up, not walked: a miss in 27502 costs one FIB lookup however many
//! Services there are.

use std::collections::BTreeSet;
use std::net::IpAddr;

use kubenat_core::{ClusterState, IpNet};

/// Marks our rules and routes (`protocol 250`), so `--cleanup` and people can tell them apart.
pub const PROTOCOL: &str = "250";
/// `default dev TUN`: where packets arriving on the node's interfaces go.
pub const INTERFACES_TABLE: &str = "27501";
/// A route per Service address through the TUN: where the node's own packets to them go.
pub const SERVICES_TABLE: &str = "27502";
/// The preference the local table's rule moves to.
pub const LOCAL_PREF: &str = "5";

/// An address family kubenat steers: rules, routes and sysctls exist once per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// `ip`'s option for the family.
    pub fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    /// The IP protocols steered from the interfaces: those with ports, and ICMP for IPv4
    /// (errors about translated connections, echo requests to Service addresses). Only
    /// these: ARP resolves the node's own addresses with an input route lookup of protocol
    /// 0, which must still find the local table, and IPv6's neighbour discovery is ICMPv6,
    /// so ICMPv6 is not steered (its errors about translated connections pass
    /// untranslated: a known gap).
    fn steered(self) -> &'static [&'static str] {
        match self {
            Family::V4 => &["tcp", "udp", "sctp", "icmp"],
            Family::V6 => &["tcp", "udp", "sctp"],
        }
    }

    fn default_route(self) -> &'static str {
        match self {
            Family::V4 => "default",
            Family::V6 => "::/0",
        }
    }
}

/// The NodePorts the node answers on, per protocol: `(protocol, lowest, highest)`.
pub fn node_port_ranges(state: &ClusterState) -> Vec<(&'static str, u16, u16)> {
    let mut ranges: Vec<(&'static str, u16, u16)> = Vec::new();
    let ports = state.services.iter().flat_map(|s| &s.ports);
    for (protocol, port) in ports.filter_map(|p| Some((p.protocol.as_str(), p.node_port?))) {
        match ranges.iter_mut().find(|(p, _, _)| *p == protocol) {
            Some((_, low, high)) => {
                *low = (*low).min(port);
                *high = (*high).max(port);
            }
            None => ranges.push((protocol, port, port)),
        }
    }
    ranges.sort();
    ranges
}

/// The rules that steer what the node sends to its own NodePorts (`node_ips` of `family`).
pub fn node_port_rules(
    family: Family,
    node_ips: &[IpAddr],
    ranges: &[(&'static str, u16, u16)],
) -> Vec<Vec<String>> {
    let mut rules = Vec::new();
    for ip in node_ips.iter().filter(|ip| family_of(ip) == family) {
        for (protocol, low, high) in ranges {
            let (to, dport) = (ip.to_string(), format!("{low}-{high}"));
            rules.push(rule(
                "4",
                &["iif", "lo", "to", &to, "ipproto", protocol, "dport", &dport],
                INTERFACES_TABLE,
            ));
        }
    }
    rules
}

/// One `ip rule` of ours for `family`: what follows `ip -4|-6 rule add` (or `del`).
pub fn rules(family: Family, tun: &str, interfaces: &[String]) -> Vec<Vec<String>> {
    let mut rules = vec![
        rule("1", &["iif", tun], "local"),
        rule("2", &["iif", tun], "main"),
    ];
    for interface in interfaces {
        rules.extend(interface_rules(family, interface));
    }
    rules.push(rule("4", &["iif", "lo"], SERVICES_TABLE));
    rules.push(rule(LOCAL_PREF, &[], "local"));
    rules
}

/// The rules that steer what arrives on `interface` into the TUN, one per protocol steered.
pub fn interface_rules(family: Family, interface: &str) -> Vec<Vec<String>> {
    family
        .steered()
        .iter()
        .map(|protocol| {
            rule(
                "3",
                &["iif", interface, "ipproto", protocol],
                INTERFACES_TABLE,
            )
        })
        .collect()
}

fn rule(pref: &str, selector: &[&str], table: &str) -> Vec<String> {
    let mut args = vec!["pref", pref];
    args.extend_from_slice(selector);
    args.extend_from_slice(&["lookup", table, "protocol", PROTOCOL]);
    args.into_iter().map(str::to_string).collect()
}

/// The `ip -batch` lines that fill both tables of `family`.
pub fn routes(family: Family, tun: &str, services: &BTreeSet<IpNet>) -> Vec<String> {
    let default = family.default_route();
    let mut routes = vec![format!(
        "route add {default} dev {tun} table {INTERFACES_TABLE} proto {PROTOCOL}"
    )];
    routes.extend(service_routes(
        tun,
        services
            .iter()
            .filter(|net| family_of(&net.addr()) == family),
    ));
    routes
}

/// The `ip -batch` lines that send the node's own packets to `services` into the TUN.
pub fn service_routes<'a>(tun: &str, services: impl IntoIterator<Item = &'a IpNet>) -> Vec<String> {
    services
        .into_iter()
        .map(|net| format!("route add {net} dev {tun} table {SERVICES_TABLE} proto {PROTOCOL}"))
        .collect()
}

/// The family of an address.
pub fn family_of(address: &IpAddr) -> Family {
    match address {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Where a Service answers, as routes: each service CIDR whole (the ServiceCIDR objects'
/// ranges: an unallocated address in one is kubenat's to refuse, as kube-proxy's nftables
/// rules do), and each Service address outside them (external and load-balancer IPs,
/// cluster IPs when no range is known) alone. One route per range, not per Service, keeps
/// attaching fast at 100k Services.
pub fn service_destinations(state: &ClusterState) -> BTreeSet<IpNet> {
    let ranges = &state.proxy.service_cidrs;
    let addresses = state.services.iter().flat_map(|s| {
        s.cluster_ips
            .iter()
            .chain(&s.external_ips)
            .chain(&s.load_balancer_ips)
    });
    ranges
        .iter()
        .map(IpNet::trunc)
        .chain(
            addresses
                .filter(|address| !ranges.iter().any(|range| range.contains(*address)))
                .map(|&address| IpNet::from(address)),
        )
        .collect()
}

/// Whether IPv6 is steered: when a Service destination ([`service_destinations`]) or a node
/// address is IPv6. Otherwise the namespace's IPv6 settings are left alone (turning
/// forwarding on stops an interface from accepting router advertisements).
pub fn steers_ipv6(services: &BTreeSet<IpNet>, node_ips: &[IpAddr]) -> bool {
    services.iter().any(|net| net.addr().is_ipv6()) || node_ips.iter().any(IpAddr::is_ipv6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_back_packets_skip_the_tun_and_local_comes_last() {
        let rules = rules(Family::V4, "kn42", &["eth0".into()]);
        let lines: Vec<String> = rules.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "pref 1 iif kn42 lookup local protocol 250",
                "pref 2 iif kn42 lookup main protocol 250",
                "pref 3 iif eth0 ipproto tcp lookup 27501 protocol 250",
                "pref 3 iif eth0 ipproto udp lookup 27501 protocol 250",
                "pref 3 iif eth0 ipproto sctp lookup 27501 protocol 250",
                "pref 3 iif eth0 ipproto icmp lookup 27501 protocol 250",
                "pref 4 iif lo lookup 27502 protocol 250",
                "pref 5 lookup local protocol 250",
            ]
        );
        // IPv6: neighbour discovery is ICMPv6, which must reach the local table.
        let v6: Vec<String> = rules_v6_lines();
        assert!(!v6.iter().any(|l| l.contains("icmp")), "{v6:?}");
        assert_eq!(v6.len(), 7);
    }

    fn rules_v6_lines() -> Vec<String> {
        rules(Family::V6, "kn42", &["eth0".into()])
            .iter()
            .map(|r| r.join(" "))
            .collect()
    }

    #[test]
    fn the_nodes_own_node_ports_are_steered_per_protocol_and_address() {
        let mut state = kubenat_core::reference::cluster("nodoa");
        state.services[0].ports[0].node_port = Some(31000);
        state.services[0].ports[0].protocol = kubenat_core::Protocol::Udp;
        let ranges = node_port_ranges(&state);
        assert_eq!(ranges, [("tcp", 30880, 30880), ("udp", 31000, 31000)]);
        let lines: Vec<String> = node_port_rules(Family::V4, &state.proxy.node_ips, &ranges)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "pref 4 iif lo to 192.168.0.101 ipproto tcp dport 30880-30880 lookup 27501 protocol 250",
                "pref 4 iif lo to 192.168.0.101 ipproto udp dport 31000-31000 lookup 27501 protocol 250",
            ]
        );
        assert!(node_port_rules(Family::V6, &state.proxy.node_ips, &ranges).is_empty());
    }

    #[test]
    fn one_route_per_service_range_and_per_address_outside_them() {
        let mut state = kubenat_core::reference::cluster("nodoa");
        state.services[0].external_ips = vec!["192.168.0.240".parse().unwrap()];
        state.services[1]
            .cluster_ips
            .push("fd00:10:1::102".parse().unwrap());
        let services = service_destinations(&state);
        assert_eq!(
            routes(Family::V4, "kn42", &services),
            [
                "route add default dev kn42 table 27501 proto 250",
                "route add 10.10.1.0/24 dev kn42 table 27502 proto 250",
                "route add 192.168.0.240/32 dev kn42 table 27502 proto 250",
            ]
        );
        assert_eq!(
            routes(Family::V6, "kn42", &services),
            [
                "route add ::/0 dev kn42 table 27501 proto 250",
                "route add fd00:10:1::102/128 dev kn42 table 27502 proto 250",
            ]
        );
        // Without a known range, every cluster IP gets its own route.
        state.proxy.service_cidrs.clear();
        assert!(service_destinations(&state).len() > 3);
    }
}
