//! Packet-flow tables on node-a's view of a table of Services (`common::clusters`):
//! traffic policies, endpoint conditions, source ranges, external addresses, hairpin,
//! masqueradeAll, iptables mode, nodePortAddresses, and no local-traffic detector.
//!
//! Each row is a new connection and the verdict kube-proxy's rules give it; the runner is
//! `common::flow_table`, and every IPv4 row also runs as its IPv6 twin on a dual-stack
//! copy of the cluster.

mod common;

use common::clusters::{BOTH_AB, EXT, EXT2, NODE_A, NODE_B, ONLY_A, POD, REMOTE_B, custom_cluster};
use common::flow_table::Masq::{No, Yes};
use common::flow_table::{
    DROP_NO_LOCAL, DROP_NO_LOCAL_INTERNAL, DROP_RANGE, DROP_UNALLOCATED, REJECT_NO_ENDPOINTS,
    REJECT_PORT, Row, UNTOUCHED, assert_no_failures, assert_rows_on_node_a, fwd, out, run_table,
    to,
};
use common::{ip, net};
use kubenat_core::ProxyMode;

// ---------------------------------------------------------------------------------------
// Policies, endpoint conditions, source ranges, external addresses
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
const POLICY_ROWS: &[Row] = &[
    // externalTrafficPolicy Local, with a local endpoint.
    fwd("ETP Local, external client to LB IP: local endpoints only, source preserved", EXT, "198.51.100.11", 80, to(ONLY_A, No)),
    fwd("ETP Local, external client to NodePort: local endpoints only, source preserved", EXT, "NODE", 30011, to(ONLY_A, No)),
    fwd("ETP Local, external client to externalIP: local endpoints only, source preserved", EXT, "198.51.100.111", 80, to(ONLY_A, No)),
    fwd("ETP Local, pod to LB IP: short-circuit to all endpoints, no masquerade", POD, "198.51.100.11", 80, to(BOTH_AB, No)),
    fwd("ETP Local, pod to NodePort: short-circuit to all endpoints, no masquerade", POD, "NODE", 30011, to(BOTH_AB, No)),
    out("ETP Local, node itself to LB IP: all endpoints, masqueraded (fib saddr type local)", "NODE", "198.51.100.11", 80, to(BOTH_AB, Yes)),
    out("ETP Local, node itself to its NodePort: all endpoints, masqueraded", "NODE", "NODE", 30011, to(BOTH_AB, Yes)),
    fwd("ETP Local does not touch the ClusterIP: external client gets all endpoints, masqueraded", EXT, "10.10.1.11", 80, to(BOTH_AB, Yes)),
    fwd("ETP Local, pod to ClusterIP: all endpoints, no masquerade", POD, "10.10.1.11", 80, to(BOTH_AB, No)),
    // externalTrafficPolicy Local, no local endpoint.
    fwd("ETP Local without local endpoints: external client to LB IP dropped", EXT, "198.51.100.12", 80, DROP_NO_LOCAL),
    fwd("ETP Local without local endpoints: external client to NodePort dropped", EXT, "NODE", 30012, DROP_NO_LOCAL),
    fwd("ETP Local without local endpoints: external client to externalIP dropped", EXT, "198.51.100.112", 80, DROP_NO_LOCAL),
    fwd("ETP Local without local endpoints: pod to LB IP still reaches remote endpoints, unmasqueraded", POD, "198.51.100.12", 80, to(REMOTE_B, No)),
    fwd("ETP Local without local endpoints: pod to NodePort reaches remote endpoints", POD, "NODE", 30012, to(REMOTE_B, No)),
    out("ETP Local without local endpoints: node to externalIP reaches remote endpoints, masqueraded", "NODE", "198.51.100.112", 80, to(REMOTE_B, Yes)),
    out("ETP Local without local endpoints: node to its NodePort reaches remote endpoints, masqueraded", "NODE", "NODE", 30012, to(REMOTE_B, Yes)),
    // Local fallback to serving+terminating endpoints is independent of the cluster set.
    fwd("ETP Local, only local endpoint draining: external client uses it (local fallback)", EXT, "198.51.100.27", 80, to(&["10.10.0.12:8080"], No)),
    fwd("ETP Local, local endpoint draining: pod uses the ready remote one (cluster set has one ready)", POD, "198.51.100.27", 80, to(&["10.10.0.21:8080"], No)),
    // externalTrafficPolicy Cluster.
    fwd("ETP Cluster, external client to LB IP: all endpoints, masqueraded", EXT, "198.51.100.13", 80, to(BOTH_AB, Yes)),
    fwd("ETP Cluster, external client to NodePort: all endpoints, masqueraded", EXT, "NODE", 30013, to(BOTH_AB, Yes)),
    fwd("ETP Cluster, external client to externalIP: masqueraded", EXT, "198.51.100.113", 80, to(BOTH_AB, Yes)),
    fwd("ETP Cluster, pod to LB IP: LB VIPs are external destinations, masqueraded even for pods", POD, "198.51.100.13", 80, to(BOTH_AB, Yes)),
    fwd("ETP Cluster, pod to ClusterIP: no masquerade", POD, "10.10.1.13", 80, to(BOTH_AB, No)),
    fwd("LB IP on a port the service lacks: no service-ips match, untouched", EXT, "198.51.100.13", 81, UNTOUCHED),
    fwd("NodePort over UDP when the service port is TCP: untouched", EXT, "NODE", 30013, UNTOUCHED).udp(),
    fwd("NodePort on another node's address: untouched", EXT, "OTHER", 30013, UNTOUCHED),
    // internalTrafficPolicy Local.
    fwd("ITP Local, pod to ClusterIP: node-local endpoints only", POD, "10.10.1.14", 80, to(ONLY_A, No)),
    out("ITP Local, node to ClusterIP: local endpoints, masqueraded", "NODE", "10.10.1.14", 80, to(ONLY_A, Yes)),
    fwd("ITP Local without local endpoints: pod traffic dropped", POD, "10.10.1.15", 80, DROP_NO_LOCAL_INTERNAL),
    out("ITP Local without local endpoints: node traffic dropped", "NODE", "10.10.1.15", 80, DROP_NO_LOCAL_INTERNAL),
    // No endpoints at all.
    fwd("no endpoints: pod to ClusterIP rejected", POD, "10.10.1.16", 80, REJECT_NO_ENDPOINTS),
    out("no endpoints: node to ClusterIP rejected", "NODE", "10.10.1.16", 80, REJECT_NO_ENDPOINTS),
    fwd("no endpoints: external client to NodePort rejected", EXT, "NODE", 30016, REJECT_NO_ENDPOINTS),
    fwd("no endpoints: external client to externalIP rejected", EXT, "198.51.100.116", 80, REJECT_NO_ENDPOINTS),
    fwd("no endpoints: external client to LB IP rejected", EXT, "198.51.100.16", 80, REJECT_NO_ENDPOINTS),
    // loadBalancerSourceRanges.
    fwd("source ranges: allowed client reaches the LB IP (ETP Cluster, masqueraded)", EXT, "198.51.100.17", 80, to(BOTH_AB, Yes)),
    fwd("source ranges: other client dropped at the LB IP", EXT2, "198.51.100.17", 80, DROP_RANGE),
    fwd("source ranges: a pod outside the ranges is dropped at the LB IP too", POD, "198.51.100.17", 80, DROP_RANGE),
    out("source ranges: the node outside the ranges is dropped (firewall-check on output)", "NODE", "198.51.100.17", 80, DROP_RANGE),
    fwd("source ranges do not apply to the NodePort", EXT2, "NODE", 30017, to(BOTH_AB, Yes)),
    fwd("source ranges do not apply to externalIPs", EXT2, "198.51.100.117", 80, to(BOTH_AB, Yes)),
    fwd("source ranges do not apply to the ClusterIP", EXT2, "10.10.1.17", 80, to(BOTH_AB, Yes)),
    fwd("a /0 source range allows every client", EXT2, "198.51.100.18", 80, to(BOTH_AB, Yes)),
    out("range holding the node IP: the node reaches the LB IP", "NODE", "198.51.100.19", 80, to(BOTH_AB, Yes)),
    fwd("range holding the node IP: the LB IP itself is an allowed source (allowFromNode)", "198.51.100.19", "198.51.100.19", 80, to(BOTH_AB, Yes)),
    fwd("range holding the node IP: other clients still dropped", EXT2, "198.51.100.19", 80, DROP_RANGE),
    fwd("nftables, no endpoints + ranges: denied client dropped before the reject (firewall is pre-DNAT)", EXT2, "198.51.100.26", 80, DROP_RANGE),
    fwd("nftables, no endpoints + ranges: allowed client rejected", EXT, "198.51.100.26", 80, REJECT_NO_ENDPOINTS),
    // Hairpin.
    fwd("hairpin: a pod reaching itself through its service is masqueraded", "10.10.0.11", "10.10.1.20", 80, to(ONLY_A, Yes)),
    fwd("no hairpin: another pod reaching the same endpoint is not masqueraded", POD, "10.10.1.20", 80, to(ONLY_A, No)),
    // Endpoint conditions.
    fwd("ready endpoint present: serving+terminating and not-serving endpoints get nothing", POD, "10.10.1.21", 80, to(ONLY_A, No)),
    fwd("no ready endpoint: serving+terminating endpoints take traffic, not-serving ones never", POD, "10.10.1.22", 80, to(&["10.10.0.12:8080"], No)),
    fwd("only not-serving endpoints: treated as no endpoints, rejected", POD, "10.10.1.23", 80, REJECT_NO_ENDPOINTS),
    // externalIPs.
    fwd("externalIP on a ClusterIP-type service, external client: masqueraded (ETP Cluster)", EXT, "198.51.100.124", 80, to(BOTH_AB, Yes)),
    fwd("externalIP, pod client: external destination, masqueraded", POD, "198.51.100.124", 80, to(BOTH_AB, Yes)),
    out("externalIP, node itself: externalIPs match on output too, masqueraded", "NODE", "198.51.100.124", 80, to(BOTH_AB, Yes)),
    fwd("externalIP on another port: untouched", EXT, "198.51.100.124", 443, UNTOUCHED),
    fwd("externalIP + ETP Local on a ClusterIP-type service (externally accessible): local only, source kept", EXT, "198.51.100.125", 80, to(ONLY_A, No)),
    fwd("externalIP + ETP Local: pod short-circuits to all endpoints", POD, "198.51.100.125", 80, to(BOTH_AB, No)),
    // nftables guards and localhost.
    fwd("nftables: ClusterIP on a port the service lacks rejected", POD, "10.10.1.13", 81, REJECT_PORT),
    fwd("nftables: unallocated service address dropped", EXT, "10.10.1.99", 80, DROP_UNALLOCATED),
    out("nftables: no localhost NodePorts", "127.0.0.1", "127.0.0.1", 30013, UNTOUCHED).as_written(),
];

