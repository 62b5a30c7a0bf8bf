//! ICMP: the replies `reject` sends (port unreachable), ICMP errors about translated
//! connections (reverse translated, quote and all) or about unknown flows (untouched), and
//! echo requests.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use std::net::IpAddr;

use common::clusters::{NODE, NODE6, nodoa_dual_stack, slice_mut};
use common::packets::{echo_request, endpoints, tcp, udp};
use common::runner::{forward, forward_translated, secs, translated};
use common::{ip, sa};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use kubenat_core::{DropReason, Engine, ProxyMode, RejectReason, Verdict};

/// (name, client, service, error kind, router, quoted bytes of the post-NAT packet: None = all)
type IcmpErrorRow = (
    &'static str,
    &'static str,
    &'static str,
    IcmpError,
    &'static str,
    Option<usize>,
);

// ---------------------------------------------------------------------------------------
// Reject replies
// ---------------------------------------------------------------------------------------

#[test]
fn reject_replies_are_icmp_port_unreachable() {
    let mut state = nodoa_dual_stack();
    slice_mut(&mut state, "mariadb-service").endpoints.clear();
    state
        .endpoint_slices
        .iter_mut()
        .find(|s| s.name == "echo-v6")
        .unwrap()
        .endpoints
        .clear();
    // (name, packet, reason)
    let rows: Vec<(&str, Vec<u8>, RejectReason)> = vec![
        (
            "v4 tcp, no endpoints",
            tcp(sa("10.10.0.50:40000"), sa("10.10.1.101:3307"), "syn", b""),
            RejectReason::NoEndpoints,
        ),
        (
            "v4 udp, wrong port",
            udp(sa("10.10.0.50:40001"), sa("10.10.1.10:5353"), b"query"),
            RejectReason::PortNotServed,
        ),
        (
            "v4 tcp, wrong port",
            tcp(
                sa("192.168.0.200:40003"),
                sa("10.10.1.102:9999"),
                "syn",
                b"x",
            ),
            RejectReason::PortNotServed,
        ),
        (
            "v6 tcp, no endpoints",
            tcp(
                sa("[fd00:10::50]:40000"),
                sa("[fd00:10:1::120]:7000"),
                "syn",
                b"",
            ),
            RejectReason::NoEndpoints,
        ),
        (
            "v6 udp, no endpoints (NodePort)",
            udp(
                sa("[fd00:192::200]:40001"),
                sa("[fd00:192::101]:30991"),
                b"q",
            ),
            RejectReason::NoEndpoints,
        ),
        (
            "v6 udp, wrong port",
            udp(sa("[fd00:10::50]:40002"), sa("[fd00:10:1::120]:9"), b"q"),
            RejectReason::PortNotServed,
        ),
    ];
    let mut engine = Engine::new(&state);
    for (name, packet, reason) in rows {
        let original = packet.clone();
        let (verdict, out) = forward(&mut engine, packet, secs(0));
        assert_eq!(verdict, Verdict::Reject(reason), "{name}");
        assert_eq!(out, original, "{name}: a rejected packet is not rewritten");
        let mut reply = vec![0u8; kubenat_core::reject::MAX_REPLY_LEN];
        let len = engine.write_reject_reply(&out, &mut reply).expect("reply");
        let reply = &reply[..len];
        let (client, _) = endpoints(&original);
        let sliced = SlicedPacket::from_ip(reply).expect("reply parses");
        let net = sliced.net.clone().expect("ip");
        match (net, sliced.transport.expect("icmp")) {
            (NetSlice::Ipv4(v4), TransportSlice::Icmpv4(icmp)) => {
                let h = v4.header();
                assert_eq!(
                    IpAddr::V4(h.destination_addr()),
                    client.ip(),
                    "{name}: to the sender"
                );
                assert_eq!(
                    IpAddr::V4(h.source_addr()),
                    ip(NODE),
                    "{name}: from the node"
                );
                let header = h.to_header();
                assert_eq!(
                    header.header_checksum,
                    header.calc_header_checksum(),
                    "{name}"
                );
                assert_eq!(
                    (icmp.type_u8(), icmp.code_u8()),
                    (3, 3),
                    "{name}: port unreachable"
                );
                assert_eq!(
                    icmp.checksum(),
                    icmp.icmp_type().calc_checksum(icmp.payload()),
                    "{name}"
                );
                let quoted = icmp.payload();
                assert!(quoted.len() >= 28, "{name}: IP header and 8 bytes at least");
                assert_eq!(
                    quoted,
                    &original[..quoted.len()],
                    "{name}: quotes the packet"
                );
            }
            (NetSlice::Ipv6(v6), TransportSlice::Icmpv6(icmp)) => {
                let h = v6.header();
                assert_eq!(
                    IpAddr::V6(h.destination_addr()),
                    client.ip(),
                    "{name}: to the sender"
                );
                assert_eq!(
                    IpAddr::V6(h.source_addr()),
                    ip(NODE6),
                    "{name}: from the node"
                );
                assert_eq!(
                    (icmp.type_u8(), icmp.code_u8()),
                    (1, 4),
                    "{name}: port unreachable"
                );
                assert!(
                    icmp.is_checksum_valid(h.source(), h.destination()),
                    "{name}: checksum"
                );
                let quoted = icmp.payload();
                assert!(quoted.len() >= 48, "{name}");
                assert_eq!(
                    quoted,
                    &original[..quoted.len()],
                    "{name}: quotes the packet"
                );
            }
            (net, transport) => panic!("{name}: unexpected reply {net:?} {transport:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// ICMP errors about translated connections
// ---------------------------------------------------------------------------------------

enum IcmpError {
    FragmentationNeeded,
    TimeExceeded,
    PacketTooBig,
}

fn icmp_error(kind: &IcmpError, from: IpAddr, to: IpAddr, quote: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => {
            let builder = PacketBuilder::ipv4(f.octets(), t.octets(), 64);
            let icmp_type = match kind {
                IcmpError::FragmentationNeeded => etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                        next_hop_mtu: 1400,
                    },
                ),
                IcmpError::TimeExceeded => etherparse::Icmpv4Type::TimeExceeded(
                    etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
                ),
                IcmpError::PacketTooBig => panic!("v6 only"),
            };
            builder.icmpv4(icmp_type).write(&mut out, quote).unwrap();
        }
        (IpAddr::V6(f), IpAddr::V6(t)) => {
            let builder = PacketBuilder::ipv6(f.octets(), t.octets(), 64);
            let icmp_type = match kind {
                IcmpError::PacketTooBig => etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 },
                IcmpError::TimeExceeded => etherparse::Icmpv6Type::TimeExceeded(
                    etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
                ),
                IcmpError::FragmentationNeeded => panic!("v4 only"),
            };
            builder.icmpv6(icmp_type).write(&mut out, quote).unwrap();
        }
        _ => panic!("mixed families"),
    }
    out
}

