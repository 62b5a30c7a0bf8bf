//! The nftables export: a golden file for the reference cluster, kube-proxy's rule shapes
//! for the features the reference lacks, and `nft -c` (the kernel's own parser and
//! validator) on everything we render.

mod common;

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Protocol,
    ProxyConfig, ProxyMode, Service, ServiceName, ServicePort, ServiceType, SessionAffinity,
    TargetPort, TrafficPolicy,
};
use kubenat_core::{compile, reference};
use kubenat_nft::render;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("literal CIDR")
}

// ---------------------------------------------------------------------------------------
// (a) Golden file for the reference cluster.

#[test]
fn reference_cluster_matches_golden_file() {
    common::assert_golden("nodoa.nft", &render(&compile(&reference::cluster("nodoa"))));
}

#[test]
fn rendering_is_deterministic_whatever_the_input_order() {
    let state = rich_state(false, ProxyMode::Nftables);
    let mut reversed = state.clone();
    reversed.services.reverse();
    reversed.endpoint_slices.reverse();
    for slice in &mut reversed.endpoint_slices {
        slice.endpoints.reverse();
    }
    assert_eq!(render(&compile(&state)), render(&compile(&reversed)));
}

// ---------------------------------------------------------------------------------------
// A richer state: dual-stack, LoadBalancer with source ranges, ETP Local with and without
// local endpoints, session affinity, no-endpoint services, ITP Local, SCTP, unnamed port.

const NODE: &str = "node1";

struct Svc {
    ns: &'static str,
    name: &'static str,
    ty: ServiceType,
    cluster_ips: &'static [&'static str],
    /// (name, protocol, port, target, node port)
    ports: &'static [(&'static str, Protocol, u16, u16, Option<u16>)],
    external_ips: &'static [&'static str],
    lb_ips: &'static [&'static str],
    source_ranges: &'static [&'static str],
    etp_local: bool,
    itp_local: bool,
    affinity: Option<u64>,
    /// (address, node)
    endpoints: &'static [(&'static str, &'static str)],
}

const SVC: Svc = Svc {
    ns: "",
    name: "",
    ty: ServiceType::ClusterIp,
    cluster_ips: &[],
    ports: &[],
    external_ips: &[],
    lb_ips: &[],
    source_ranges: &[],
    etp_local: false,
    itp_local: false,
    affinity: None,
    endpoints: &[],
};

