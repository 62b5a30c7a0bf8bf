//! `kubenat_replay`: captures built here with pcap-file and etherparse, replayed through
//! the course notes' cluster seen from nodoa, and the output read back with pcap-file and
//! checked with etherparse (and tshark when it is installed), never with kubenat's code.
//!
//! Here: translated traffic (NodePort, ClusterIP), every link type and container, and a
//! rejected packet replaced by its reply.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    Ethernet2Header, Icmpv4Header, Icmpv4Slice, Icmpv4Type, IpNumber, Ipv4Slice,
    icmpv4::DestUnreachableHeader,
};
use kubenat_core::Path;
use pcap_file::{Endianness, TsResolution};

use common::capture::{
    Rec, pcap_header, read_out, rec, tmp, write_pcap, write_pcap_with, write_pcapng,
};
use common::checks::{checked_tcp, tshark_checksums, tshark_fields};
use common::packets::{Seg, arp, eth, eth_tagged, raw, seg, sll, sll2, syn, tcp};
use common::{CLIENT, NGINX_ENDPOINT, NODE_PORT, NODOA, T0, run, sa, verdicts};

// ---- (1) round trip ----------------------------------------------------------------------

/// A TCP handshake and an HTTP exchange between the notes' PC and nginx's NodePort on
/// nodoa, replayed as forwarded traffic: kube-proxy DNATs the NodePort to nginx's only
/// endpoint (10.10.0.105:80 on nodob) and, the client being outside the cluster and the
/// policy Cluster, masquerades it to nodoa's address; the endpoint's replies come back to
/// the masqueraded address and leave as from the NodePort to the PC.
#[test]
fn ethernet_round_trip_through_nodeport() {
    let client = sa(CLIENT);
    let node_port = sa(NODE_PORT);

    // Phase 1: the SYN alone shows where the node sends the connection.
    let input = tmp("rt-syn.pcap");
    let output = tmp("rt-syn-out.pcap");
    let first_syn = tcp(Seg {
        syn: true,
        ..seg(client, node_port, 1000, None)
    });
    write_pcap(&input, 1, &[rec(T0, eth(&first_syn))]);
    run(&input, &output, Path::Forward);
    let out = read_out(&output);
    assert_eq!(out.packets.len(), 1);
    let (masq, endpoint, _) = checked_tcp(&out.packets[0].1[14..]);
    assert_eq!(endpoint, sa(NGINX_ENDPOINT), "the NodePort leads to nginx");
    assert_eq!(
        masq.ip(),
        NODOA.parse::<IpAddr>().unwrap(),
        "masqueraded to nodoa"
    );

    // Phase 2: the whole conversation, replies built to the translated addresses.
    let request: &[u8] = b"GET / HTTP/1.1\r\nHost: web1.miempresa.com\r\n\r\n";
    let response: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    // (from the client?, segment)
    let conversation: Vec<(bool, Vec<u8>)> = vec![
        (true, first_syn.clone()),
        (
            false,
            tcp(Seg {
                syn: true,
                ..seg(endpoint, masq, 5000, Some(1001))
            }),
        ),
        (true, tcp(seg(client, node_port, 1001, Some(5001)))),
        (
            true,
            tcp(Seg {
                psh: true,
                payload: request,
                ..seg(client, node_port, 1001, Some(5001))
            }),
        ),
        (
            false,
            tcp(Seg {
                psh: true,
                payload: response,
                ..seg(endpoint, masq, 5001, Some(1001 + request.len() as u32))
            }),
        ),
        (
            true,
            tcp(seg(
                client,
                node_port,
                1001 + request.len() as u32,
                Some(5001 + response.len() as u32),
            )),
        ),
    ];
    let mut recs: Vec<Rec> = conversation
        .iter()
        .enumerate()
        .map(|(i, (_, ip))| rec(T0 + i as u64 * 1_000_000, eth(ip)))
        .collect();
    // A frame that is not IP passes unchanged.
    recs.insert(1, rec(T0 + 500_000, arp()));
    let input = tmp("rt.pcap");
    let output = tmp("rt-out.pcap");
    write_pcap(&input, 1, &recs);
    let summary = run(&input, &output, Path::Forward);
    assert_eq!(summary.packets, 7);
    assert_eq!(verdicts(&summary), [6, 1, 0, 0], "{summary:?}");
    assert!(summary.by_reason.is_empty());
    assert_eq!(summary.written, 7);

    let out = read_out(&output);
    assert_eq!(u32::from(out.header.datalink), 1);
    assert_eq!(out.header.snaplen, 65535);
    assert_eq!(out.packets.len(), 7);
    assert_eq!(out.packets[1].1, arp(), "ARP unchanged");
    let ip_out: Vec<_> = out
        .packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .collect();
    for ((i, (nanos, frame, orig)), (from_client, ip_in)) in ip_out.iter().zip(&conversation) {
        assert_eq!(*nanos, recs[*i].nanos, "timestamp of packet {i}");
        assert_eq!(*orig as usize, frame.len());
        assert_eq!(
            frame[..14],
            eth(ip_in)[..14],
            "Ethernet header of packet {i} kept"
        );
        let (src, dst, payload) = checked_tcp(&frame[14..]);
        let (_, _, payload_in) = checked_tcp(ip_in);
        assert_eq!(payload, payload_in, "payload of packet {i}");
        if *from_client {
            assert_eq!((src, dst), (masq, endpoint), "client packet {i}");
        } else {
            assert_eq!((src, dst), (node_port, client), "reply {i} back to the PC");
        }
    }
    tshark_checksums(&output);
}

