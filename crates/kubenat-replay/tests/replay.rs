//! `kubenat_replay`: captures built here with pcap-file and etherparse, replayed through
//! the course notes' cluster seen from nodoa, and the output read back with pcap-file and
//! checked with etherparse (and tshark when it is installed), never with kubenat's code.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::Duration;

use etherparse::{
    Ethernet2Header, Icmpv4Header, Icmpv4Slice, Icmpv4Type, IpNumber, Ipv4Slice, PacketBuilder,
    TcpSlice, icmpv4::DestUnreachableHeader,
};
use kubenat_core::{Engine, Path, reference};
use kubenat_replay::{CaptureChecksums, ReplayError, Summary, replay, replay_with};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{PcapNgWriter, RawBlock};
use pcap_file::{DataLink, Endianness, TsResolution};

// ---- addresses of the course notes -------------------------------------------------------

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The PC of the notes, talking to nginx's NodePort on nodoa.
const CLIENT: &str = "192.168.0.200:40000";
const NODE_PORT: &str = "192.168.0.101:30880";
/// nginx's only endpoint (on nodob): where the NodePort must lead.
const NGINX_ENDPOINT: &str = "10.10.0.105:80";
const NODOA: &str = "192.168.0.101";
/// 2023-11-14T22:13:20Z, in nanoseconds.
const T0: u64 = 1_700_000_000_000_000_000;

fn engine() -> Engine {
    Engine::new(&reference::cluster("nodoa"))
}

// ---- packets (etherparse) ----------------------------------------------------------------

#[derive(Clone, Copy)]
struct Seg<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    psh: bool,
    payload: &'a [u8],
}

fn seg<'a>(src: SocketAddr, dst: SocketAddr, seq: u32, ack: Option<u32>) -> Seg<'a> {
    Seg {
        src,
        dst,
        seq,
        ack,
        syn: false,
        psh: false,
        payload: b"",
    }
}

fn v4(addr: SocketAddr) -> [u8; 4] {
    match addr.ip() {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// A TCP/IPv4 packet, built and checksummed by etherparse.
fn tcp(s: Seg) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(v4(s.src), v4(s.dst), 64).tcp(
        s.src.port(),
        s.dst.port(),
        s.seq,
        64_000,
    );
    if s.syn {
        b = b.syn();
    }
    if s.psh {
        b = b.psh();
    }
    if let Some(ack) = s.ack {
        b = b.ack(ack);
    }
    let mut out = Vec::new();
    b.write(&mut out, s.payload).unwrap();
    out
}

fn syn(src: &str, dst: &str) -> Vec<u8> {
    tcp(Seg {
        syn: true,
        ..seg(sa(src), sa(dst), 1000, None)
    })
}

// ---- link headers ------------------------------------------------------------------------

const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc8];
const MAC_NODE: [u8; 6] = [0x02, 0, 0, 0, 0, 0x65];

fn ethertype(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        0x86DD
    } else {
        0x0800
    }
}

/// Ethernet II from the client's MAC to the node's, with the given VLAN tag types (outer
/// first) before the IP ethertype.
fn eth_tagged(ip: &[u8], tags: &[u16]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_NODE);
    f.extend_from_slice(&MAC_CLIENT);
    for (i, tag) in tags.iter().enumerate() {
        f.extend_from_slice(&tag.to_be_bytes());
        // PCP 0, VLAN 100 + i
        f.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn eth(ip: &[u8]) -> Vec<u8> {
    eth_tagged(ip, &[])
}

/// Linux cooked v1: PACKET_HOST, ARPHRD_ETHER, the sender's 6-byte address.
fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6];
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Linux cooked v2: protocol, reserved, ifindex 3, ARPHRD_ETHER, PACKET_HOST, address.
fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(ip);
    f
}

fn raw(ip: &[u8]) -> Vec<u8> {
    ip.to_vec()
}

/// An ARP request (who has 192.168.0.101?) from the client.
fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[192, 168, 0, 200]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 168, 0, 101]);
    f
}

// ---- capture files (pcap-file) -----------------------------------------------------------

/// One record: timestamp (ns), captured bytes, original length.
struct Rec {
    nanos: u64,
    data: Vec<u8>,
    orig_len: u32,
}