const RICH: &[Svc] = &[
    Svc {
        ns: "ns1",
        name: "web",
        cluster_ips: &["172.30.0.41", "fd00:172:30::41"],
        ports: &[
            ("http", Protocol::Tcp, 80, 8080, None),
            ("dns", Protocol::Udp, 53, 5353, None),
        ],
        endpoints: &[
            ("10.0.1.1", NODE),
            ("10.0.2.1", "node2"),
            ("fd00:10::1:1", NODE),
        ],
        ..SVC
    },
    Svc {
        ns: "ns2",
        name: "lb-local",
        ty: ServiceType::LoadBalancer,
        cluster_ips: &["172.30.0.42", "fd00:172:30::42"],
        ports: &[("https", Protocol::Tcp, 443, 8443, Some(30443))],
        external_ips: &["192.168.99.22"],
        lb_ips: &["1.2.3.4", "2001:db8::4"],
        // Holds the node address: the VIPs themselves are allowed too.
        source_ranges: &["203.0.113.0/25", "192.168.0.0/24", "2001:db8:1::/48"],
        etp_local: true,
        affinity: Some(10_800),
        endpoints: &[
            ("10.0.1.5", NODE),
            ("10.0.3.5", "node3"),
            ("fd00:10::1:5", NODE),
        ],
        ..SVC
    },
    Svc {
        ns: "ns3",
        name: "lb-remote-only",
        ty: ServiceType::LoadBalancer,
        cluster_ips: &["172.30.0.43"],
        ports: &[("http", Protocol::Tcp, 80, 80, Some(30080))],
        lb_ips: &["5.6.7.8"],
        source_ranges: &["198.51.100.0/24"],
        etp_local: true,
        endpoints: &[("10.0.3.6", "node3")],
        ..SVC
    },
    Svc {
        ns: "ns4",
        name: "empty",
        ty: ServiceType::NodePort,
        cluster_ips: &["172.30.0.44", "fd00:172:30::44"],
        ports: &[("http", Protocol::Tcp, 80, 80, Some(30081))],
        external_ips: &["192.168.99.33"],
        ..SVC
    },
    Svc {
        ns: "ns5",
        name: "itp-local",
        cluster_ips: &["172.30.0.45"],
        ports: &[("", Protocol::Sctp, 9000, 9000, None)],
        itp_local: true,
        affinity: Some(60),
        endpoints: &[("10.0.1.7", NODE), ("10.0.2.7", "node2")],
        ..SVC
    },
    Svc {
        ns: "ns6",
        name: "itp-local-remote",
        cluster_ips: &["172.30.0.46"],
        ports: &[("grpc", Protocol::Tcp, 50051, 50051, None)],
        itp_local: true,
        endpoints: &[("10.0.2.8", "node2")],
        affinity: Some(60),
        ..SVC
    },
    Svc {
        ns: "ns7",
        name: "lb-open",
        ty: ServiceType::LoadBalancer,
        cluster_ips: &["172.30.0.47"],
        ports: &[("http", Protocol::Tcp, 80, 80, Some(30082))],
        lb_ips: &["9.9.9.9"],
        // A /0 range allows everyone: no firewall.
        source_ranges: &["0.0.0.0/0"],
        endpoints: &[("10.0.2.9", "node2")],
        ..SVC
    },
];

fn rich_state(masquerade_all: bool, mode: ProxyMode) -> ClusterState {
    let mut state = ClusterState {
        proxy: ProxyConfig {
            node_name: NODE.to_string(),
            node_ips: vec![ip("192.168.0.2"), ip("fd00:192::2")],
            cluster_cidrs: vec![net("10.0.0.0/8"), net("fd00:10::/64")],
            service_cidrs: vec![net("172.30.0.0/16"), net("fd00:172:30::/112")],
            masquerade_all,
            mode,
            ..ProxyConfig::default()
        },
        ..ClusterState::default()
    };
    for s in RICH {
        let name = ServiceName::new(s.ns, s.name);
        state.services.push(Service {
            name: name.clone(),
            service_type: s.ty,
            cluster_ips: s.cluster_ips.iter().map(|a| ip(a)).collect(),
            ports: s
                .ports
                .iter()
                .map(|&(n, protocol, port, target, node_port)| ServicePort {
                    name: n.to_string(),
                    protocol,
                    port,
                    target_port: TargetPort::Number(target),
                    node_port,
                })
                .collect(),
            external_ips: s.external_ips.iter().map(|a| ip(a)).collect(),
            load_balancer_ips: s.lb_ips.iter().map(|a| ip(a)).collect(),
            load_balancer_source_ranges: s.source_ranges.iter().map(|r| net(r)).collect(),
            external_traffic_policy: if s.etp_local {
                TrafficPolicy::Local
            } else {
                TrafficPolicy::Cluster
            },
            internal_traffic_policy: if s.itp_local {
                TrafficPolicy::Local
            } else {
                TrafficPolicy::Cluster
            },
            session_affinity: match s.affinity {
                Some(secs) => SessionAffinity::ClientIp {
                    timeout: Duration::from_secs(secs),
                },
                None => SessionAffinity::None,
            },
        });
        state.endpoint_slices.push(EndpointSlice {
            name: format!("{}-1", s.name),
            service: name,
            ports: s
                .ports
                .iter()
                .map(|&(n, protocol, _, target, _)| EndpointPort {
                    name: n.to_string(),
                    protocol,
                    port: target,
                })
                .collect(),
            endpoints: s
                .endpoints
                .iter()
                .map(|&(a, node)| Endpoint {
                    addresses: vec![ip(a)],
                    conditions: EndpointConditions::default(),
                    node_name: Some(node.to_string()),
                })
                .collect(),
        });
    }
    state
}