/// The node's own traffic (`--path local-out`) to wp-service's ClusterIP goes to one of
/// its two endpoints; the summary serialises with the field names the CLI's JSON uses.
#[test]
fn local_out_to_a_cluster_ip() {
    let input = tmp("local-out.pcap");
    let output = tmp("local-out-out.pcap");
    write_pcap(
        &input,
        1,
        &[rec(
            T0,
            eth(&syn("192.168.0.101:50000", "10.10.1.102:8080")),
        )],
    );
    let summary = run(&input, &output, Path::LocalOut);
    assert_eq!(verdicts(&summary), [1, 0, 0, 0], "{summary:?}");
    let out = read_out(&output);
    let (_, dst, _) = checked_tcp(&out.packets[0].1[14..]);
    assert!(
        [sa("10.10.0.102:80"), sa("10.10.0.112:80")].contains(&dst),
        "wp-service endpoint, got {dst}"
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["packets"], 1);
    assert_eq!(json["by_verdict"]["translated"], 1);
    assert_eq!(json["by_verdict"]["drop"], 0);
    assert!(json["by_reason"].as_object().unwrap().is_empty());
    assert_eq!(json["written"], 1);
}

// ---- (2) link types and containers -------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Container {
    Pcap(TsResolution, Endianness),
    /// if_tsresol, section byte order
    PcapNg(Option<u8>, Endianness),
}

/// Every link type and container replay reads: the SYN to the NodePort comes out of the
/// same link type, with the same link header, translated, with the input's timestamp.
#[test]
fn link_types_and_containers() {
    use Container::*;
    use Endianness::{Big, Little};
    use TsResolution::{MicroSecond, NanoSecond};
    type Wrap = fn(&[u8]) -> Vec<u8>;
    let vlan: Wrap = |ip| eth_tagged(ip, &[0x8100]);
    let qinq: Wrap = |ip| eth_tagged(ip, &[0x88a8, 0x8100]);
    #[rustfmt::skip]
    let rows: &[(&str, Container, u32, Wrap, usize)] = &[
        // name,              container,                    link, frame, link header length
        ("ethernet pcap",     Pcap(NanoSecond, Little),     1,    eth,   14),
        ("ethernet pcap BE",  Pcap(MicroSecond, Big),       1,    eth,   14),
        ("802.1Q",            Pcap(MicroSecond, Little),    1,    vlan,  18),
        ("802.1ad + 802.1Q",  Pcap(NanoSecond, Little),     1,    qinq,  22),
        ("raw 101",           Pcap(MicroSecond, Little),    101,  raw,   0),
        ("raw ipv4 228",      Pcap(NanoSecond, Little),     228,  raw,   0),
        ("sll",               Pcap(MicroSecond, Little),    113,  sll,   16),
        ("sll2",              Pcap(NanoSecond, Big),        276,  sll2,  20),
        ("pcapng ethernet",   PcapNg(None, Little),         1,    eth,   14),
        ("pcapng ns BE",      PcapNg(Some(9), Big),         1,    vlan,  18),
        ("pcapng sll 2^-20",  PcapNg(Some(0x94), Little),   113,  sll,   16),
        ("pcapng sll2",       PcapNg(Some(9), Little),      276,  sll2,  20),
        ("pcapng raw",        PcapNg(None, Big),            101,  raw,   0),
    ];
    let ip = syn(CLIENT, NODE_PORT);
    for (i, &(name, container, link, wrap, header_len)) in rows.iter().enumerate() {
        // A time every resolution holds exactly (2^-20 s included).
        let nanos = T0 + 1_953_125 * 8;
        let frame = wrap(&ip);
        let input = tmp(&format!("link-{i}.in"));
        let output = tmp(&format!("link-{i}.pcap"));
        let recs = [rec(nanos, frame.clone())];
        match container {
            Pcap(res, end) => write_pcap_with(&input, pcap_header(link, res, end), &recs),
            PcapNg(tsresol, end) => write_pcapng(&input, link, tsresol, end, &recs),
        }
        let summary = run(&input, &output, Path::Forward);
        assert_eq!(verdicts(&summary), [1, 0, 0, 0], "{name}: {summary:?}");
        let out = read_out(&output);
        assert_eq!(u32::from(out.header.datalink), link, "{name}: link type");
        assert_eq!(out.header.snaplen, 65535, "{name}: snaplen");
        assert_eq!(out.packets.len(), 1, "{name}");
        let (t, bytes, _) = &out.packets[0];
        assert_eq!(*t, nanos, "{name}: timestamp");
        assert_eq!(bytes.len(), frame.len(), "{name}: length");
        assert_eq!(
            bytes[..header_len],
            frame[..header_len],
            "{name}: link header kept"
        );
        if link == 1 {
            Ethernet2Header::from_slice(bytes).expect("Ethernet parses");
        }
        if link == 113 {
            etherparse::LinuxSllHeader::from_slice(bytes).expect("SLL parses");
        }
        let (src, dst, _) = checked_tcp(&bytes[header_len..]);
        assert_eq!(
            src.ip(),
            NODOA.parse::<IpAddr>().unwrap(),
            "{name}: masquerade"
        );
        assert_eq!(dst, sa(NGINX_ENDPOINT), "{name}: DNAT");
        tshark_checksums(&output);
        if let Some(rows) = tshark_fields(&output, &["ip.dst", "tcp.dstport"]) {
            assert_eq!(rows, ["10.10.0.105\t80"], "{name}: tshark reads the packet");
        }
    }
}

