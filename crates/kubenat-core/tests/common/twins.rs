//! IPv6 twins of the IPv4 addresses the tests use, and dual-stack copies of IPv4 clusters.
//! kube-proxy runs one independent proxier per family with identical logic, so an IPv4
//! expectation carries over to the twin address for address.

use std::net::IpAddr;

use kubenat_core::{ClusterState, Endpoint, EndpointSlice, IpNet};

/// The IPv6 twin of an IPv4 address, `ip:port` or CIDR used in these tests. Octets map to
/// groups so that prefixes keep their meaning: 10.b.c.d -> fd10:b:c::d,
/// 192.168.c.d -> fd00:192:168:c::d, 172.16.c.d -> fd00:172:16:c::d,
/// 203.0.113.d -> 2001:db8:113::d, 198.51.100.d -> 2001:db8:100::d, 127.0.0.1 -> ::1.
pub fn v6(s: &str) -> String {
    if let Some((ip, len)) = s.split_once('/') {
        let len: usize = len.parse().expect("prefix length");
        assert_eq!(len % 8, 0, "only octet-aligned prefixes have twins: {s}");
        let (addr, groups) = v6_addr(ip);
        let bits = match len / 8 {
            0 => 0,
            4 => 128,
            k => 16 * groups[k - 1],
        };
        return format!("{addr}/{bits}");
    }
    if let Some((ip, port)) = s.split_once(':') {
        return format!("[{}]:{port}", v6_addr(ip).0);
    }
    v6_addr(s).0
}

/// The twin address and, per IPv4 octet, the last IPv6 group that octet's prefix covers.
pub fn v6_addr(ip: &str) -> (String, [usize; 4]) {
    let o: Vec<u8> = ip
        .split('.')
        .map(|x| x.parse().expect("IPv4 octet"))
        .collect();
    match o[..] {
        [10, b, c, d] => (format!("fd10:{b}:{c}::{d}"), [1, 2, 3, 8]),
        [192, 168, c, d] => (format!("fd00:192:168:{c}::{d}"), [3, 3, 4, 8]),
        [172, 16, c, d] => (format!("fd00:172:16:{c}::{d}"), [3, 3, 4, 8]),
        [203, 0, 113, d] => (format!("2001:db8:113::{d}"), [3, 3, 3, 8]),
        [198, 51, 100, d] => (format!("2001:db8:100::{d}"), [3, 3, 3, 8]),
        [127, 0, 0, 1] => ("::1".to_string(), [8; 4]),
        [0, 0, 0, 0] => ("::".to_string(), [0; 4]),
        _ => panic!("no IPv6 twin for {ip}"),
    }
}

pub fn twin_ip(ip: &IpAddr) -> IpAddr {
    v6(&ip.to_string()).parse().expect("twin address")
}

pub fn twin_net(net: &IpNet) -> IpNet {
    v6(&net.to_string()).parse().expect("twin CIDR")
}

/// A dual-stack copy of an IPv4 cluster: every address, CIDR, ClusterIP, external IP,
/// load-balancer IP and source range gets its IPv6 twin; every EndpointSlice gets an
/// IPv6 sibling slice (slices are single-family in Kubernetes).
pub fn dual_stack(mut state: ClusterState) -> ClusterState {
    let p = &mut state.proxy;
    add_twins(&mut p.node_ips, twin_ip);
    add_twins(&mut p.cluster_cidrs, twin_net);
    add_twins(&mut p.service_cidrs, twin_net);
    add_twins(&mut p.node_port_addresses, twin_net);
    for node in &mut state.nodes {
        add_twins(&mut node.addresses, twin_ip);
    }
    for svc in &mut state.services {
        add_twins(&mut svc.cluster_ips, twin_ip);
        add_twins(&mut svc.external_ips, twin_ip);
        add_twins(&mut svc.load_balancer_ips, twin_ip);
        add_twins(&mut svc.load_balancer_source_ranges, twin_net);
    }
    add_twins(&mut state.endpoint_slices, twin_slice);
    state
}

/// Appends the twin of every item of `list`, after the originals.
fn add_twins<T>(list: &mut Vec<T>, twin: fn(&T) -> T) {
    let twins: Vec<T> = list.iter().map(twin).collect();
    list.extend(twins);
}

/// The IPv6 sibling of an IPv4 EndpointSlice: `<name>-v6`, every endpoint at its twin.
fn twin_slice(slice: &EndpointSlice) -> EndpointSlice {
    EndpointSlice {
        name: format!("{}-v6", slice.name),
        endpoints: slice
            .endpoints
            .iter()
            .map(|ep| Endpoint {
                addresses: ep.addresses.iter().map(twin_ip).collect(),
                ..ep.clone()
            })
            .collect(),
        ..slice.clone()
    }
}