/// The table of one family, from its `table <fam> kube-proxy {` line to its closing brace.
fn table_of<'a>(ruleset: &'a str, family: &str) -> &'a str {
    let open = format!("table {family} kube-proxy {{\n");
    let start = ruleset
        .find(&open)
        .unwrap_or_else(|| panic!("no `{open}` in:\n{ruleset}"));
    let end = ruleset[start..].find("\n}\n").expect("table closes") + start;
    &ruleset[start..end]
}

/// The rules of chain `name` (by prefix, ignoring the hash), as trimmed lines.
fn chain_rules<'a>(table: &'a str, prefix: &str, suffix: &str) -> Vec<&'a str> {
    let mut lines = table.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("chain ")
            .and_then(|l| l.strip_suffix(" {"))
        else {
            continue;
        };
        if name.starts_with(prefix) && name.ends_with(suffix) {
            return lines
                .map(str::trim)
                .take_while(|l| *l != "}")
                .collect::<Vec<_>>();
        }
    }
    panic!("no chain {prefix}…{suffix} in:\n{table}");
}

fn has_chain(table: &str, prefix: &str, suffix: &str) -> bool {
    table.lines().any(|l| {
        l.trim()
            .strip_prefix("chain ")
            .and_then(|l| l.strip_suffix(" {"))
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
    })
}

/// The element lines of set/map `name`.
fn elements<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    let set = format!("\tset {name} {{");
    let map = format!("\tmap {name} {{");
    let Some(start) = table.lines().position(|l| l == set || l == map) else {
        panic!("no set or map {name}");
    };
    table
        .lines()
        .skip(start + 1)
        .take_while(|l| *l != "\t}")
        .map(str::trim)
        .filter(|l| {
            !l.starts_with("type ")
                && !l.starts_with("flags ")
                && !l.starts_with("comment ")
                && !l.starts_with("elements")
                && *l != "}"
        })
        .map(|l| l.trim_end_matches(','))
        .collect()
}

/// Does the element for `key` in `map` carry `verdict`? (`None`: no element for `key`.)
fn map_verdict<'a>(table: &'a str, map: &str, key: &str) -> Option<&'a str> {
    elements(table, map).into_iter().find_map(|e| {
        let rest = e.strip_prefix(key)?;
        let rest = rest.trim_start();
        // `key comment "…" : verdict` or `key : verdict`
        let verdict = rest
            .rsplit_once(" : ")
            .map(|(_, v)| v)
            .or(rest.strip_prefix(": "))?;
        (rest.starts_with(':') || rest.starts_with("comment")).then_some(verdict)
    })
}

// ---------------------------------------------------------------------------------------
// Rule shapes, from kube-proxy's nftables proxier (pkg/proxy/nftables, proxier.go and the
// expected rulesets of proxier_test.go TestOverallNFTablesRules).

