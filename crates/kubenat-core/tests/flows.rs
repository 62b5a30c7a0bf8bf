//! Packet-flow tables in the style of kube-proxy's `runPacketFlowTests`
//! (pkg/proxy/nftables/helpers_test.go): each row is a new connection
//! (source, protocol, destination, port) and the verdict kube-proxy's rules give it —
//! the set of endpoints it may be DNATed to and whether it is masqueraded, or why it is
//! dropped / rejected, or that kube-proxy leaves it alone.
//!
//! Every row written with IPv4 addresses also runs as its IPv6 twin on a dual-stack copy
//! of the same cluster (see [`v6`]): kube-proxy runs one independent proxier per family
//! with identical logic, so the expectations carry over address for address.
//!
//! The runner sends many new flows per row (distinct source ports) and checks that every
//! chosen endpoint is in the row's set and that together they cover the whole set, checks
//! masquerade through both the rewritten source and the engine's trace, verifies all
//! checksums with etherparse, and sends a reply to check the reverse translation.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use common::{assert_checksums, endpoints, tcp, udp};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use kubenat_core::reference;
use kubenat_core::trace::Selection;
use kubenat_core::{
    ClusterState, DropReason, Endpoint, EndpointConditions, EndpointPort, EndpointSelection,
    EndpointSlice, Engine, Flow, Hook, Instant, IpNet, Node, Path, Protocol, ProxyConfig,
    ProxyMode, RejectReason, Service, ServiceName, ServicePort, ServiceType, SessionAffinity,
    TargetPort, TraceStep, TrafficPolicy, Verdict,
};

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

/// Whether the source is rewritten to the node's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Masq {
    No,
    Yes,
    /// Only when the flow is balanced back to the pod that sent it (hairpin).
    Hairpin,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// kube-proxy has no rule for it: Accept, packet byte-for-byte unchanged.
    Untouched,
    /// DNAT to one of these `ip:port` endpoints (all of them over enough new flows).
    To(&'static [&'static str], Masq),
    Drop(DropReason),
    Reject(RejectReason),
}

/// Which families a row runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fam {
    /// As written (IPv4) and as its IPv6 twin on dual-stack states.
    Both,
    /// Only as written (IPv4-only behaviour such as localhost NodePorts, or literal IPv6).
    AsWritten,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    /// The kube-proxy behaviour the row checks.
    name: &'static str,
    path: Path,
    /// An address, or `NODE` / `OTHER` for this node's / another node's address.
    src: &'static str,
    proto: Protocol,
    dst: &'static str,
    dport: u16,
    expect: Expect,
    fam: Fam,
}

/// Traffic arriving at the node (from a pod or from the network).
const fn fwd(
    name: &'static str,
    src: &'static str,
    dst: &'static str,
    dport: u16,
    expect: Expect,
) -> Row {
    Row {
        name,
        path: Path::Forward,
        src,
        proto: Protocol::Tcp,
        dst,
        dport,
        expect,
        fam: Fam::Both,
    }
}

/// Traffic the node itself sends.
const fn out(
    name: &'static str,
    src: &'static str,
    dst: &'static str,
    dport: u16,
    expect: Expect,
) -> Row {
    Row {
        path: Path::LocalOut,
        ..fwd(name, src, dst, dport, expect)
    }
}

impl Row {
    const fn udp(self) -> Row {
        Row {
            proto: Protocol::Udp,
            ..self
        }
    }

    const fn as_written(self) -> Row {
        Row {
            fam: Fam::AsWritten,
            ..self
        }
    }
}

const fn to(endpoints: &'static [&'static str], masq: Masq) -> Expect {
    Expect::To(endpoints, masq)
}

use Masq::{Hairpin, No, Yes};

const UNTOUCHED: Expect = Expect::Untouched;
const REJECT_NO_ENDPOINTS: Expect = Expect::Reject(RejectReason::NoEndpoints);
const REJECT_PORT: Expect = Expect::Reject(RejectReason::PortNotServed);
const DROP_UNALLOCATED: Expect = Expect::Drop(DropReason::UnallocatedServiceIp);
const DROP_NO_LOCAL: Expect = Expect::Drop(DropReason::NoLocalEndpoints);
const DROP_NO_LOCAL_INTERNAL: Expect = Expect::Drop(DropReason::NoLocalInternalEndpoints);
const DROP_RANGE: Expect = Expect::Drop(DropReason::SourceRangeDenied);

// ---------------------------------------------------------------------------------------
// IPv6 twins
// ---------------------------------------------------------------------------------------

