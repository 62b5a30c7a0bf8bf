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

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use kubenat_core::{
    ClusterState, DropReason, Engine, Hook, Instant, PacketMeta, Path, Protocol, RejectReason,
    TraceStep, Verdict,
};

use super::clusters::{NODE_A, NODE_B};
use super::ip;
use super::packets::{assert_checksums, endpoints, tcp, udp};
use super::twins::v6;

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

/// Whether the source is rewritten to the node's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masq {
    No,
    Yes,
    /// Only when the flow is balanced back to the pod that sent it (hairpin).
    Hairpin,
}

#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// kube-proxy has no rule for it: Accept, packet byte-for-byte unchanged.
    Untouched,
    /// DNAT to one of these `ip:port` endpoints (all of them over enough new flows).
    To(&'static [&'static str], Masq),
    Drop(DropReason),
    Reject(RejectReason),
}

/// Which families a row runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fam {
    /// As written (IPv4) and as its IPv6 twin on dual-stack states.
    Both,
    /// Only as written (IPv4-only behaviour such as localhost NodePorts, or literal IPv6).
    AsWritten,
}

#[derive(Clone, Copy, Debug)]
pub struct Row {
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
pub const fn fwd(
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
pub const fn out(
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
    pub const fn udp(self) -> Row {
        Row {
            proto: Protocol::Udp,
            ..self
        }
    }

    pub const fn as_written(self) -> Row {
        Row {
            fam: Fam::AsWritten,
            ..self
        }
    }
}

pub const fn to(endpoints: &'static [&'static str], masq: Masq) -> Expect {
    Expect::To(endpoints, masq)
}

pub const UNTOUCHED: Expect = Expect::Untouched;
pub const REJECT_NO_ENDPOINTS: Expect = Expect::Reject(RejectReason::NoEndpoints);
pub const REJECT_PORT: Expect = Expect::Reject(RejectReason::PortNotServed);
pub const DROP_UNALLOCATED: Expect = Expect::Drop(DropReason::UnallocatedServiceIp);
pub const DROP_NO_LOCAL: Expect = Expect::Drop(DropReason::NoLocalEndpoints);
pub const DROP_NO_LOCAL_INTERNAL: Expect = Expect::Drop(DropReason::NoLocalInternalEndpoints);
pub const DROP_RANGE: Expect = Expect::Drop(DropReason::SourceRangeDenied);

// ---------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------

/// New flows per DNAT row: enough for round robin and Maglev to show every endpoint.
pub const FLOWS_PER_DNAT_ROW: u16 = 24;

/// Maps a row's (IPv4) address text into the family a variant runs in.
pub type AddressMap = fn(&str) -> String;

pub fn resolve<'a>(s: &'a str, node: &'a str, other: &'a str) -> &'a str {
    match s {
        "NODE" => node,
        "OTHER" => other,
        s => s,
    }
}

/// Runs `rows` on `state` (in both families when it is dual-stack); returns the failures.
pub fn run_table(
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

pub fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

pub fn checksums(packet: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| assert_checksums(packet)))
        .map_err(|_| "bad checksum (see the panic message above)".to_string())
}

pub fn packet(
    proto: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    reply: bool,
) -> Vec<u8> {
    match (proto, reply) {
        (Protocol::Tcp, false) => tcp(source, destination, "syn", b"hello"),
        (Protocol::Tcp, true) => tcp(source, destination, "syn,ack", b"world"),
        (Protocol::Udp, false) => udp(source, destination, b"hello"),
        (Protocol::Udp, true) => udp(source, destination, b"world"),
        (Protocol::Sctp, _) => unreachable!("SCTP is covered elsewhere"),
    }
}

/// The address masquerade must produce: the node's address of the flow's family.
pub fn masquerade_address(state: &ClusterState, v6: bool) -> Option<IpAddr> {
    state
        .proxy
        .node_ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv6() == v6 && !ip.is_loopback())
}

pub fn run_row(
    state: &ClusterState,
    row: &Row,
    map: &dyn Fn(&str) -> String,
) -> Result<(), String> {
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
        let verdict = engine.process_path_traced(
            row.path,
            &mut pkt,
            &mut PacketMeta::default(),
            now,
            &mut trace,
        );
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
                check(
                    t.destination() == (d != destination) && t.source() == (s != source),
                    || format!("{flow}: rewrite {t:?} does not match the packet ({s} -> {d})"),
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
pub fn check_reject_reply(
    engine: &Engine,
    rejected: &[u8],
    source: SocketAddr,
) -> Result<(), String> {
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

pub fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing row(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs `rows` on node-a's view (this node node-a, the other node-b) and asserts they
/// all pass.
pub fn assert_rows_on_node_a(label: &str, state: &ClusterState, rows: &[Row]) {
    assert_no_failures(run_table(label, state, NODE_A, NODE_B, rows));
}