fn rec(nanos: u64, data: Vec<u8>) -> Rec {
    let orig_len = data.len() as u32;
    Rec {
        nanos,
        data,
        orig_len,
    }
}

fn tmp(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_dead_runs_files);
    let dir = std::env::temp_dir().join(format!("kubenat-replay-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Test binaries have no teardown: each run removes the files of earlier runs whose
/// process is gone (tens of MB each).
fn remove_dead_runs_files() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kubenat-replay-test-"))
        else {
            continue;
        };
        if !FsPath::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn pcap_header(link: u32, resolution: TsResolution, endianness: Endianness) -> PcapHeader {
    PcapHeader {
        snaplen: 65535,
        datalink: DataLink::from(link),
        ts_resolution: resolution,
        endianness,
        ..PcapHeader::default()
    }
}

fn write_pcap_with(path: &FsPath, header: PcapHeader, recs: &[Rec]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for r in recs {
        // Raw records: a truncated capture (caplen < len) is written as it is.
        let frac = (r.nanos % 1_000_000_000) as u32;
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: (r.nanos / 1_000_000_000) as u32,
            ts_frac: match header.ts_resolution {
                TsResolution::MicroSecond => frac / 1000,
                TsResolution::NanoSecond => frac,
            },
            incl_len: r.data.len() as u32,
            orig_len: r.orig_len,
            data: Cow::Borrowed(&r.data),
        })
        .unwrap();
    }
}

fn write_pcap(path: &FsPath, link: u32, recs: &[Rec]) {
    let header = pcap_header(link, TsResolution::NanoSecond, Endianness::Little);
    write_pcap_with(path, header, recs);
}

/// A pcapng with one interface of `link`; `tsresol` is the interface's `if_tsresol`
/// (None: the default, microseconds).
fn write_pcapng(
    path: &FsPath,
    link: u32,
    tsresol: Option<u8>,
    endianness: Endianness,
    recs: &[Rec],
) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapNgWriter::with_endianness(file, endianness).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::from(link), 65535);
    if let Some(r) = tsresol {
        idb.options.push(InterfaceDescriptionOption::IfTsResol(r));
    }
    w.write_pcapng_block(idb).unwrap();
    for r in recs {
        let units = match tsresol {
            None => r.nanos / 1000,
            Some(9) => r.nanos,
            Some(b) if b & 0x80 != 0 => {
                ((u128::from(r.nanos) << (b & 0x7f)) / 1_000_000_000) as u64
            }
            Some(other) => panic!("unused tsresol {other}"),
        };
        // pcap-file writes the Duration's nanosecond count as the raw 64-bit timestamp,
        // whatever the interface's resolution: give it the count in the interface's units.
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(units),
            original_len: r.orig_len,
            data: Cow::Borrowed(&r.data),
            options: vec![],
        })
        .unwrap();
    }
}

struct Out {
    header: PcapHeader,
    /// (timestamp ns, bytes, original length)
    packets: Vec<(u64, Vec<u8>, u32)>,
}

fn read_out(path: &FsPath) -> Out {
    let bytes = std::fs::read(path).unwrap();
    // The output is a plain pcap, not pcapng.
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(
        [0xa1b2c3d4, 0xa1b23c4d].contains(&magic)
            || [0xa1b2c3d4, 0xa1b23c4d].contains(&magic.swap_bytes()),
        "output is not a pcap: magic {magic:#x}"
    );
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let header = r.header();
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet() {
        let p: PcapPacket = p.unwrap();
        packets.push((
            p.timestamp.as_nanos() as u64,
            p.data.into_owned(),
            p.orig_len,
        ));
    }
    Out { header, packets }
}

fn run(input: &FsPath, output: &FsPath, path: Path) -> Summary {
    let mut engine = engine();
    replay(&mut engine, input, output, path, &mut |_, _| {}).expect("replay succeeds")
}

fn verdicts(s: &Summary) -> [u64; 4] {
    ["translated", "accept", "reject", "drop"].map(|k| s.by_verdict[k])
}

// ---- independent checks ------------------------------------------------------------------