/// The IPv6 twin of an IPv4 address, `ip:port` or CIDR used in these tests. Octets map to
/// groups so that prefixes keep their meaning: 10.b.c.d -> fd10:b:c::d,
/// 192.168.c.d -> fd00:192:168:c::d, 172.16.c.d -> fd00:172:16:c::d,
/// 203.0.113.d -> 2001:db8:113::d, 198.51.100.d -> 2001:db8:100::d, 127.0.0.1 -> ::1.
fn v6(s: &str) -> String {
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
fn v6_addr(ip: &str) -> (String, [usize; 4]) {
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

fn twin_ip(ip: &IpAddr) -> IpAddr {
    v6(&ip.to_string()).parse().expect("twin address")
}

fn twin_net(net: &IpNet) -> IpNet {
    v6(&net.to_string()).parse().expect("twin CIDR")
}

/// A dual-stack copy of an IPv4 cluster: every address, CIDR, ClusterIP, external IP,
/// load-balancer IP and source range gets its IPv6 twin; every EndpointSlice gets an
/// IPv6 sibling slice (slices are single-family in Kubernetes).
fn dual_stack(mut state: ClusterState) -> ClusterState {
    let p = &mut state.proxy;
    let twins: Vec<IpAddr> = p.node_ips.iter().map(twin_ip).collect();
    p.node_ips.extend(twins);
    let twins: Vec<IpNet> = p.cluster_cidrs.iter().map(twin_net).collect();
    p.cluster_cidrs.extend(twins);
    let twins: Vec<IpNet> = p.service_cidrs.iter().map(twin_net).collect();
    p.service_cidrs.extend(twins);
    let twins: Vec<IpNet> = p.node_port_addresses.iter().map(twin_net).collect();
    p.node_port_addresses.extend(twins);
    for node in &mut state.nodes {
        let twins: Vec<IpAddr> = node.addresses.iter().map(twin_ip).collect();
        node.addresses.extend(twins);
    }
    for svc in &mut state.services {
        let twins: Vec<IpAddr> = svc.cluster_ips.iter().map(twin_ip).collect();
        svc.cluster_ips.extend(twins);
        let twins: Vec<IpAddr> = svc.external_ips.iter().map(twin_ip).collect();
        svc.external_ips.extend(twins);
        let twins: Vec<IpAddr> = svc.load_balancer_ips.iter().map(twin_ip).collect();
        svc.load_balancer_ips.extend(twins);
        let twins: Vec<IpNet> = svc
            .load_balancer_source_ranges
            .iter()
            .map(twin_net)
            .collect();
        svc.load_balancer_source_ranges.extend(twins);
    }
    let twins: Vec<EndpointSlice> = state
        .endpoint_slices
        .iter()
        .map(|slice| EndpointSlice {
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
        })
        .collect();
    state.endpoint_slices.extend(twins);
    state
}

// ---------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------

/// New flows per DNAT row: enough for round robin and Maglev to show every endpoint.
const FLOWS_PER_DNAT_ROW: u16 = 24;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("CIDR")
}

/// Maps a row's (IPv4) address text into the family a variant runs in.
type AddressMap = fn(&str) -> String;

fn resolve<'a>(s: &'a str, node: &'a str, other: &'a str) -> &'a str {
    match s {
        "NODE" => node,
        "OTHER" => other,
        s => s,
    }
}

/// Runs `rows` on `state` (in both families when it is dual-stack); returns the failures.
fn run_table(
    label: &str,
    state: &ClusterState,
    node: &str,
    other: &str,
    rows: &[Row],
) -> Vec<String> {
    let dual = state.proxy.node_ips.iter().any(IpAddr::is_ipv6);
    let mut failures = Vec::new();
    for row in rows {
        let written_v6 = ip(resolve(row.src, node, other)).is_ipv6();
        let identity: AddressMap = |s| s.to_string();
        let mut variants: Vec<(&str, AddressMap)> = Vec::new();
        if !written_v6 || dual {
            variants.push((if written_v6 { "IPv6" } else { "IPv4" }, identity));
        }
        if row.fam == Fam::Both && dual && !written_v6 {
            variants.push(("IPv6", v6));
        }
        for (family, map) in variants {
            let resolved = |s: &str| map(resolve(s, node, other));
            if let Err(e) = run_row(state, row, &resolved) {
                failures.push(format!("[{label} {family}] {}: {e}", row.name));
            }
        }
    }
    failures
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn checksums(packet: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| assert_checksums(packet)))
        .map_err(|_| "bad checksum (see the panic message above)".to_string())
}

