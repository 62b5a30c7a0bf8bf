//! Building test packets for the engine, and reading its answers back.
//!
//! The engine takes raw IP packets (IPv4 or IPv6, no link header) in a `&mut [u8]` and
//! rewrites them in place; it never builds your packets. Build them with
//! [etherparse](https://docs.rs/etherparse), which kubenat-core re-exports as
//! `kubenat_core::etherparse` so the version always matches (or add `etherparse = "0.21"`
//! to your own `[dev-dependencies]`). etherparse computes every checksum, so a packet the
//! engine rewrites can be checked with it afterwards.
//!
//! This example sends four packets through the kube-proxy of node `nodob` in
//! [`reference::cluster`] (the course notes' cluster) and checks what comes out:
//!
//! | packet | expected |
//! |---|---|
//! | TCP SYN from a pod to `wp-service` 10.10.1.102:8080 | DNAT to an endpoint on port 80 |
//! | UDP DNS query from a pod to `kube-dns` 10.10.1.10:53 | DNAT to 10.10.0.10:53 |
//! | TCP SYN from outside to the NodePort 192.168.0.102:30880 | DNAT to nginx, masquerade |
//! | TCP SYN to a port `wp-service` lacks (10.10.1.102:9999) | rejected: ICMP port unreachable |
//!
//! Run it with `cargo run -p kubenat-core --example packets`; `cargo test -p kubenat-core`
//! runs it too.

use std::net::{IpAddr, SocketAddr};

use kubenat_core::etherparse::{
    Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, icmpv4,
};
use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::{Engine, Instant, Path, Verdict, reference};

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("literal socket address")
}

fn octets(addr: SocketAddr) -> [u8; 4] {
    match addr.ip() {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => unreachable!("this example's packets are IPv4"),
    }
}

/// A TCP SYN: IPv4 header (TTL 64) and TCP header, checksums computed by etherparse.
fn tcp_syn(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4(octets(src), octets(dst), 64)
        .tcp(src.port(), dst.port(), 1000, 64_240)
        .syn()
        .write(&mut packet, &[])
        .expect("writing to a Vec cannot fail");
    packet
}

/// A UDP datagram carrying `payload`.
fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4(octets(src), octets(dst), 64)
        .udp(src.port(), dst.port())
        .write(&mut packet, payload)
        .expect("writing to a Vec cannot fail");
    packet
}

/// (source, destination) of a TCP or UDP packet, after checking with etherparse that its
/// IPv4 header and transport checksums are still right.
fn addresses(packet: &[u8]) -> (SocketAddr, SocketAddr) {
    let sliced = SlicedPacket::from_ip(packet).expect("etherparse reads the rewritten packet");
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4");
    };
    let header = ip.header().to_header();
    assert_eq!(
        header.header_checksum,
        header.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let (src, dst) = (header.source, header.destination);
    let (sport, dport) = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let expected = tcp
                .to_header()
                .calc_checksum_ipv4(&header, tcp.payload())
                .expect("checksum");
            assert_eq!(tcp.checksum(), expected, "TCP checksum");
            (tcp.source_port(), tcp.destination_port())
        }
        Some(TransportSlice::Udp(udp)) => {
            let expected = udp
                .to_header()
                .calc_checksum_ipv4(&header, udp.payload())
                .expect("checksum");
            assert_eq!(udp.checksum(), expected, "UDP checksum");
            (udp.source_port(), udp.destination_port())
        }
        other => panic!("not TCP or UDP: {other:?}"),
    };
    (
        SocketAddr::from((src, sport)),
        SocketAddr::from((dst, dport)),
    )
}

fn main() {
    let mut engine = Engine::new(&reference::cluster("nodob"));
    let now = Instant::ZERO;

    // 1. A pod on nodob opens a connection to wp-service's ClusterIP.
    let mut syn = tcp_syn(sa("10.10.0.112:40000"), sa("10.10.1.102:8080"));
    let verdict = engine.process_path(Path::Forward, &mut syn, now);
    assert!(matches!(verdict, Verdict::Translated(_)), "{verdict:?}");
    let (src, dst) = addresses(&syn);
    assert_eq!(src, sa("10.10.0.112:40000"), "a pod's source is kept");
    assert!(
        [sa("10.10.0.102:80"), sa("10.10.0.112:80")].contains(&dst),
        "DNAT to a wp-service endpoint, not {dst}"
    );
    println!("pod -> wp-service:     {verdict:?}");

    // 2. The same pod asks the cluster DNS.
    let mut query = udp(
        sa("10.10.0.112:53000"),
        sa("10.10.1.10:53"),
        b"\x12\x34query",
    );
    let verdict = engine.process_path(Path::Forward, &mut query, now);
    assert_eq!(addresses(&query).1, sa("10.10.0.10:53"));
    println!("pod -> kube-dns:       {verdict:?}");

    // 3. An outside PC reaches nginx through the NodePort: DNAT, and masquerade to nodob's
    //    address (externalTrafficPolicy Cluster).
    let mut syn = tcp_syn(sa("192.168.0.200:50000"), sa("192.168.0.102:30880"));
    let verdict = engine.process_path(Path::Forward, &mut syn, now);
    let (src, dst) = addresses(&syn);
    assert_eq!(dst, sa("10.10.0.105:80"));
    assert_eq!(src.ip(), "192.168.0.102".parse::<IpAddr>().unwrap());
    println!("PC -> NodePort 30880:  {verdict:?}");

    // 4. A port wp-service does not have: nftables mode rejects it, and the engine writes
    //    the ICMP port unreachable the node sends back.
    let syn = tcp_syn(sa("10.10.0.112:40001"), sa("10.10.1.102:9999"));
    let mut packet = syn.clone();
    let verdict = engine.process_path(Path::Forward, &mut packet, now);
    assert!(matches!(verdict, Verdict::Reject(_)), "{verdict:?}");
    assert_eq!(packet, syn, "a rejected packet is left as it was");
    let mut reply = [0u8; MAX_REPLY_LEN];
    let len = engine
        .write_reject_reply(&packet, &mut reply)
        .expect("a reply to a rejected packet");
    let sliced = SlicedPacket::from_ip(&reply[..len]).expect("etherparse reads the reply");
    let Some(TransportSlice::Icmpv4(icmp)) = sliced.transport else {
        panic!("not ICMP");
    };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
    );
    println!(
        "pod -> port 9999:      {verdict:?}, replied with {len} bytes of ICMP port unreachable"
    );
}

#[test]
fn runs() {
    main();
}