#[test]
fn dispatch_maps_follow_kube_proxy() {
    let rules = render(&compile(&rich_state(false, ProxyMode::Nftables)));
    let v4 = table_of(&rules, "ip");
    let v6 = table_of(&rules, "ip6");
    // (table, map, key, expected verdict prefix; None = no element). Reasoning per row:
    let rows: &[(&str, &str, &str, &str, Option<&str>)] = &[
        // ClusterIP with endpoints: goto the cluster policy chain.
        (
            "web v4",
            "service-ips",
            "172.30.0.41 . tcp . 80",
            "v4",
            Some("goto service-"),
        ),
        (
            "web v6",
            "service-ips",
            "fd00:172:30::41 . tcp . 80",
            "v6",
            Some("goto service-"),
        ),
        (
            "web udp",
            "service-ips",
            "172.30.0.41 . udp . 53",
            "v4",
            Some("goto service-"),
        ),
        // External destinations go to the EXT chain, even with no local endpoint (ETP Local
        // keeps the short-circuit rules for pods and the node).
        (
            "lb vip",
            "service-ips",
            "1.2.3.4 . tcp . 443",
            "v4",
            Some("goto external-"),
        ),
        (
            "lb vip v6",
            "service-ips",
            "2001:db8::4 . tcp . 443",
            "v6",
            Some("goto external-"),
        ),
        (
            "lb external ip",
            "service-ips",
            "192.168.99.22 . tcp . 443",
            "v4",
            Some("goto external-"),
        ),
        (
            "lb nodeport",
            "service-nodeports",
            "tcp . 30443",
            "v4",
            Some("goto external-"),
        ),
        (
            "lb nodeport v6",
            "service-nodeports",
            "tcp . 30443",
            "v6",
            Some("goto external-"),
        ),
        (
            "remote-only vip",
            "service-ips",
            "5.6.7.8 . tcp . 80",
            "v4",
            Some("goto external-"),
        ),
        // ETP Local without local endpoints: genuinely external traffic falls through the
        // EXT chain un-DNATed and is dropped post-DNAT.
        (
            "remote-only vip drop",
            "no-endpoint-services",
            "5.6.7.8 . tcp . 80",
            "v4",
            Some("drop"),
        ),
        (
            "remote-only nodeport drop",
            "no-endpoint-nodeports",
            "tcp . 30080",
            "v4",
            Some("drop"),
        ),
        (
            "remote-only cluster ip",
            "no-endpoint-services",
            "172.30.0.43 . tcp . 80",
            "v4",
            None,
        ),
        // ETP Local with a local endpoint: no drop entry.
        (
            "lb local vip",
            "no-endpoint-services",
            "1.2.3.4 . tcp . 443",
            "v4",
            None,
        ),
        // No endpoints at all: REJECT for every destination, no service-ips entry.
        (
            "empty cluster ip",
            "no-endpoint-services",
            "172.30.0.44 . tcp . 80",
            "v4",
            Some("goto reject-chain"),
        ),
        (
            "empty cluster ip v6",
            "no-endpoint-services",
            "fd00:172:30::44 . tcp . 80",
            "v6",
            Some("goto reject-chain"),
        ),
        (
            "empty external ip",
            "no-endpoint-services",
            "192.168.99.33 . tcp . 80",
            "v4",
            Some("goto reject-chain"),
        ),
        (
            "empty nodeport",
            "no-endpoint-nodeports",
            "tcp . 30081",
            "v4",
            Some("goto reject-chain"),
        ),
        (
            "empty not dispatched",
            "service-ips",
            "172.30.0.44 . tcp . 80",
            "v4",
            None,
        ),
        (
            "empty nodeport not dispatched",
            "service-nodeports",
            "tcp . 30081",
            "v4",
            None,
        ),
        // ITP Local: ClusterIP goes to the local chain; without a local endpoint, DROP.
        (
            "itp local",
            "service-ips",
            "172.30.0.45 . sctp . 9000",
            "v4",
            Some("goto local-"),
        ),
        (
            "itp local remote",
            "no-endpoint-services",
            "172.30.0.46 . tcp . 50051",
            "v4",
            Some("drop"),
        ),
        (
            "itp local remote not dispatched",
            "service-ips",
            "172.30.0.46 . tcp . 50051",
            "v4",
            None,
        ),
        // Source ranges: LB VIPs only, never NodePorts / external IPs; /0 means none.
        (
            "fw vip",
            "firewall-ips",
            "1.2.3.4 . tcp . 443",
            "v4",
            Some("goto firewall-"),
        ),
        (
            "fw vip v6",
            "firewall-ips",
            "2001:db8::4 . tcp . 443",
            "v6",
            Some("goto firewall-"),
        ),
        (
            "fw external ip",
            "firewall-ips",
            "192.168.99.22 . tcp . 443",
            "v4",
            None,
        ),
        (
            "fw remote-only",
            "firewall-ips",
            "5.6.7.8 . tcp . 80",
            "v4",
            Some("goto firewall-"),
        ),
        ("fw open", "firewall-ips", "9.9.9.9 . tcp . 80", "v4", None),
    ];
    for &(name, map, key, family, expected) in rows {
        let table = if family == "v4" { v4 } else { v6 };
        let got = map_verdict(table, map, key);
        match expected {
            Some(prefix) => assert!(
                got.is_some_and(|v| v.starts_with(prefix)),
                "{name}: {map}[{key}] = {got:?}, expected {prefix}…"
            ),
            None => assert_eq!(got, None, "{name}: {map}[{key}] should be absent"),
        }
    }
    // Every cluster IP is in cluster-ips, with endpoints or not.
    let cluster_ips = elements(v4, "cluster-ips");
    for a in [
        "172.30.0.41",
        "172.30.0.43",
        "172.30.0.44",
        "172.30.0.46",
        "172.30.0.47",
    ] {
        assert!(
            cluster_ips.contains(&a),
            "cluster-ips lacks {a}: {cluster_ips:?}"
        );
    }
    assert_eq!(elements(v4, "nodeport-ips"), ["192.168.0.2"]);
    assert_eq!(elements(v6, "nodeport-ips"), ["fd00:192::2"]);
}