/// (outer source, outer destination, ICMP payload) of an ICMP error, checksums verified.
fn read_icmp_error(packet: &[u8]) -> (IpAddr, IpAddr, Vec<u8>) {
    let sliced = SlicedPacket::from_ip(packet).expect("parses");
    match (
        sliced.net.clone().expect("ip"),
        sliced.transport.expect("icmp"),
    ) {
        (NetSlice::Ipv4(v4), TransportSlice::Icmpv4(icmp)) => {
            let h = v4.header();
            let header = h.to_header();
            assert_eq!(
                header.header_checksum,
                header.calc_header_checksum(),
                "outer IPv4 checksum"
            );
            assert_eq!(
                icmp.checksum(),
                icmp.icmp_type().calc_checksum(icmp.payload()),
                "ICMP checksum"
            );
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                icmp.payload().to_vec(),
            )
        }
        (NetSlice::Ipv6(v6), TransportSlice::Icmpv6(icmp)) => {
            let h = v6.header();
            assert!(
                icmp.is_checksum_valid(h.source(), h.destination()),
                "ICMPv6 checksum"
            );
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                icmp.payload().to_vec(),
            )
        }
        (net, transport) => panic!("not an ICMP error: {net:?} {transport:?}"),
    }
}

#[test]
fn icmp_errors_about_translated_connections_are_reverse_translated() {
    // (name, client, service, error kind, router, quoted bytes of the post-NAT packet: None = all)
    let rows: Vec<IcmpErrorRow> = vec![
        (
            "v4 NodePort+masq, frag needed, whole quote",
            "192.168.0.200:50000",
            "192.168.0.101:30880",
            IcmpError::FragmentationNeeded,
            "192.168.0.1",
            None,
        ),
        (
            "v4 NodePort+masq, time exceeded, IP+8 quote",
            "192.168.0.200:50001",
            "192.168.0.101:30880",
            IcmpError::TimeExceeded,
            "192.168.0.1",
            Some(28),
        ),
        (
            "v4 ClusterIP no masq, frag needed",
            "10.10.0.50:40000",
            "10.10.1.101:3307",
            IcmpError::FragmentationNeeded,
            "10.10.0.1",
            None,
        ),
        (
            "v4 ClusterIP udp, time exceeded",
            "10.10.0.50:40001",
            "10.10.1.10:53",
            IcmpError::TimeExceeded,
            "10.10.0.1",
            Some(28),
        ),
        (
            "v6 NodePort+masq, packet too big",
            "[fd00:192::200]:50000",
            "[fd00:192::101]:30990",
            IcmpError::PacketTooBig,
            "fd00:192::1",
            None,
        ),
        (
            "v6 ClusterIP no masq, packet too big",
            "[fd00:10::50]:40000",
            "[fd00:10:1::120]:7000",
            IcmpError::PacketTooBig,
            "fd00:10::1",
            None,
        ),
        (
            "v6 NodePort+masq, time exceeded, IP+8 quote",
            "[fd00:192::200]:50001",
            "[fd00:192::101]:30990",
            IcmpError::TimeExceeded,
            "fd00:192::1",
            Some(48),
        ),
    ];
    for (name, client, service, kind, router, quote_len) in rows {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let (client, service) = (sa(client), sa(service));
        let original = if name.contains("udp") {
            udp(client, service, b"some query bytes")
        } else {
            tcp(client, service, "syn", b"some payload bytes")
        };
        let (post_nat_src, _, post_nat) =
            forward_translated(&mut engine, original.clone(), secs(0));
        let quote_len = quote_len.unwrap_or(post_nat.len());
        // The router answers the packet's (post-NAT) source.
        let error = icmp_error(&kind, ip(router), post_nat_src.ip(), &post_nat[..quote_len]);
        let (verdict, out) = forward(&mut engine, error, secs(1));
        let t = translated(verdict);
        assert!(
            t.icmp_error(),
            "{name}: reported as an ICMP error translation"
        );
        let (outer_src, outer_dst, quoted) = read_icmp_error(&out);
        assert_eq!(
            outer_dst,
            client.ip(),
            "{name}: the error reaches the client"
        );
        // nf_nat_icmp_reply_translation: the outer header is made to look like a reply to
        // the client's packet, so it comes from the address the client used.
        assert_eq!(outer_src, service.ip(), "{name}: from the service address");
        assert_eq!(
            quoted,
            original[..quote_len],
            "{name}: the quote is the client's own packet"
        );
        assert_eq!(engine.connections(), 1, "{name}");
    }
}