#[test]
fn policies_and_endpoint_rules() {
    let state = custom_cluster(|_| {});
    assert_rows_on_node_a("node-a nftables", &state, POLICY_ROWS);
}

#[rustfmt::skip]
const MASQUERADE_ALL_ROWS: &[Row] = &[
    fwd("masqueradeAll: pod to ClusterIP masqueraded", POD, "10.10.1.13", 80, to(BOTH_AB, Yes)),
    fwd("masqueradeAll: pod to ITP Local ClusterIP masqueraded", POD, "10.10.1.14", 80, to(ONLY_A, Yes)),
    fwd("masqueradeAll marks ClusterIP traffic only: external client to ETP Local LB keeps its source", EXT, "198.51.100.11", 80, to(ONLY_A, No)),
    fwd("masqueradeAll marks ClusterIP traffic only: pod to ETP Local LB IP keeps its source", POD, "198.51.100.11", 80, to(BOTH_AB, No)),
    fwd("masqueradeAll: ETP Cluster NodePort still masqueraded", EXT, "NODE", 30013, to(BOTH_AB, Yes)),
];

#[test]
fn masquerade_all() {
    let state = custom_cluster(|p| p.masquerade_all = true);
    assert_rows_on_node_a("node-a masqueradeAll", &state, MASQUERADE_ALL_ROWS);
}