fn packet(proto: Protocol, source: SocketAddr, destination: SocketAddr, reply: bool) -> Vec<u8> {
    match (proto, reply) {
        (Protocol::Tcp, false) => tcp(source, destination, "syn", b"hello"),
        (Protocol::Tcp, true) => tcp(source, destination, "syn,ack", b"world"),
        (Protocol::Udp, false) => udp(source, destination, b"hello"),
        (Protocol::Udp, true) => udp(source, destination, b"world"),
        (Protocol::Sctp, _) => unreachable!("SCTP is covered elsewhere"),
    }
}

/// The address masquerade must produce: the node's address of the flow's family.
fn masquerade_address(state: &ClusterState, v6: bool) -> Option<IpAddr> {
    state
        .proxy
        .node_ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv6() == v6 && !ip.is_loopback())
}

fn run_row(state: &ClusterState, row: &Row, map: &dyn Fn(&str) -> String) -> Result<(), String> {
    let src_ip = ip(&map(row.src));
    let dst_ip = ip(&map(row.dst));
    let destination = SocketAddr::new(dst_ip, row.dport);
    let wanted: BTreeSet<SocketAddr> = match row.expect {
        Expect::To(eps, _) => eps
            .iter()
            .map(|e| map(e).parse().expect("endpoint"))
            .collect(),
        _ => BTreeSet::new(),
    };
    let flows = match row.expect {
        Expect::To(..) => FLOWS_PER_DNAT_ROW,
        _ => 3,
    };
    let now = Instant::from_secs(10);
    let mut engine = Engine::new(state);
    let mut seen = BTreeSet::new();
    for i in 0..flows {
        let source = SocketAddr::new(src_ip, 40_000 + i);
        let original = packet(row.proto, source, destination, false);
        let mut pkt = original.clone();
        let mut trace = Vec::new();
        let verdict = engine.process_path_traced(row.path, &mut pkt, now, &mut trace);
        let masqueraded = trace
            .iter()
            .any(|s| matches!(s, TraceStep::Masquerade { .. }));
        let flow = format!("flow {source} -> {destination}");
        match row.expect {
            Expect::Untouched => {
                check(verdict == Verdict::Accept, || {
                    format!("{flow}: want Accept, got {verdict:?}")
                })?;
                check(pkt == original, || {
                    format!("{flow}: accepted packet was modified")
                })?;
            }
            Expect::Drop(reason) => {
                check(verdict == Verdict::Drop(reason), || {
                    format!("{flow}: want Drop({reason:?}), got {verdict:?}")
                })?;
            }
            Expect::Reject(reason) => {
                check(verdict == Verdict::Reject(reason), || {
                    format!("{flow}: want Reject({reason:?}), got {verdict:?}")
                })?;
                check_reject_reply(&engine, &pkt, source).map_err(|e| format!("{flow}: {e}"))?;
            }
            Expect::To(_, masq) => {
                let Verdict::Translated(t) = verdict else {
                    return Err(format!("{flow}: want DNAT to {wanted:?}, got {verdict:?}"));
                };
                checksums(&pkt).map_err(|e| format!("{flow}: translated packet: {e}"))?;
                let (s, d) = endpoints(&pkt);
                check(wanted.contains(&d), || {
                    format!("{flow}: DNAT to {d}, not in {wanted:?}")
                })?;
                seen.insert(d);
                let want_masq = match masq {
                    Masq::Yes => true,
                    Masq::No => false,
                    Masq::Hairpin => d.ip() == src_ip,
                };
                check(masqueraded == want_masq, || {
                    format!("{flow} -> {d}: masquerade want {want_masq}, got {masqueraded}")
                })?;
                if want_masq {
                    let address = masquerade_address(state, src_ip.is_ipv6());
                    check(Some(s.ip()) == address, || {
                        format!("{flow}: masqueraded source {s}, want node address {address:?}")
                    })?;
                } else {
                    check(s == source, || {
                        format!("{flow}: source rewritten to {s} without masquerade")
                    })?;
                }
                let protocol = row.proto.ip_number();
                check(
                    t.before
                        == Flow {
                            protocol,
                            source,
                            destination,
                        }
                        && t.after
                            == Flow {
                                protocol,
                                source: s,
                                destination: d,
                            },
                    || format!("{flow}: translation {t:?} does not match the packet ({s} -> {d})"),
                )?;
                // The endpoint's answer comes back as the service's.
                let mut reply = packet(row.proto, d, s, true);
                let back = engine.process(Hook::Prerouting, &mut reply, now);
                check(matches!(back, Verdict::Translated(_)), || {
                    format!("{flow}: reply {d} -> {s}: {back:?}")
                })?;
                checksums(&reply).map_err(|e| format!("{flow}: reply: {e}"))?;
                let got = endpoints(&reply);
                check(got == (destination, source), || {
                    format!(
                        "{flow}: reply translated to {} -> {}, want {destination} -> {source}",
                        got.0, got.1
                    )
                })?;
            }
        }
    }
    if matches!(row.expect, Expect::To(..)) {
        check(seen == wanted, || {
            format!("{flows} new flows reached {seen:?}, want every one of {wanted:?}")
        })?;
    }
    Ok(())
}