/// (source, destination) of a TCP/IPv4 packet, after etherparse checked the IPv4 and TCP
/// checksums from scratch.
fn checked_tcp(ip: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let v4 = Ipv4Slice::from_slice(ip).expect("IPv4 parses");
    let h = v4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    assert_eq!(v4.payload().ip_number, IpNumber::TCP);
    let t = TcpSlice::from_slice(v4.payload().payload).expect("TCP parses");
    let expected = t
        .to_header()
        .calc_checksum_ipv4_raw(h.source, h.destination, t.payload())
        .unwrap();
    assert_eq!(t.checksum(), expected, "TCP checksum");
    (
        SocketAddr::new(Ipv4Addr::from(h.source).into(), t.source_port()),
        SocketAddr::new(Ipv4Addr::from(h.destination).into(), t.destination_port()),
        t.payload().to_vec(),
    )
}

/// Checks the checksums of every packet of `pcap` with tshark, when it is installed.
fn tshark_checksums(pcap: &FsPath) {
    let Ok(out) = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "tcp.checksum.status==Bad || ip.checksum.status==Bad || udp.checksum.status==Bad \
             || icmp.checksum.status==Bad || _ws.malformed || _ws.expert.severity==error",
        ])
        .output()
    else {
        eprintln!("tshark not installed: checksums checked by etherparse only");
        return;
    };
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = String::from_utf8_lossy(&out.stdout);
    assert!(
        bad.trim().is_empty(),
        "tshark flags packets of {}:\n{bad}",
        pcap.display()
    );
}

/// tshark's reading of some fields of every packet (None without tshark).
fn tshark_fields(pcap: &FsPath, fields: &[&str]) -> Option<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

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

// ---- (4) malformed frames ----------------------------------------------------------------