#[rustfmt::skip]
const IPTABLES_ROWS: &[Row] = &[
    fwd("iptables: ClusterIP on a port the service lacks is untouched", POD, "10.10.1.13", 81, UNTOUCHED),
    fwd("iptables: unallocated service address is untouched", POD, "10.10.1.99", 80, UNTOUCHED),
    fwd("iptables: source ranges with endpoints: denied client dropped", EXT2, "198.51.100.17", 80, DROP_RANGE),
    fwd("iptables: no endpoints + ranges: no firewall chain, even denied clients are rejected", EXT2, "198.51.100.26", 80, REJECT_NO_ENDPOINTS),
    fwd("iptables: ETP Local without local endpoints: external client dropped", EXT, "198.51.100.12", 80, DROP_NO_LOCAL),
    out("iptables: localhost NodePort from the node answers, masqueraded", "127.0.0.1", "127.0.0.1", 30013, to(BOTH_AB, Yes)).as_written(),
    out("iptables: ETP Local localhost NodePort: local source, all endpoints, masqueraded", "127.0.0.1", "127.0.0.1", 30011, to(BOTH_AB, Yes)).as_written(),
    out("iptables: no localhost NodePorts over IPv6", "::1", "::1", 30013, UNTOUCHED).as_written(),
];

#[test]
fn iptables_mode() {
    let state = custom_cluster(|p| p.mode = ProxyMode::Iptables);
    assert_rows_on_node_a("node-a iptables", &state, IPTABLES_ROWS);
}