/// The reject reply is an ICMP(v6) port unreachable to the original source, checksummed.
fn check_reject_reply(engine: &Engine, rejected: &[u8], source: SocketAddr) -> Result<(), String> {
    let mut out = vec![0u8; kubenat_core::reject::MAX_REPLY_LEN];
    let n = engine
        .write_reject_reply(rejected, &mut out)
        .map_err(|e| format!("reject reply: {e:?}"))?;
    let sliced =
        SlicedPacket::from_ip(&out[..n]).map_err(|e| format!("reject reply parses: {e:?}"))?;
    let (src, dst) = match sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        other => return Err(format!("reject reply is not IP: {other:?}")),
    };
    check(dst == source.ip(), || {
        format!("reject reply goes to {dst}, want {}", source.ip())
    })?;
    match sliced.transport {
        Some(TransportSlice::Icmpv4(icmp)) => {
            check(
                icmp.icmp_type()
                    == etherparse::Icmpv4Type::DestinationUnreachable(
                        etherparse::icmpv4::DestUnreachableHeader::Port,
                    ),
                || format!("reject reply type {:?}", icmp.icmp_type()),
            )?;
            check(
                icmp.icmp_type().calc_checksum(icmp.payload()) == icmp.checksum(),
                || "reject reply ICMP checksum".to_string(),
            )
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            check(
                icmp.icmp_type()
                    == etherparse::Icmpv6Type::DestinationUnreachable(
                        etherparse::icmpv6::DestUnreachableCode::Port,
                    ),
                || format!("reject reply type {:?}", icmp.icmp_type()),
            )?;
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                return Err("ICMPv6 over IPv4".to_string());
            };
            check(icmp.is_checksum_valid(s.octets(), d.octets()), || {
                "reject reply ICMPv6 checksum".to_string()
            })
        }
        other => Err(format!("reject reply is not ICMP: {other:?}")),
    }
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing row(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Table 1: the course notes' cluster, on every node
// ---------------------------------------------------------------------------------------

/// A pod that backs no Service.
const POD: &str = "10.10.0.50";
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

/// The engine's round robin rotates strictly: four new flows to wp-service alternate
/// between its two endpoints (kube-proxy draws at random; the engine documents rotation).
#[test]
fn wp_service_alternates_strictly_over_new_flows() {
    for (node, _) in reference::NODES {
        let state = dual_stack(reference::cluster(node));
        for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
            let mut engine = Engine::new(&state);
            let service: SocketAddr = map("10.10.1.102:8080").parse().unwrap();
            let both: BTreeSet<SocketAddr> = ["10.10.0.102:80", "10.10.0.112:80"]
                .iter()
                .map(|e| map(e).parse().unwrap())
                .collect();
            let chosen: Vec<SocketAddr> = (0..4)
                .map(|i| {
                    let source = SocketAddr::new(ip(&map(POD)), 50_000 + i);
                    let mut pkt = tcp(source, service, "syn", b"");
                    let verdict =
                        engine.process_path(Path::Forward, &mut pkt, Instant::from_secs(1));
                    assert!(
                        matches!(verdict, Verdict::Translated(_)),
                        "{node}: {verdict:?}"
                    );
                    assert_checksums(&pkt);
                    endpoints(&pkt).1
                })
                .collect();
            assert_ne!(
                chosen[0], chosen[1],
                "{node}: consecutive flows must alternate: {chosen:?}"
            );
            assert_eq!(chosen[0], chosen[2], "{node}: {chosen:?}");
            assert_eq!(chosen[1], chosen[3], "{node}: {chosen:?}");
            assert_eq!(
                chosen.iter().copied().collect::<BTreeSet<_>>(),
                both,
                "{node}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Table 2: policies, endpoints conditions, source ranges, external addresses
// ---------------------------------------------------------------------------------------

/// This node (node-a) and the other one (node-b).
const NODE_A: &str = "192.168.0.101";
const NODE_B: &str = "192.168.0.102";
/// Clients on the Internet; EXT is the one loadBalancerSourceRanges allow.
const EXT: &str = "203.0.113.7";
const EXT2: &str = "203.0.113.8";

#[derive(Clone, Copy)]
struct Ep {
    ip: &'static str,
    node: &'static str,
    ready: bool,
    serving: bool,
    terminating: bool,
}

const fn ready(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: true,
        serving: true,
        terminating: false,
    }
}

/// Terminating but still serving: used only when no ready endpoint exists.
const fn draining(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: true,
        terminating: true,
    }
}

/// Terminating and no longer serving: never used.
const fn gone(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: false,
        terminating: true,
    }
}

/// Not ready, not serving, not terminating (e.g. failing its readiness probe).
const fn unready(ip: &'static str, node: &'static str) -> Ep {
    Ep {
        ip,
        node,
        ready: false,
        serving: false,
        terminating: false,
    }
}

/// One single-port Service (TCP port 80 -> 8080 unless said otherwise).
#[derive(Clone, Copy)]
struct Svc {
    name: &'static str,
    kind: ServiceType,
    cluster_ip: &'static str,
    node_port: Option<u16>,
    external_ips: &'static [&'static str],
    lb_ips: &'static [&'static str],
    ranges: &'static [&'static str],
    etp: TrafficPolicy,
    itp: TrafficPolicy,
    affinity_secs: Option<u64>,
    endpoints: &'static [Ep],
}