/// Frames cut short in their link header, IP packets that are not what the link says or
/// that cannot be read, and truncated captures are dropped, counted, and the replay goes on.
#[test]
fn malformed_frames_are_counted_not_fatal() {
    let good = syn(CLIENT, NODE_PORT);
    let v6 = {
        let mut out = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(1, 2, 0, 100)
            .write(&mut out, b"")
            .unwrap();
        out
    };
    let mut ipv6_as_ipv4 = eth(&v6);
    ipv6_as_ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut vlan_cut = eth(&good)[..12].to_vec();
    vlan_cut.extend_from_slice(&[0x81, 0x00, 0x00]);
    let mut garbage_ip = eth(&good)[..14].to_vec();
    garbage_ip.extend_from_slice(&[0x45, 0, 0]);
    let truncated = eth(&good);

    // (name, record, expected drop reason; None: the engine's malformed-* reason)
    let rows: Vec<(&str, Rec, Option<&str>)> = vec![
        (
            "ten bytes",
            rec(T0, eth(&good)[..10].to_vec()),
            Some("malformed-link-header"),
        ),
        (
            "VLAN tag cut",
            rec(T0, vlan_cut),
            Some("malformed-link-header"),
        ),
        (
            "IPv6 as IPv4",
            rec(T0, ipv6_as_ipv4),
            Some("ip-version-mismatch"),
        ),
        (
            "3-byte IP",
            rec(T0, garbage_ip),
            Some("malformed-ip-header"),
        ),
        (
            "caplen < len",
            Rec {
                nanos: T0,
                orig_len: truncated.len() as u32,
                data: truncated[..14 + 30].to_vec(),
            },
            None,
        ),
    ];
    let mut recs: Vec<Rec> = Vec::new();
    for (name, r, reason) in rows {
        // Each row alone: exactly that reason.
        let input = tmp("malformed-row.pcap");
        let output = tmp("malformed-row-out.pcap");
        write_pcap(&input, 1, std::slice::from_ref(&r));
        let s = run(&input, &output, Path::Forward);
        assert_eq!(verdicts(&s), [0, 0, 0, 1], "{name}: {s:?}");
        let (got, n) = s.by_reason.iter().next().expect("a reason");
        assert_eq!(*n, 1);
        match reason {
            Some(reason) => assert_eq!(got, reason, "{name}"),
            None => assert!(got.starts_with("malformed-"), "{name}: {got}"),
        }
        assert_eq!(read_out(&output).packets.len(), 0, "{name}: left out");
        recs.push(r);
    }
    // All of them, then a good packet: the replay goes on.
    recs.push(rec(T0 + 1, eth(&good)));
    let input = tmp("malformed.pcap");
    let output = tmp("malformed-out.pcap");
    write_pcap(&input, 1, &recs);
    let s = run(&input, &output, Path::Forward);
    assert_eq!(s.packets, 6);
    assert_eq!(verdicts(&s), [1, 0, 0, 5], "{s:?}");
    assert_eq!(s.by_reason["malformed-link-header"], 2);
    assert_eq!(s.written, 1);
    let out = read_out(&output);
    assert_eq!(out.packets.len(), 1);
    assert_eq!(checked_tcp(&out.packets[0].1[14..]).1, sa(NGINX_ENDPOINT));

    // Other link types: a cooked header cut short, an IPv6 packet on LINKTYPE_IPV4.
    let cases: &[(&str, u32, Vec<u8>, &str)] = &[
        (
            "sll short",
            113,
            sll(&good)[..12].to_vec(),
            "malformed-link-header",
        ),
        (
            "sll2 short",
            276,
            sll2(&good)[..19].to_vec(),
            "malformed-link-header",
        ),
        ("v6 on ipv4", 228, v6.clone(), "ip-version-mismatch"),
        ("v4 on ipv6", 229, good.clone(), "ip-version-mismatch"),
        ("empty raw", 101, vec![], "malformed-ip-header"),
    ];
    for (name, link, frame, reason) in cases {
        let input = tmp("malformed-link.pcap");
        let output = tmp("malformed-link-out.pcap");
        // Then a packet the link type carries: the replay goes on past the bad one.
        let next = if *link == 229 {
            v6.clone()
        } else {
            good.clone()
        };
        write_pcap(&input, *link, &[rec(T0, frame.clone()), rec(T0 + 1, next)]);
        let s = run(&input, &output, Path::Forward);
        assert_eq!(s.by_reason.get(*reason), Some(&1), "{name}: {s:?}");
        assert_eq!(s.by_verdict["drop"], 1, "{name}");
        assert_eq!(s.written, 1, "{name}");
    }

    // A pcapng packet block whose captured length runs past the block: counted.
    let input = tmp("malformed.pcapng");
    let output = tmp("malformed-ng-out.pcap");
    {
        let file = std::fs::File::create(&input).unwrap();
        let mut w = PcapNgWriter::with_endianness(file, Endianness::Little).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        let mut body = Vec::new();
        for v in [0u32, 0, 0, 4000, 4000] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&[0; 8]);
        w.write_raw_block(&RawBlock {
            type_: 6,
            initial_len: 12 + body.len() as u32,
            body: Cow::Owned(body.clone()),
            trailer_len: 12 + body.len() as u32,
        })
        .unwrap();
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // The raw count in the interface's default unit, microseconds (see write_pcapng).
            timestamp: Duration::from_nanos(T0 / 1000),
            original_len: eth(&good).len() as u32,
            data: Cow::Owned(eth(&good)),
            options: vec![],
        })
        .unwrap();
    }
    let s = run(&input, &output, Path::Forward);
    assert_eq!(s.packets, 2);
    assert_eq!(
        s.by_reason.get("malformed-capture-record"),
        Some(&1),
        "{s:?}"
    );
    assert_eq!(s.by_verdict["translated"], 1);
    let out = read_out(&output);
    // pcapng's "no snaplen" (0) becomes the usual 262144.
    assert_eq!(out.header.snaplen, 262_144);
    assert_eq!(out.packets[0].0, T0, "microsecond default of if_tsresol");
}

// ---- (5) unreadable files ----------------------------------------------------------------