#[test]
fn service_port_chains_follow_kube_proxy() {
    let rules = render(&compile(&rich_state(false, ProxyMode::Nftables)));
    let v4 = table_of(&rules, "ip");
    let v6 = table_of(&rules, "ip6");

    // Cluster chain: off-cluster sources to the ClusterIP are masqueraded, then numgen.
    let web = chain_rules(v4, "service-", "-ns1/web/tcp/http");
    assert_eq!(
        web[0],
        "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade"
    );
    assert!(web[1].starts_with("numgen random mod 2 vmap { 0 : goto endpoint-"));
    assert!(web[1].contains("-ns1/web/tcp/http__10.0.1.1/8080, 1 : goto endpoint-"));
    let web6 = chain_rules(v6, "service-", "-ns1/web/tcp/http");
    assert_eq!(
        web6[0],
        "ip6 daddr fd00:172:30::41 ip6 saddr != fd00:10::/64 jump mark-for-masquerade"
    );
    // Endpoint chain: hairpin masquerade, then DNAT to the target port.
    assert_eq!(
        chain_rules(v4, "endpoint-", "-ns1/web/tcp/http__10.0.2.1/8080"),
        [
            "ip saddr 10.0.2.1 jump mark-for-masquerade",
            "meta l4proto tcp dnat to 10.0.2.1:8080"
        ]
    );
    assert_eq!(
        chain_rules(v6, "endpoint-", "-ns1/web/tcp/http__fd00.10..1.1/8080"),
        [
            "ip6 saddr fd00:10::1:1 jump mark-for-masquerade",
            "meta l4proto tcp dnat to [fd00:10::1:1]:8080"
        ]
    );

    // ETP Local with a local endpoint: short-circuit pods and the node to the cluster
    // chain, the rest to the local chain.
    let ext = chain_rules(v4, "external-", "-ns2/lb-local/tcp/https");
    assert_eq!(ext.len(), 4, "{ext:#?}");
    assert!(ext[0].starts_with("ip saddr 10.0.0.0/8 goto service-"));
    assert!(ext[1].starts_with("fib saddr type local jump mark-for-masquerade"));
    assert!(ext[2].starts_with("fib saddr type local goto service-"));
    assert!(ext[3].starts_with("goto local-") && ext[3].ends_with("-ns2/lb-local/tcp/https"));
    // ETP Local with no local endpoint: no final goto, so external traffic falls through.
    let ext = chain_rules(v4, "external-", "-ns3/lb-remote-only/tcp/http");
    assert_eq!(ext.len(), 3, "{ext:#?}");
    assert!(!has_chain(v4, "local-", "-ns3/lb-remote-only/tcp/http"));
    // ETP Cluster: always masquerade, then the cluster chain.
    let ext = chain_rules(v4, "external-", "-ns7/lb-open/tcp/http");
    assert_eq!(ext[0], "jump mark-for-masquerade");
    assert!(ext[1].starts_with("goto service-"));
    // No endpoints: no service chains at all.
    assert!(!has_chain(v4, "service-", "-ns4/empty/tcp/http"));
    assert!(!has_chain(v4, "external-", "-ns4/empty/tcp/http"));

    // Firewall: drop sources outside the ranges; the node's range admits the VIP itself.
    assert_eq!(
        chain_rules(v4, "firewall-", "-ns2/lb-local/tcp/https"),
        ["ip saddr != { 203.0.113.0/25, 192.168.0.0/24, 1.2.3.4/32 } drop"]
    );
    assert_eq!(
        chain_rules(v6, "firewall-", "-ns2/lb-local/tcp/https"),
        ["ip6 saddr != { 2001:db8:1::/48 } drop"]
    );

    // Session affinity: per-endpoint sets, checked before numgen, refreshed before DNAT.
    let local = chain_rules(v4, "local-", "-ns2/lb-local/tcp/https");
    assert!(local[0].starts_with("ip saddr @affinity-") && local[0].contains(" goto endpoint-"));
    assert!(local[1].starts_with("numgen random mod 1 vmap"));
    let ep = chain_rules(v4, "endpoint-", "-ns2/lb-local/tcp/https__10.0.1.5/8443");
    assert_eq!(ep.len(), 3);
    assert!(
        ep[1].starts_with("update @affinity-")
            && ep[1].ends_with("-ns2/lb-local/tcp/https__10.0.1.5/8443 { ip saddr }")
    );
    assert!(v4.contains("\t\ttimeout 10800s\n"));
    assert!(v4.contains("\t\ttimeout 60s\n"));

    // ITP Local: the masquerade rule sits in the local chain; no cluster chain is built for
    // a service that is not externally accessible.
    let itp = chain_rules(v4, "local-", "-ns5/itp-local/sctp/");
    assert_eq!(
        itp[0],
        "ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade"
    );
    assert!(!has_chain(v4, "service-", "-ns5/itp-local/sctp/"));
    assert!(has_chain(
        v4,
        "endpoint-",
        "-ns5/itp-local/sctp/__10.0.1.7/9000"
    ));
    // Only reachable endpoints get chains: ITP Local, ClusterIP only, the remote endpoint
    // is used by no chain (kube-proxy's allReachableEndpoints).
    assert!(!has_chain(
        v4,
        "endpoint-",
        "-ns5/itp-local/sctp/__10.0.2.7/9000"
    ));
    assert!(!has_chain(
        v4,
        "endpoint-",
        "-ns6/itp-local-remote/tcp/grpc__10.0.2.8/50051"
    ));
    assert!(!v4.contains("-ns6/itp-local-remote/tcp/grpc__"));
}

