//! The policy routing that puts kubenat where netfilter's NAT hooks are: every IPv4 packet
//! arriving on the node's interfaces, and every packet the node sends to a Service
//! address, is routed into the TUN device; what kubenat writes back into the TUN takes the
//! ordinary tables.
//!
//! ```text
//! pref 1  iif TUN lookup local      packets kubenat wrote back: delivered here…
//! pref 2  iif TUN lookup main       …or routed as usual
//! pref 3  iif IF ipproto P lookup 27501
//!                                   each node interface and P in tcp, udp, sctp, icmp:
//!                                   table 27501 is `default dev TUN`
//! pref 4  iif lo lookup 27502       sent by the node: table 27502 holds each Service IP
//! pref 5  lookup local              moved here from pref 0, so that NodePorts and replies
//!                                   to masqueraded connections (to the node's own
//!                                   addresses) reach kubenat before local delivery
//! ```
//!
//! The tables are looked up, not walked: a miss in 27502 costs one FIB lookup however many
//! Services there are. A packet the node sends to a NodePort on its own address is not
//! steered (a later slice).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use kubenat_core::ClusterState;

/// Marks our rules and routes (`protocol 250`), so `--cleanup` and people can tell them apart.
pub const PROTOCOL: &str = "250";
/// `default dev TUN`: where packets arriving on the node's interfaces go.
pub const INTERFACES_TABLE: &str = "27501";
/// A route per Service address through the TUN: where the node's own packets to them go.
pub const SERVICES_TABLE: &str = "27502";
/// The preference the local table's rule moves to.
pub const LOCAL_PREF: &str = "5";

/// The IP protocols steered from the interfaces: those with ports, and ICMP (errors about
/// translated connections, echo requests to Service addresses). Only these: ARP resolves
/// the node's own addresses with an input route lookup of protocol 0, which must still find
/// the local table.
const STEERED: [&str; 4] = ["tcp", "udp", "sctp", "icmp"];

/// One `ip rule` of ours: what follows `ip rule add` (or `del`).
pub fn rules(tun: &str, interfaces: &[String]) -> Vec<Vec<String>> {
    let mut rules = vec![
        rule("1", &["iif", tun], "local"),
        rule("2", &["iif", tun], "main"),
    ];
    for interface in interfaces {
        rules.extend(STEERED.iter().map(|protocol| {
            rule(
                "3",
                &["iif", interface, "ipproto", protocol],
                INTERFACES_TABLE,
            )
        }));
    }
    rules.push(rule("4", &["iif", "lo"], SERVICES_TABLE));
    rules.push(rule(LOCAL_PREF, &[], "local"));
    rules
}

fn rule(pref: &str, selector: &[&str], table: &str) -> Vec<String> {
    let mut args = vec!["pref", pref];
    args.extend_from_slice(selector);
    args.extend_from_slice(&["lookup", table, "protocol", PROTOCOL]);
    args.into_iter().map(str::to_string).collect()
}

/// The `ip -batch` lines that fill both tables.
pub fn routes(tun: &str, services: &BTreeSet<Ipv4Addr>) -> Vec<String> {
    let mut routes = vec![format!(
        "route add default dev {tun} table {INTERFACES_TABLE} proto {PROTOCOL}"
    )];
    routes.extend(service_routes(tun, services));
    routes
}

/// The `ip -batch` lines that send the node's own packets to `services` into the TUN.
pub fn service_routes(tun: &str, services: &BTreeSet<Ipv4Addr>) -> Vec<String> {
    services
        .iter()
        .map(|address| {
            format!("route add {address}/32 dev {tun} table {SERVICES_TABLE} proto {PROTOCOL}")
        })
        .collect()
}

/// Every IPv4 address a Service answers on: cluster IPs, external IPs, load-balancer IPs.
pub fn service_addresses(state: &ClusterState) -> BTreeSet<Ipv4Addr> {
    state
        .services
        .iter()
        .flat_map(|s| {
            s.cluster_ips
                .iter()
                .chain(&s.external_ips)
                .chain(&s.load_balancer_ips)
        })
        .filter_map(|address| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_back_packets_skip_the_tun_and_local_comes_last() {
        let rules = rules("kn42", &["eth0".into()]);
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
    }

    #[test]
    fn one_route_per_service_address() {
        let services =
            BTreeSet::from([Ipv4Addr::new(10, 10, 1, 102), Ipv4Addr::new(10, 10, 1, 10)]);
        assert_eq!(
            routes("kn42", &services),
            [
                "route add default dev kn42 table 27501 proto 250",
                "route add 10.10.1.10/32 dev kn42 table 27502 proto 250",
                "route add 10.10.1.102/32 dev kn42 table 27502 proto 250",
            ]
        );
    }
}