#[test]
fn unreadable_captures_are_errors_naming_the_file() {
    let output = tmp("err-out.pcap");
    let garbage = tmp("garbage.pcap");
    std::fs::write(&garbage, b"this is not a packet capture at all\n").unwrap();
    let empty = tmp("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let header_only = tmp("short-header.pcap");
    std::fs::write(&header_only, 0xa1b2c3d4u32.to_le_bytes()).unwrap();
    let wifi = tmp("wifi.pcap");
    write_pcap(&wifi, 105, &[]);
    let cut = tmp("cut.pcap");
    write_pcap(
        &cut,
        1,
        &[
            rec(T0, eth(&syn(CLIENT, NODE_PORT))),
            rec(T0 + 1, eth(&syn(CLIENT, NODE_PORT))),
        ],
    );
    let len = std::fs::metadata(&cut).unwrap().len();
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..len as usize - 10]).unwrap();
    let missing = tmp("does-not-exist.pcap");

    type Is = fn(&ReplayError) -> bool;
    let rows: &[(&PathBuf, Is, &str)] = &[
        (
            &garbage,
            |e| matches!(e, ReplayError::NotACapture { .. }),
            "not a pcap",
        ),
        (
            &empty,
            |e| matches!(e, ReplayError::NotACapture { .. }),
            "not a pcap",
        ),
        (
            &header_only,
            |e| matches!(e, ReplayError::Malformed { .. }),
            "header",
        ),
        (
            &wifi,
            |e| matches!(e, ReplayError::UnsupportedLinkType { link_type: 105, .. }),
            "105",
        ),
        (
            &cut,
            |e| matches!(e, ReplayError::Malformed { record: 2, .. }),
            "record 2",
        ),
        (
            &missing,
            |e| matches!(e, ReplayError::Io { .. }),
            "does-not-exist",
        ),
    ];
    for (input, is, text) in rows {
        let mut engine = engine();
        let err = replay(&mut engine, input, &output, Path::Forward, &mut |_, _| {})
            .expect_err(&input.display().to_string());
        let shown = err.to_string();
        assert!(is(&err), "{}: {err:?}", input.display());
        assert!(
            shown.contains(&input.display().to_string()),
            "names the file: {shown}"
        );
        assert!(shown.contains(text), "{shown}");
    }
    // What was replayed before the cut is written.
    assert_eq!(read_out(&output).packets.len(), 1);
}

// ---- (6) records libpcap refuses -----------------------------------------------------------

/// A pcap of raw records: (seconds, fraction, captured bytes), orig_len = captured length.
fn write_raw_pcap(path: &FsPath, header: PcapHeader, recs: &[(u32, u32, &[u8])]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (ts_sec, ts_frac, data) in recs {
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: *ts_sec,
            ts_frac: *ts_frac,
            incl_len: data.len() as u32,
            orig_len: data.len() as u32,
            data: Cow::Borrowed(data),
        })
        .unwrap();
    }
}