#[test]
fn masquerade_all_and_modes() {
    let all = render(&compile(&rich_state(true, ProxyMode::Nftables)));
    let web = chain_rules(table_of(&all, "ip"), "service-", "-ns1/web/tcp/http");
    assert_eq!(web[0], "ip daddr 172.30.0.41 jump mark-for-masquerade");

    let nft = render(&compile(&rich_state(false, ProxyMode::Nftables)));
    let check = chain_rules(table_of(&nft, "ip"), "cluster-ips-check", "");
    assert_eq!(check.len(), 2);
    assert!(check[0].starts_with("ip daddr @cluster-ips reject"));
    assert!(check[1].starts_with("ip daddr { 172.30.0.0/16 } drop"));
    let check6 = chain_rules(table_of(&nft, "ip6"), "cluster-ips-check", "");
    assert!(check6[1].starts_with("ip6 daddr { fd00:172:30::/112 } drop"));

    // iptables mode: no wrong-port reject / unallocated drop; localhost NodePorts.
    let ipt = render(&compile(&rich_state(false, ProxyMode::Iptables)));
    let v4 = table_of(&ipt, "ip");
    assert!(chain_rules(v4, "cluster-ips-check", "").is_empty());
    assert!(
        !chain_rules(v4, "filter-forward", "")
            .iter()
            .any(|r| r.contains("cluster-ips-check"))
    );
    assert_eq!(elements(v4, "nodeport-ips"), ["192.168.0.2", "127.0.0.0/8"]);
    assert!(
        !elements(table_of(&ipt, "ip6"), "nodeport-ips")
            .iter()
            .any(|e| e.contains("::1"))
    );
}