#[test]
fn icmp_errors_about_unknown_flows_pass_untouched() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    // A tracked connection exists, to show the lookup is by flow, not by address.
    forward_translated(
        &mut engine,
        tcp(sa("10.10.0.50:40000"), sa("10.10.1.101:3307"), "syn", b""),
        secs(0),
    );
    let quotes = [
        (
            "pod to pod",
            tcp(sa("10.10.0.60:1234"), sa("10.10.0.70:80"), "syn", b""),
        ),
        (
            "same pods, other port",
            tcp(sa("10.10.0.50:40001"), sa("10.10.0.103:3306"), "syn", b""),
        ),
        (
            "to a service, never seen",
            udp(sa("10.10.0.50:40002"), sa("10.10.1.10:53"), b"q"),
        ),
    ];
    for (name, quoted) in quotes {
        let (src, _) = endpoints(&quoted);
        for kind in [IcmpError::FragmentationNeeded, IcmpError::TimeExceeded] {
            let error = icmp_error(&kind, ip("10.10.0.1"), src.ip(), &quoted);
            let copy = error.clone();
            let (verdict, out) = forward(&mut engine, error, secs(1));
            assert_eq!(verdict, Verdict::Accept, "{name}");
            assert_eq!(out, copy, "{name}: byte-identical");
        }
    }
    let quoted = tcp(sa("[fd00:10::60]:1234"), sa("[fd00:10::70]:80"), "syn", b"");
    let error = icmp_error(
        &IcmpError::PacketTooBig,
        ip("fd00:10::1"),
        ip("fd00:10::60"),
        &quoted,
    );
    let copy = error.clone();
    let (verdict, out) = forward(&mut engine, error, secs(1));
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(out, copy);
}