/// What libpcap and Wireshark refuse is refused with the reason, naming the record: a
/// captured length over libpcap's 262,144-byte maximum (even when the whole record is in
/// the file), a fraction of a second that is a second or more. A record longer than its
/// snaplen is dropped with a counted reason, never written with a header rewritten to fit.
#[test]
fn records_libpcap_refuses() {
    let good = eth(&syn(CLIENT, NODE_PORT));
    let huge = vec![0u8; 9 << 20];
    let sec = (T0 / 1_000_000_000) as u32;
    let header = |snaplen: u32, resolution| PcapHeader {
        snaplen,
        ..pcap_header(1, resolution, Endianness::Little)
    };
    let output = tmp("refused-out.pcap");

    // (name, file, record, what the error says)
    let huge_ng = tmp("huge.pcapng");
    write_pcapng(
        &huge_ng,
        1,
        None,
        Endianness::Little,
        &[rec(T0, huge.clone())],
    );
    let rows: Vec<(&str, PathBuf, u64, &[&str])> = vec![
        (
            "9 MiB record, whole, snaplen 0",
            {
                let p = tmp("huge-0.pcap");
                write_raw_pcap(
                    &p,
                    header(0, TsResolution::NanoSecond),
                    &[(sec, 0, &good), (sec, 1, &huge)],
                );
                p
            },
            2,
            &["9437184 bytes", "maximum of 262144"],
        ),
        (
            "9 MiB record, whole, snaplen 65535",
            {
                let p = tmp("huge-65535.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::MicroSecond),
                    &[(sec, 0, &huge)],
                );
                p
            },
            1,
            &["9437184 bytes", "maximum of 262144", "snaplen is 65535"],
        ),
        (
            "9 MiB pcapng block, whole",
            huge_ng,
            2,
            &["block of 94372", "maximum of 8000000", "262144"],
        ),
        (
            "262145-byte record, snaplen 0x7fffffff",
            {
                let p = tmp("over-max.pcap");
                let over = vec![0u8; 262_145];
                write_raw_pcap(
                    &p,
                    header(0x7fff_ffff, TsResolution::NanoSecond),
                    &[(sec, 0, &over)],
                );
                p
            },
            1,
            &["262145 bytes", "maximum of 262144"],
        ),
        (
            "nanoseconds 10^9",
            {
                let p = tmp("ns.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::NanoSecond),
                    &[(sec, 999_999_999, &good), (sec, 1_000_000_000, &good)],
                );
                p
            },
            2,
            &["1000000000 nanoseconds", "a second or more"],
        ),
        (
            "microseconds 10^6",
            {
                let p = tmp("us.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::MicroSecond),
                    &[(sec, 1_000_000, &good)],
                );
                p
            },
            1,
            &["1000000 microseconds", "a second or more"],
        ),
        (
            "nanoseconds u32::MAX",
            {
                let p = tmp("ns-max.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::NanoSecond),
                    &[(sec, u32::MAX, &good)],
                );
                p
            },
            1,
            &["4294967295 nanoseconds"],
        ),
    ];
    for (name, input, record, texts) in rows {
        let mut engine = engine();
        let err =
            replay(&mut engine, &input, &output, Path::Forward, &mut |_, _| {}).expect_err(name);
        let shown = err.to_string();
        assert!(
            matches!(err, ReplayError::Malformed { record: r, .. } if r == record),
            "{name}: {err:?}"
        );
        assert!(
            shown.contains(&format!("record {record}")),
            "{name}: {shown}"
        );
        assert!(!shown.contains("ends in the middle"), "{name}: {shown}");
        for text in texts {
            assert!(shown.contains(text), "{name}: {shown} lacks {text:?}");
        }
    }

    // Cut short inside a large record: that, precisely.
    let cut = tmp("cut-large.pcap");
    let large = vec![0u8; 200_000];
    write_raw_pcap(
        &cut,
        header(0, TsResolution::NanoSecond),
        &[(sec, 0, &large)],
    );
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let err = replay(&mut engine(), &cut, &output, Path::Forward, &mut |_, _| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("ends in the middle of a record (199000 of 200000 captured bytes)"),
        "{err}"
    );

    // Longer than the snaplen (pcap's header, pcapng's interface): dropped and counted,
    // the next packet replayed.
    let over = tmp("over-snaplen.pcap");
    write_raw_pcap(
        &over,
        header(40, TsResolution::NanoSecond),
        &[(sec, 0, &good), (sec, 1, &good[..40])],
    );
    let over_ng = tmp("over-snaplen.pcapng");
    {
        let file = std::fs::File::create(&over_ng).unwrap();
        let mut w = PcapNgWriter::with_endianness(file, Endianness::Little).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 40))
            .unwrap();
        for (i, data) in [&good[..], &good[..40]].into_iter().enumerate() {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(T0 / 1000 + i as u64),
                original_len: good.len() as u32,
                data: Cow::Borrowed(data),
                options: vec![],
            })
            .unwrap();
        }
    }
    for input in [over, over_ng] {
        let s = run(&input, &output, Path::Forward);
        assert_eq!(s.packets, 2, "{}", input.display());
        assert_eq!(
            s.by_reason.get("captured-beyond-snaplen"),
            Some(&1),
            "{}: {s:?}",
            input.display()
        );
        let out = read_out(&output);
        assert_eq!(out.header.snaplen, 40);
        // Only the second record, within the snaplen, is written; none is longer than it.
        assert_eq!(out.packets.len(), s.written as usize);
        assert!(
            out.packets.iter().all(|p| p.1.len() <= 40),
            "{}",
            input.display()
        );
        assert!(
            out.packets.iter().all(|p| p.1 != good),
            "{}",
            input.display()
        );
    }
}

// ---- progress ----------------------------------------------------------------------------