const NO_LOCALHOST_ROWS: &[Row] = &[out(
    "iptables with localhostNodePorts=false: 127.0.0.1 NodePort untouched",
    "127.0.0.1",
    "127.0.0.1",
    30013,
    UNTOUCHED,
)
.as_written()];

#[test]
fn iptables_without_localhost_node_ports() {
    let state = custom_cluster(|p| {
        p.mode = ProxyMode::Iptables;
        p.localhost_node_ports = false;
    });
    assert_rows_on_node_a("node-a iptables", &state, NO_LOCALHOST_ROWS);
}

// ---------------------------------------------------------------------------------------
// nodePortAddresses
// ---------------------------------------------------------------------------------------

/// node-a's second address, on another network.
const NODE_A_2: &str = "172.16.0.101";

#[rustfmt::skip]
const NODE_PORT_ADDRESS_ROWS: &[Row] = &[
    fwd("nodePortAddresses: NodePort answers on the listed node address", EXT, NODE_A, 30013, to(BOTH_AB, Yes)),
    fwd("nodePortAddresses: NodePort ignored on an unlisted node address", EXT, NODE_A_2, 30013, UNTOUCHED),
    fwd("nodePortAddresses: ClusterIP unaffected", POD, "10.10.1.13", 80, to(BOTH_AB, No)),
    fwd("nodePortAddresses: LB IP unaffected", EXT, "198.51.100.13", 80, to(BOTH_AB, Yes)),
];

#[rustfmt::skip]
const NODE_PORT_CIDR_ROWS: &[Row] = &[
    fwd("nodePortAddresses as a CIDR: node address inside it answers", EXT, NODE_A_2, 30013, to(BOTH_AB, Yes)),
    fwd("nodePortAddresses as a CIDR: node address outside it ignored", EXT, NODE_A, 30013, UNTOUCHED),
];