// ---------------------------------------------------------------------------------------
// ICMP echo
// ---------------------------------------------------------------------------------------

#[test]
fn icmp_errors_about_untranslated_connections_pass_untouched() {
    // Found by fuzzing: conntrack tracks flows no Service rule touched (so masquerade never
    // reuses their tuple); an ICMP error about one has nothing to translate and must leave
    // as it came, checksum included, as Linux only translates errors of NATed connections.
    let mut engine = Engine::new(&nodoa_dual_stack());
    let pod_to_pod = tcp(sa("10.10.0.60:1234"), sa("10.10.0.70:80"), "syn", b"");
    let (verdict, _) = forward(&mut engine, pod_to_pod.clone(), secs(0));
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(engine.connections(), 1, "the flow is tracked");
    for (direction, from, to, quoted) in [
        (
            "from the destination's side",
            "10.10.0.70",
            "10.10.0.60",
            pod_to_pod.clone(),
        ),
        (
            "from the source's side",
            "10.10.0.60",
            "10.10.0.70",
            tcp(sa("10.10.0.70:80"), sa("10.10.0.60:1234"), "syn,ack", b""),
        ),
    ] {
        for corrupt_checksum in [false, true] {
            let mut error = icmp_error(&IcmpError::TimeExceeded, ip(from), ip(to), &quoted);
            if corrupt_checksum {
                error[22] ^= 0xff;
            }
            let copy = error.clone();
            let (verdict, out) = forward(&mut engine, error, secs(1));
            // A wrong ICMP checksum makes the error INVALID to conntrack: dropped, as
            // kube-proxy's rules drop INVALID packets, and never translated.
            let expected = match corrupt_checksum {
                false => Verdict::Accept,
                true => Verdict::Drop(DropReason::TransportChecksum),
            };
            assert_eq!(verdict, expected, "{direction}");
            assert_eq!(out, copy, "{direction}: byte-identical");
        }
    }
}

#[test]
fn icmp_echo() {
    // (name, mode, source, destination, verdict)
    let rows: &[(&str, ProxyMode, &str, &str, Verdict)] = &[
        (
            "to a pod",
            ProxyMode::Nftables,
            "10.10.0.50",
            "10.10.0.103",
            Verdict::Accept,
        ),
        (
            "to a node",
            ProxyMode::Nftables,
            "192.168.0.200",
            NODE,
            Verdict::Accept,
        ),
        (
            "to a cluster IP, nftables",
            ProxyMode::Nftables,
            "10.10.0.50",
            "10.10.1.101",
            Verdict::Reject(RejectReason::PortNotServed),
        ),
        (
            "to an unallocated service IP, nftables",
            ProxyMode::Nftables,
            "10.10.0.50",
            "10.10.1.200",
            Verdict::Drop(DropReason::UnallocatedServiceIp),
        ),
        (
            "to a cluster IP, iptables",
            ProxyMode::Iptables,
            "10.10.0.50",
            "10.10.1.101",
            Verdict::Accept,
        ),
        (
            "v6 to a pod",
            ProxyMode::Nftables,
            "fd00:10::50",
            "fd00:10::120",
            Verdict::Accept,
        ),
        (
            "v6 to a cluster IP, nftables",
            ProxyMode::Nftables,
            "fd00:10::50",
            "fd00:10:1::120",
            Verdict::Reject(RejectReason::PortNotServed),
        ),
    ];
    for &(name, mode, src, dst, expected) in rows {
        let mut state = nodoa_dual_stack();
        state.proxy.mode = mode;
        let mut engine = Engine::new(&state);
        let packet = echo_request(src, dst);
        let copy = packet.clone();
        let (verdict, out) = forward(&mut engine, packet, secs(0));
        assert_eq!(verdict, expected, "{name}");
        assert_eq!(out, copy, "{name}: echo is never rewritten");
        if let Verdict::Reject(_) = verdict {
            let mut reply = vec![0u8; kubenat_core::reject::MAX_REPLY_LEN];
            let len = engine.write_reject_reply(&out, &mut reply).unwrap();
            let (_, to, quoted) = read_icmp_error(&reply[..len]);
            assert_eq!(to, ip(src), "{name}");
            assert_eq!(quoted, copy, "{name}");
        }
    }
}
