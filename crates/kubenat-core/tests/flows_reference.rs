//! Packet-flow tables on the course notes' cluster (`kubenat_core::reference`), seen from
//! every node, in nftables and iptables mode.
//!
//! Each row is a new connection and the verdict kube-proxy's rules give it; the runner is
//! `common::flow_table`, and every IPv4 row also runs as its IPv6 twin on a dual-stack
//! copy of the cluster.

mod common;

use common::clusters::POD;
use common::flow_table::Masq::{Hairpin, No, Yes};
use common::flow_table::{
    DROP_UNALLOCATED, REJECT_PORT, Row, UNTOUCHED, assert_no_failures, fwd, out, run_table, to,
};
use common::twins::dual_stack;
use kubenat_core::{ProxyMode, reference};

/// The notes' PC and load balancer: off-cluster sources on the LAN.
const PC: &str = reference::PC;
const LB: &str = reference::LOAD_BALANCER;

#[rustfmt::skip]
const NOTES_ROWS: &[Row] = &[
    fwd("pod to mariadb ClusterIP: DNAT to its endpoint, pod source kept (no masquerade for pods)", POD, "10.10.1.101", 3307, to(&["10.10.0.103:3306"], No)),
    fwd("off-cluster client to mariadb ClusterIP: masqueraded (source outside clusterCIDR)", PC, "10.10.1.101", 3307, to(&["10.10.0.103:3306"], Yes)),
    out("node itself to mariadb ClusterIP: node address is not a pod, masqueraded", "NODE", "10.10.1.101", 3307, to(&["10.10.0.103:3306"], Yes)),
    fwd("pod to wp-service ClusterIP: both endpoints used", POD, "10.10.1.102", 8080, to(&["10.10.0.102:80", "10.10.0.112:80"], No)),
    fwd("wp pod to its own service: masqueraded only when balanced to itself (hairpin)", "10.10.0.102", "10.10.1.102", 8080, to(&["10.10.0.102:80", "10.10.0.112:80"], Hairpin)),
    fwd("pod to nginx ClusterIP", POD, "10.10.1.105", 8081, to(&["10.10.0.105:80"], No)),
    fwd("PC to nginx NodePort on this node: ETP Cluster masquerades to this node's IP", PC, "NODE", 30880, to(&["10.10.0.105:80"], Yes)),
    fwd("load balancer to nginx NodePort on this node: masqueraded", LB, "NODE", 30880, to(&["10.10.0.105:80"], Yes)),
    fwd("pod to nginx NodePort: external destination, masqueraded even from a pod", POD, "NODE", 30880, to(&["10.10.0.105:80"], Yes)),
    out("node itself to its own NodePort: masqueraded", "NODE", "NODE", 30880, to(&["10.10.0.105:80"], Yes)),
    fwd("NodePort on another node's IP: that node's kube-proxy answers, untouched here", PC, "OTHER", 30880, UNTOUCHED),
    fwd("kube-dns over UDP 53 from a pod", POD, "10.10.1.10", 53, to(&["10.10.0.10:53"], No)).udp(),
    fwd("kube-dns over TCP 53 from a pod", POD, "10.10.1.10", 53, to(&["10.10.0.10:53"], No)),
    out("kube-dns over UDP from the node itself: masqueraded", "NODE", "10.10.1.10", 53, to(&["10.10.0.10:53"], Yes)).udp(),
    fwd("pod IP destination: no kube-proxy rule, untouched", POD, "10.10.0.103", 3306, UNTOUCHED),
    fwd("node IP on a port that is no NodePort: untouched", PC, "NODE", 22, UNTOUCHED),
    fwd("LAN address outside every kube-proxy range: untouched", POD, PC, 80, UNTOUCHED),
    fwd("nftables: mariadb ClusterIP on the target port 3306 is rejected (cluster-ips-check)", POD, "10.10.1.101", 3306, REJECT_PORT),
    fwd("nftables: nginx ClusterIP over UDP (TCP-only port) is rejected", POD, "10.10.1.105", 8081, REJECT_PORT).udp(),
    fwd("nftables: NodePort number on the ClusterIP is not a service port, rejected", POD, "10.10.1.105", 30880, REJECT_PORT),
    fwd("nftables: unallocated 10.10.1.200 in the service CIDR is dropped", POD, "10.10.1.200", 3307, DROP_UNALLOCATED),
    fwd("nftables: unallocated service address from off-cluster is dropped too", PC, "10.10.1.200", 80, DROP_UNALLOCATED),
    out("nftables: no localhost NodePorts (never in nftables mode)", "127.0.0.1", "127.0.0.1", 30880, UNTOUCHED).as_written(),
    out("IPv6 has no localhost NodePorts", "::1", "::1", 30880, UNTOUCHED).as_written(),
];

#[rustfmt::skip]
const NOTES_IPTABLES_ROWS: &[Row] = &[
    fwd("iptables: pod to mariadb ClusterIP still DNATs", POD, "10.10.1.101", 3307, to(&["10.10.0.103:3306"], No)),
    fwd("iptables: PC to nginx NodePort masqueraded", PC, "NODE", 30880, to(&["10.10.0.105:80"], Yes)),
    fwd("iptables: mariadb ClusterIP on port 3306 is not kube-proxy's business (no cluster-ips reject)", POD, "10.10.1.101", 3306, UNTOUCHED),
    fwd("iptables: unallocated 10.10.1.200 passes untouched (no service CIDR drop)", POD, "10.10.1.200", 3307, UNTOUCHED),
    out("iptables: localhost NodePort from the node answers (localhostNodePorts), masqueraded", "127.0.0.1", "127.0.0.1", 30880, to(&["10.10.0.105:80"], Yes)).as_written(),
    out("iptables: IPv6 never has localhost NodePorts", "::1", "::1", 30880, UNTOUCHED).as_written(),
];

fn other_node(node: &str) -> &'static str {
    reference::NODES
        .iter()
        .find(|(name, _)| *name != node)
        .map(|(_, address)| *address)
        .expect("another node")
}

fn node_ip(node: &str) -> &'static str {
    reference::NODES
        .iter()
        .find(|(name, _)| *name == node)
        .map(|(_, address)| *address)
        .expect("known node")
}

#[test]
fn notes_cluster_on_every_node() {
    let mut failures = Vec::new();
    for (node, _) in reference::NODES {
        let plain = reference::cluster(node);
        let dual = dual_stack(plain.clone());
        for (label, state) in [("v4-only", &plain), ("dual-stack", &dual)] {
            let label = format!("{node} {label} nftables");
            failures.extend(run_table(
                &label,
                state,
                node_ip(node),
                other_node(node),
                NOTES_ROWS,
            ));
        }
    }
    assert_no_failures(failures);
}

#[test]
fn notes_cluster_iptables_mode() {
    let mut failures = Vec::new();
    for (node, _) in reference::NODES {
        let mut state = reference::cluster(node);
        state.proxy.mode = ProxyMode::Iptables;
        let dual = dual_stack(state.clone());
        for (label, state) in [("v4-only", &state), ("dual-stack", &dual)] {
            let label = format!("{node} {label} iptables");
            failures.extend(run_table(
                &label,
                state,
                node_ip(node),
                other_node(node),
                NOTES_IPTABLES_ROWS,
            ));
        }
    }
    assert_no_failures(failures);
}