#[test]
fn only_families_in_use_get_a_table() {
    let rules = render(&compile(&reference::cluster("nodoa")));
    assert!(rules.contains("table ip kube-proxy {\n"));
    assert!(!rules.contains("table ip6 kube-proxy"));
    let empty = render(&compile(&ClusterState::default()));
    assert!(empty.contains("table ip kube-proxy {\n"));
}

// ---------------------------------------------------------------------------------------
// (b) The kernel's opinion: `nft -c -f -` parses and validates without applying.

enum Nft {
    Ok,
    Rejected(String),
}

fn nft_check(ruleset: &str) -> std::io::Result<Nft> {
    let mut child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(if out.status.success() {
        Nft::Ok
    } else {
        Nft::Rejected(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

/// `true` when `nft -c` can be trusted here: it accepts a trivial table and rejects a jump
/// to a chain that does not exist (which only the kernel notices).
fn nft_usable() -> bool {
    let trivial = "table ip kubenat-probe {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n";
    match nft_check(trivial) {
        Err(e) => {
            eprintln!("skipping: cannot run `nft` ({e}); install nftables to check rulesets");
            return false;
        }
        Ok(Nft::Rejected(why)) => {
            eprintln!(
                "skipping: `nft -c` rejects even a trivial ruleset (no netlink / CAP_NET_ADMIN?): {why}"
            );
            return false;
        }
        Ok(Nft::Ok) => {}
    }
    let broken = "table ip kubenat-probe {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tjump no-such-chain\n\t}\n}\n";
    match nft_check(broken) {
        Ok(Nft::Rejected(_)) => true,
        other => panic!(
            "`nft -c` accepted a jump to a missing chain ({}): it cannot validate our rulesets",
            match other {
                Ok(_) => "exit 0".to_string(),
                Err(e) => e.to_string(),
            }
        ),
    }
}

#[test]
fn nft_accepts_rendered_rulesets() {
    if !nft_usable() {
        return;
    }
    let mut cases = vec![(
        "reference nodoa".to_string(),
        render(&compile(&reference::cluster("nodoa"))),
    )];
    for node in ["nodo1", "nodob", "nodoc"] {
        cases.push((
            format!("reference {node}"),
            render(&compile(&reference::cluster(node))),
        ));
    }
    for masquerade_all in [false, true] {
        for mode in [ProxyMode::Nftables, ProxyMode::Iptables] {
            cases.push((
                format!("rich masqueradeAll={masquerade_all} {mode:?}"),
                render(&compile(&rich_state(masquerade_all, mode))),
            ));
        }
    }
    // Without cluster CIDRs (no local detector) and without a node address.
    let mut bare = rich_state(false, ProxyMode::Nftables);
    bare.proxy.cluster_cidrs.clear();
    bare.proxy.service_cidrs.clear();
    bare.proxy.node_ips.clear();
    cases.push(("rich, no CIDRs".to_string(), render(&compile(&bare))));
    cases.push((
        "empty".to_string(),
        render(&compile(&ClusterState::default())),
    ));
    for (name, ruleset) in cases {
        match nft_check(&ruleset).expect("nft ran for the probe") {
            Nft::Ok => {}
            Nft::Rejected(why) => {
                panic!("nft -c rejects the {name} ruleset:\n{why}\n---\n{ruleset}")
            }
        }
    }
}