// ---- (3) reject --------------------------------------------------------------------------

/// nftables mode rejects traffic to a ClusterIP on a port its Service lacks: wp's pod on
/// nodoa asking mariadb-service (10.10.1.101, port 3307) on 3306 gets an ICMP port
/// unreachable, which replaces its packet in the output, with a link header that sends it
/// back.
#[test]
fn rejected_packet_is_replaced_by_port_unreachable() {
    type Wrap = fn(&[u8]) -> Vec<u8>;
    let vlan: Wrap = |ip| eth_tagged(ip, &[0x8100]);
    let rows: &[(&str, u32, Wrap, usize)] = &[
        ("ethernet", 1, eth, 14),
        ("802.1Q", 1, vlan, 18),
        ("raw", 101, raw, 0),
        ("sll", 113, sll, 16),
        ("sll2", 276, sll2, 20),
    ];
    let pod = sa("10.10.0.102:45000");
    let rejected = syn("10.10.0.102:45000", "10.10.1.101:3306");
    for (i, &(name, link, wrap, hl)) in rows.iter().enumerate() {
        let frame = wrap(&rejected);
        let input = tmp(&format!("reject-{i}.pcap"));
        let output = tmp(&format!("reject-{i}-out.pcap"));
        write_pcap(&input, link, &[rec(T0, frame.clone())]);
        let summary = run(&input, &output, Path::Forward);
        assert_eq!(verdicts(&summary), [0, 0, 1, 0], "{name}: {summary:?}");
        assert_eq!(summary.by_reason.get("port-not-served"), Some(&1), "{name}");
        assert_eq!(summary.written, 1);
        let out = read_out(&output);
        assert_eq!(out.packets.len(), 1, "{name}");
        let (t, reply, orig) = &out.packets[0];
        assert_eq!(*t, T0);
        assert_eq!(*orig as usize, reply.len());
        match link {
            1 => {
                // Back to the sender: MACs swapped, VLAN tag and ethertype kept.
                assert_eq!(reply[..6], frame[6..12], "{name}: destination MAC");
                assert_eq!(reply[6..12], frame[..6], "{name}: source MAC");
                assert_eq!(reply[12..hl], frame[12..hl], "{name}: tags and ethertype");
            }
            113 => {
                let h = etherparse::LinuxSllHeader::from_slice(reply).expect("SLL parses");
                assert_eq!(h.0.packet_type, etherparse::LinuxSllPacketType::OUTGOING);
                assert_eq!(reply[14..16], [0x08, 0x00], "{name}: protocol");
            }
            276 => {
                assert_eq!(reply[10], 4, "{name}: PACKET_OUTGOING");
                assert_eq!(reply[..8], frame[..8], "{name}: protocol and ifindex");
            }
            _ => {}
        }
        let ip = Ipv4Slice::from_slice(&reply[hl..]).expect("reply is IPv4");
        let h = ip.header().to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "{name}: IPv4 checksum"
        );
        assert_eq!(Ipv4Addr::from(h.destination), Ipv4Addr::new(10, 10, 0, 102));
        assert_ne!(IpAddr::from(h.source), pod.ip(), "{name}: sent by the node");
        assert_eq!(ip.payload().ip_number, IpNumber::ICMP);
        let icmp = Icmpv4Slice::from_slice(ip.payload().payload).expect("ICMP parses");
        assert_eq!(
            icmp.icmp_type(),
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
            "{name}"
        );
        let expected = Icmpv4Header::with_checksum(icmp.icmp_type(), icmp.payload()).checksum;
        assert_eq!(icmp.checksum(), expected, "{name}: ICMP checksum");
        // The quote starts with the rejected packet's IP header and its ports.
        assert_eq!(
            icmp.payload()[..28],
            rejected[..28],
            "{name}: quoted packet"
        );
        tshark_checksums(&output);
        if let Some(rows) = tshark_fields(&output, &["icmp.type", "icmp.code", "ip.dst"]) {
            // The reply to the pod, quoting the packet to the ClusterIP.
            assert_eq!(
                rows,
                ["3\t3\t10.10.0.102,10.10.1.101"],
                "{name}: tshark reads the reply"
            );
        }
    }
}