#[test]
fn node_port_addresses() {
    let listed = custom_cluster(|p| {
        p.node_ips.push(ip(NODE_A_2));
        p.node_port_addresses = vec![net("192.168.0.101/32")];
    });
    let cidr = custom_cluster(|p| {
        p.node_ips.push(ip(NODE_A_2));
        p.node_port_addresses = vec![net("172.16.0.0/16")];
    });
    let mut failures = run_table(
        "nodePortAddresses /32",
        &listed,
        NODE_A,
        NODE_B,
        NODE_PORT_ADDRESS_ROWS,
    );
    failures.extend(run_table(
        "nodePortAddresses CIDR",
        &cidr,
        NODE_A,
        NODE_B,
        NODE_PORT_CIDR_ROWS,
    ));
    assert_no_failures(failures);
}

#[rustfmt::skip]
const IPTABLES_NODE_PORT_ADDRESS_ROWS: &[Row] = &[
    fwd("iptables + nodePortAddresses: listed address answers", EXT, NODE_A, 30013, to(BOTH_AB, Yes)),
    out(
        "iptables + explicit nodePortAddresses without 127.0.0.0/8: localhost NodePort untouched",
        "127.0.0.1",
        "127.0.0.1",
        30013,
        UNTOUCHED,
    )
    .as_written(),
];

/// kube-proxy's iptables proxier installs the catch-all `-m addrtype --dst-type LOCAL`
/// NodePort rule (which is what makes 127.0.0.1 work) only when nodePortAddresses is
/// match-all; with explicit nodePortAddresses it adds one `-d <ip>` rule per matching
/// node address, and 127.0.0.1 gets one only if a listed CIDR contains it
/// (pkg/proxy/iptables/proxier.go, "nodePortAddresses.MatchAll()" branch; the iptables
/// packet-flow test "pod to localhost doesn't work because localhost is not in
/// nodePortAddresses").
#[test]
fn iptables_node_port_addresses_exclude_localhost() {
    let state = custom_cluster(|p| {
        p.mode = ProxyMode::Iptables;
        p.node_port_addresses = vec![net("192.168.0.101/32")];
    });
    assert_rows_on_node_a(
        "iptables nodePortAddresses",
        &state,
        IPTABLES_NODE_PORT_ADDRESS_ROWS,
    );
}

// ---------------------------------------------------------------------------------------
// No local-traffic detector (no clusterCIDR) and no known ServiceCIDRs
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
const NO_DETECTOR_ROWS: &[Row] = &[
    fwd("no clusterCIDR (no local detector): off-cluster client to ClusterIP is not masqueraded", EXT, "10.10.1.13", 80, to(BOTH_AB, No)),
    fwd("no local detector: pod to ETP Local LB IP is not short-circuited, local endpoints only", POD, "198.51.100.11", 80, to(ONLY_A, No)),
    fwd("no local detector: pod to ETP Local LB IP without local endpoints is dropped", POD, "198.51.100.12", 80, DROP_NO_LOCAL),
    out("no local detector: node to ETP Local LB IP still all endpoints, masqueraded", "NODE", "198.51.100.11", 80, to(BOTH_AB, Yes)),
    fwd("no local detector: ETP Cluster still masquerades", EXT, "198.51.100.13", 80, to(BOTH_AB, Yes)),
    fwd("no ServiceCIDRs known: unallocated service address untouched", POD, "10.10.1.99", 80, UNTOUCHED),
    fwd("no ServiceCIDRs known: ClusterIP on a wrong port still rejected (cluster-ips set)", POD, "10.10.1.13", 81, REJECT_PORT),
];

#[test]
fn without_cluster_cidr_or_service_cidrs() {
    let state = custom_cluster(|p| {
        p.cluster_cidrs.clear();
        p.service_cidrs.clear();
    });
    assert_rows_on_node_a("no detector", &state, NO_DETECTOR_ROWS);
}