#[test]
fn progress_reports_the_bytes_read() {
    let payload = [0x61u8; 1000];
    let recs: Vec<Rec> = (0..300)
        .map(|i| {
            let ip = tcp(Seg {
                payload: &payload,
                ..seg(
                    sa("192.168.0.200:41000"),
                    sa("192.168.0.50:9"),
                    i * 1000,
                    Some(1),
                )
            });
            rec(T0 + u64::from(i), eth(&ip))
        })
        .collect();
    for (name, pcapng) in [("pcap", false), ("pcapng", true)] {
        let input = tmp(&format!("progress.{name}"));
        let output = tmp("progress-out.pcap");
        if pcapng {
            write_pcapng(&input, 1, Some(9), Endianness::Little, &recs);
        } else {
            write_pcap(&input, 1, &recs);
        }
        let total = std::fs::metadata(&input).unwrap().len();
        let mut calls: Vec<(u64, u64)> = Vec::new();
        let mut engine = engine();
        let s = replay(&mut engine, &input, &output, Path::Forward, &mut |r, t| {
            calls.push((r, t))
        })
        .unwrap();
        // Not the node's traffic: passes untouched.
        assert_eq!(verdicts(&s), [0, 300, 0, 0], "{name}");
        assert_eq!(calls.first(), Some(&(0, total)), "{name}");
        assert_eq!(calls.last(), Some(&(total, total)), "{name}");
        assert!(
            calls.windows(2).all(|w| w[0].0 <= w[1].0),
            "{name}: monotonic"
        );
        let steps = total / (64 * 1024);
        assert!(
            calls.len() as u64 > steps,
            "{name}: about every 64 KiB ({} calls for {total} bytes)",
            calls.len()
        );
        assert!(
            calls
                .windows(2)
                .all(|w| w[1].0 - w[0].0 <= 64 * 1024 + 2048),
            "{name}: no gap over ~64 KiB"
        );
        let out = read_out(&output);
        assert_eq!(out.packets.len(), 300);
        assert!(out.packets.iter().zip(&recs).all(|(o, r)| o.1 == r.data));
    }
}

/// The one's-complement sum of an IPv4 TCP pseudo-header, folded, not complemented: what
/// a checksum left for offload holds (written here, not with kubenat's code).
fn ipv4_tcp_pseudo_sum(ip: &[u8]) -> u16 {
    let length = (ip.len() - 20) as u32;
    let mut sum: u32 = ip[12..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += 6 + length;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn checksums_are_verified_unless_trusted_and_partial_ones_stay_partial() {
    let valid = syn(CLIENT, NODE_PORT);
    let mut corrupt = syn("192.168.0.200:40001", NODE_PORT);
    *corrupt.last_mut().unwrap() ^= 0xff; // the urgent pointer, under the checksum
    let mut partial = syn("192.168.0.200:40002", NODE_PORT);
    let pseudo = ipv4_tcp_pseudo_sum(&partial);
    partial[36..38].copy_from_slice(&pseudo.to_be_bytes());
    let input = tmp("checksums.pcap");
    write_pcap(
        &input,
        101,
        &[
            rec(T0, raw(&valid)),
            rec(T0 + 1_000, raw(&corrupt)),
            rec(T0 + 2_000, raw(&partial)),
        ],
    );
    let output = tmp("checksums-out.pcap");
    let summary = run(&input, &output, Path::Forward);
    assert_eq!(verdicts(&summary), [2, 0, 0, 1], "{summary:?}");
    assert_eq!(summary.by_reason.get("transport-checksum"), Some(&1));
    let out = read_out(&output);
    assert_eq!(out.packets.len(), 2);
    // The partial checksum left partial: the pseudo-header sum of the translated packet.
    let translated = &out.packets[1].1;
    assert_eq!(
        translated[36..38],
        ipv4_tcp_pseudo_sum(translated).to_be_bytes(),
        "a partial checksum stays partial through NAT"
    );
    // Trusted: every packet is translated, the corrupt one too.
    let mut engine = engine();
    let trusted = replay_with(
        &mut engine,
        &input,
        &output,
        Path::Forward,
        CaptureChecksums::Trust,
        &mut |_, _| {},
    )
    .expect("replay succeeds");
    assert_eq!(verdicts(&trusted), [3, 0, 0, 0], "{trusted:?}");
}