const SVC: Svc = Svc {
    name: "",
    kind: ServiceType::ClusterIp,
    cluster_ip: "",
    node_port: None,
    external_ips: &[],
    lb_ips: &[],
    ranges: &[],
    etp: TrafficPolicy::Cluster,
    itp: TrafficPolicy::Cluster,
    affinity_secs: None,
    endpoints: &[],
};

const LOCAL: TrafficPolicy = TrafficPolicy::Local;
const LOAD_BALANCER: ServiceType = ServiceType::LoadBalancer;

/// Endpoints on node-a (local) and node-b (remote).
const A1: Ep = ready("10.10.0.11", "node-a");
const B1: Ep = ready("10.10.0.21", "node-b");
const B2: Ep = ready("10.10.0.22", "node-b");

#[rustfmt::skip]
const SERVICES: &[Svc] = &[
    Svc { name: "etp-local", kind: LOAD_BALANCER, cluster_ip: "10.10.1.11", node_port: Some(30011), lb_ips: &["198.51.100.11"], external_ips: &["198.51.100.111"], etp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "etp-local-remote", kind: LOAD_BALANCER, cluster_ip: "10.10.1.12", node_port: Some(30012), lb_ips: &["198.51.100.12"], external_ips: &["198.51.100.112"], etp: LOCAL, endpoints: &[B1, B2], ..SVC },
    Svc { name: "etp-cluster", kind: LOAD_BALANCER, cluster_ip: "10.10.1.13", node_port: Some(30013), lb_ips: &["198.51.100.13"], external_ips: &["198.51.100.113"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "itp-local", cluster_ip: "10.10.1.14", itp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "itp-local-remote", cluster_ip: "10.10.1.15", itp: LOCAL, endpoints: &[B1], ..SVC },
    Svc { name: "no-endpoints", kind: LOAD_BALANCER, cluster_ip: "10.10.1.16", node_port: Some(30016), lb_ips: &["198.51.100.16"], external_ips: &["198.51.100.116"], ..SVC },
    Svc { name: "source-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.17", node_port: Some(30017), lb_ips: &["198.51.100.17"], external_ips: &["198.51.100.117"], ranges: &["203.0.113.7/32"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "all-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.18", node_port: Some(30018), lb_ips: &["198.51.100.18"], ranges: &["0.0.0.0/0"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "ranges-with-node", kind: LOAD_BALANCER, cluster_ip: "10.10.1.19", node_port: Some(30019), lb_ips: &["198.51.100.19"], ranges: &["203.0.113.7/32", "192.168.0.101/32"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "hairpin", cluster_ip: "10.10.1.20", endpoints: &[A1], ..SVC },
    Svc { name: "ready-and-draining", cluster_ip: "10.10.1.21", endpoints: &[A1, draining("10.10.0.12", "node-a"), gone("10.10.0.13", "node-a")], ..SVC },
    Svc { name: "draining-only", cluster_ip: "10.10.1.22", endpoints: &[draining("10.10.0.12", "node-a"), gone("10.10.0.13", "node-a"), unready("10.10.0.14", "node-b")], ..SVC },
    Svc { name: "not-serving-only", cluster_ip: "10.10.1.23", endpoints: &[gone("10.10.0.13", "node-a"), unready("10.10.0.14", "node-b")], ..SVC },
    Svc { name: "external-ips", cluster_ip: "10.10.1.24", external_ips: &["198.51.100.124"], endpoints: &[A1, B1], ..SVC },
    Svc { name: "external-ips-local", cluster_ip: "10.10.1.25", external_ips: &["198.51.100.125"], etp: LOCAL, endpoints: &[A1, B1], ..SVC },
    Svc { name: "no-endpoints-ranges", kind: LOAD_BALANCER, cluster_ip: "10.10.1.26", node_port: Some(30026), lb_ips: &["198.51.100.26"], ranges: &["203.0.113.7/32"], ..SVC },
    Svc { name: "etp-local-draining", kind: LOAD_BALANCER, cluster_ip: "10.10.1.27", node_port: Some(30027), lb_ips: &["198.51.100.27"], etp: LOCAL, endpoints: &[draining("10.10.0.12", "node-a"), B1], ..SVC },
    Svc { name: "three-endpoints", cluster_ip: "10.10.1.31", endpoints: &[A1, B1, B2], ..SVC },
    Svc { name: "affinity", kind: ServiceType::NodePort, cluster_ip: "10.10.1.30", node_port: Some(30030), affinity_secs: Some(60), endpoints: &[A1, B1, B2], ..SVC },
];

/// node-a's view of [`SERVICES`], dual-stack, after `tweak` on the IPv4 settings.
fn custom_cluster(tweak: impl FnOnce(&mut ProxyConfig)) -> ClusterState {
    let mut state = ClusterState {
        proxy: ProxyConfig {
            node_name: "node-a".to_string(),
            node_ips: vec![ip(NODE_A)],
            cluster_cidrs: vec![net("10.10.0.0/24")],
            service_cidrs: vec![net("10.10.1.0/24")],
            ..ProxyConfig::default()
        },
        nodes: vec![
            Node {
                name: "node-a".to_string(),
                addresses: vec![ip(NODE_A)],
            },
            Node {
                name: "node-b".to_string(),
                addresses: vec![ip(NODE_B)],
            },
        ],
        ..ClusterState::default()
    };
    for svc in SERVICES {
        let name = ServiceName::new("default", svc.name);
        state.services.push(Service {
            name: name.clone(),
            service_type: svc.kind,
            cluster_ips: vec![ip(svc.cluster_ip)],
            ports: vec![ServicePort {
                name: "http".to_string(),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(8080),
                node_port: svc.node_port,
            }],
            external_ips: svc.external_ips.iter().map(|s| ip(s)).collect(),
            load_balancer_ips: svc.lb_ips.iter().map(|s| ip(s)).collect(),
            load_balancer_source_ranges: svc.ranges.iter().map(|s| net(s)).collect(),
            external_traffic_policy: svc.etp,
            internal_traffic_policy: svc.itp,
            session_affinity: match svc.affinity_secs {
                Some(secs) => SessionAffinity::ClientIp {
                    timeout: Duration::from_secs(secs),
                },
                None => SessionAffinity::None,
            },
        });
        state.endpoint_slices.push(EndpointSlice {
            name: format!("{}-x1", svc.name),
            service: name,
            ports: vec![EndpointPort {
                name: "http".to_string(),
                protocol: Protocol::Tcp,
                port: 8080,
            }],
            endpoints: svc
                .endpoints
                .iter()
                .map(|ep| Endpoint {
                    addresses: vec![ip(ep.ip)],
                    conditions: EndpointConditions {
                        ready: ep.ready,
                        serving: ep.serving,
                        terminating: ep.terminating,
                    },
                    node_name: Some(ep.node.to_string()),
                })
                .collect(),
        });
    }
    tweak(&mut state.proxy);
    dual_stack(state)
}

const BOTH_AB: &[&str] = &["10.10.0.11:8080", "10.10.0.21:8080"];
const ONLY_A: &[&str] = &["10.10.0.11:8080"];
const REMOTE_B: &[&str] = &["10.10.0.21:8080", "10.10.0.22:8080"];

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
    assert_no_failures(run_table(
        "node-a nftables",
        &state,
        NODE_A,
        NODE_B,
        POLICY_ROWS,
    ));
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
    assert_no_failures(run_table(
        "node-a masqueradeAll",
        &state,
        NODE_A,
        NODE_B,
        MASQUERADE_ALL_ROWS,
    ));
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
    assert_no_failures(run_table(
        "node-a iptables",
        &state,
        NODE_A,
        NODE_B,
        IPTABLES_ROWS,
    ));
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
    assert_no_failures(run_table(
        "node-a iptables",
        &state,
        NODE_A,
        NODE_B,
        NO_LOCALHOST_ROWS,
    ));
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
    assert_no_failures(run_table(
        "iptables nodePortAddresses",
        &state,
        NODE_A,
        NODE_B,
        IPTABLES_NODE_PORT_ADDRESS_ROWS,
    ));
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
    assert_no_failures(run_table(
        "no detector",
        &state,
        NODE_A,
        NODE_B,
        NO_DETECTOR_ROWS,
    ));
}

// ---------------------------------------------------------------------------------------
// Maglev
// ---------------------------------------------------------------------------------------

const MAGLEV: EndpointSelection = EndpointSelection::Maglev { table_size: 251 };

#[rustfmt::skip]
const MAGLEV_ROWS: &[Row] = &[
    fwd("Maglev: pod to ClusterIP lands in the endpoint set", POD, "10.10.1.13", 80, to(BOTH_AB, No)),
    fwd("Maglev: ETP Local external client picks among local endpoints only", EXT, "198.51.100.11", 80, to(ONLY_A, No)),
    fwd("Maglev: ETP Cluster NodePort, all endpoints, masqueraded", EXT, "NODE", 30013, to(BOTH_AB, Yes)),
    fwd("Maglev: three endpoints all reachable", POD, "10.10.1.31", 80, to(&["10.10.0.11:8080", "10.10.0.21:8080", "10.10.0.22:8080"], No)),
];

#[test]
fn maglev_selection() {
    let state = custom_cluster(|p| p.selection = MAGLEV);
    assert_no_failures(run_table("maglev", &state, NODE_A, NODE_B, MAGLEV_ROWS));
}

/// Maglev hashes the 5-tuple: the same flow picks the same endpoint on a fresh engine
/// built from the same state.
#[test]
fn maglev_same_five_tuple_same_endpoint_on_a_fresh_engine() {
    let state = custom_cluster(|p| p.selection = MAGLEV);
    for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
        let service: SocketAddr = map("10.10.1.31:80").parse().unwrap();
        let pick = |engine: &mut Engine, port: u16| {
            let source = SocketAddr::new(ip(&map(POD)), port);
            let mut pkt = tcp(source, service, "syn", b"");
            let verdict = engine.process_path(Path::Forward, &mut pkt, Instant::from_secs(1));
            assert!(matches!(verdict, Verdict::Translated(_)), "{verdict:?}");
            assert_checksums(&pkt);
            endpoints(&pkt).1
        };
        let mut first = Engine::new(&state);
        let a: Vec<SocketAddr> = (0..64).map(|i| pick(&mut first, 30_000 + i)).collect();
        // A fresh engine, flows in reverse order: the choice depends on the tuple only.
        let mut second = Engine::new(&state);
        let mut b: Vec<SocketAddr> = (0..64)
            .rev()
            .map(|i| pick(&mut second, 30_000 + i))
            .collect();
        b.reverse();
        assert_eq!(a, b);
        assert_eq!(
            a.iter().collect::<BTreeSet<_>>().len(),
            3,
            "64 tuples should reach all 3 endpoints: {a:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// sessionAffinity ClientIP
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Stick {
    /// A fresh choice (not from affinity).
    Fresh,
    /// A fresh choice that differs from step n (round robin moved on).
    FreshUnlike(usize),
    /// The endpoint of step n, remembered.
    SameAs(usize),
}

#[derive(Clone, Copy, Debug)]
struct Step {
    at_secs: u64,
    client: &'static str,
    /// The affinity service (timeout 60 s) through this frontend.
    dst: &'static str,
    dport: u16,
    stick: Stick,
}

const fn step(
    at_secs: u64,
    client: &'static str,
    dst: &'static str,
    dport: u16,
    stick: Stick,
) -> Step {
    Step {
        at_secs,
        client,
        dst,
        dport,
        stick,
    }
}

struct AffinityCase {
    name: &'static str,
    steps: &'static [Step],
    /// The fresh choices together cover every endpoint (clients spread).
    spread: bool,
}

const CIP: &str = "10.10.1.30";

const AFFINITY_CASES: &[AffinityCase] = &[
    AffinityCase {
        name: "same client keeps its endpoint over many new connections",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(2, EXT, CIP, 80, Stick::SameAs(0)),
            step(3, EXT, CIP, 80, Stick::SameAs(0)),
            step(4, EXT, CIP, 80, Stick::SameAs(0)),
            step(5, EXT, CIP, 80, Stick::SameAs(0)),
            step(6, EXT, CIP, 80, Stick::SameAs(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "different clients get fresh choices and spread over the endpoints",
        steps: &[
            step(1, "203.0.113.1", CIP, 80, Stick::Fresh),
            step(1, "203.0.113.2", CIP, 80, Stick::FreshUnlike(0)),
            step(1, "203.0.113.3", CIP, 80, Stick::Fresh),
            step(2, "203.0.113.1", CIP, 80, Stick::SameAs(0)),
            step(2, "203.0.113.2", CIP, 80, Stick::SameAs(1)),
            step(2, "203.0.113.3", CIP, 80, Stick::SameAs(2)),
        ],
        spread: true,
    },
    AffinityCase {
        name: "affinity is per service port, shared by ClusterIP and NodePort",
        steps: &[
            step(1, EXT, "NODE", 30030, Stick::Fresh),
            step(2, EXT, CIP, 80, Stick::SameAs(0)),
            step(3, EXT, "NODE", 30030, Stick::SameAs(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "after the timeout passes without a new connection, a new choice is made",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(62, EXT, CIP, 80, Stick::FreshUnlike(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "every new connection refreshes the timer",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(50, EXT, CIP, 80, Stick::SameAs(0)),
            step(100, EXT, CIP, 80, Stick::SameAs(0)),
            step(150, EXT, CIP, 80, Stick::SameAs(0)),
        ],
        spread: false,
    },
];

#[test]
fn session_affinity_client_ip() {
    let state = custom_cluster(|_| {});
    let all: BTreeSet<&str> = ["10.10.0.11:8080", "10.10.0.21:8080", "10.10.0.22:8080"].into();
    for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
        let all: BTreeSet<SocketAddr> = all.iter().map(|e| map(e).parse().unwrap()).collect();
        for case in AFFINITY_CASES {
            let mut engine = Engine::new(&state);
            let mut chosen: Vec<SocketAddr> = Vec::new();
            for (i, s) in case.steps.iter().enumerate() {
                let ctx = format!(
                    "{} (step {i}, {})",
                    case.name,
                    if map("10.0.0.1") == "10.0.0.1" {
                        "IPv4"
                    } else {
                        "IPv6"
                    }
                );
                let source = SocketAddr::new(ip(&map(s.client)), 20_000 + i as u16);
                let destination =
                    SocketAddr::new(ip(&map(resolve(s.dst, NODE_A, NODE_B))), s.dport);
                let mut pkt = tcp(source, destination, "syn", b"");
                let mut trace = Vec::new();
                let verdict = engine.process_path_traced(
                    Path::Forward,
                    &mut pkt,
                    Instant::from_secs(s.at_secs),
                    &mut trace,
                );
                assert!(
                    matches!(verdict, Verdict::Translated(_)),
                    "{ctx}: {verdict:?}"
                );
                assert_checksums(&pkt);
                let endpoint = endpoints(&pkt).1;
                assert!(all.contains(&endpoint), "{ctx}: {endpoint}");
                let by_affinity = trace.iter().any(|t| {
                    matches!(
                        t,
                        TraceStep::EndpointChosen {
                            selection: Selection::Affinity,
                            ..
                        }
                    )
                });
                match s.stick {
                    Stick::Fresh => assert!(!by_affinity, "{ctx}: expected a fresh choice"),
                    Stick::FreshUnlike(n) => {
                        assert!(!by_affinity, "{ctx}: expected a fresh choice");
                        assert_ne!(endpoint, chosen[n], "{ctx}");
                    }
                    Stick::SameAs(n) => {
                        assert!(by_affinity, "{ctx}: expected the remembered endpoint");
                        assert_eq!(endpoint, chosen[n], "{ctx}");
                    }
                }
                chosen.push(endpoint);
            }
            if case.spread {
                assert_eq!(
                    chosen.iter().copied().collect::<BTreeSet<_>>(),
                    all,
                    "{}",
                    case.name
                );
            }
        }
    }
}
