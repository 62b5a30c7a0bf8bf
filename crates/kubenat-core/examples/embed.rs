//! Embedding the engine in your own packet loop.
//!
//! The engine is sans-IO: you hand it raw IP packets and the current time, it rewrites the
//! packet in place and returns a [`Verdict`]. Where packets come from (a TUN device, AF_XDP,
//! a pcap, a simulator) and what clock you use is up to you. This example plays a small
//! script with virtual time:
//!
//! 1. two pod connections to a ClusterIP (round robin spreads them over both endpoints),
//! 2. an outside client on the NodePort (DNAT plus masquerade, as kube-proxy does for
//!    externalTrafficPolicy Cluster),
//! 3. a ClusterIP port the Service does not have (nftables mode rejects it),
//!
//! answers every translated SYN as the endpoint would, then runs the timers down.
//!
//! Run it with `cargo run -p kubenat-core --example embed`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine, Flow, Instant,
    IpNet, Path, Protocol, ProxyConfig, Service, ServiceName, ServicePort, ServiceType, TargetPort,
    Verdict,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("literal CIDR")
}

/// One node ("node-a", 192.168.0.10) and one NodePort Service `default/web`:
/// ClusterIP 10.96.0.10:80, NodePort 30080, endpoints 10.244.1.5:8080 (this node) and
/// 10.244.2.7:8080 (node-b). In a real embedding this comes from an API-server watch.
fn cluster() -> ClusterState {
    let name = ServiceName::new("default", "web");
    let endpoint = |address: &str, node: &str| Endpoint {
        addresses: vec![ip(address)],
        conditions: EndpointConditions::default(), // ready, serving, not terminating
        node_name: Some(node.to_string()),
    };
    ClusterState {
        services: vec![Service {
            name: name.clone(),
            service_type: ServiceType::NodePort,
            cluster_ips: vec![ip("10.96.0.10")],
            ports: vec![ServicePort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(8080),
                node_port: Some(30080),
            }],
            ..Service::default()
        }],
        // The slice's port is matched to the Service port by name and protocol.
        endpoint_slices: vec![EndpointSlice {
            name: "web-x7k2p".into(),
            service: name,
            ports: vec![EndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080,
            }],
            endpoints: vec![
                endpoint("10.244.1.5", "node-a"),
                endpoint("10.244.2.7", "node-b"),
            ],
        }],
        nodes: Vec::new(),
        proxy: ProxyConfig {
            node_name: "node-a".into(),
            node_ips: vec![ip("192.168.0.10")],
            // Sources inside the pod network are pods (not masqueraded to a ClusterIP).
            cluster_cidrs: vec![net("10.244.0.0/16")],
            service_cidrs: vec![net("10.96.0.0/16")],
            ..ProxyConfig::default() // nftables mode, round robin, kube-proxy's timeouts
        },
    }
}

/// A TCP segment built by etherparse (the engine never builds your packets).
fn tcp(src: SocketAddr, dst: SocketAddr, syn: bool, ack: bool) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("this example is IPv4 only");
    };
    let mut builder =
        PacketBuilder::ipv4(s.octets(), d.octets(), 64).tcp(src.port(), dst.port(), 1000, 64_000);
    if syn {
        builder = builder.syn();
    }
    if ack {
        builder = builder.ack(1001);
    }
    let mut packet = Vec::new();
    builder.write(&mut packet, &[]).expect("valid segment");
    packet
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("literal socket address")
}

fn main() {
    let mut engine = Engine::new(&cluster());

    // The script: (milliseconds since start, who, first packet of a connection).
    let script = [
        (
            0,
            "pod -> ClusterIP",
            sa("10.244.1.20:40000"),
            sa("10.96.0.10:80"),
        ),
        (
            10,
            "pod -> ClusterIP",
            sa("10.244.1.20:40001"),
            sa("10.96.0.10:80"),
        ),
        (
            20,
            "client -> NodePort",
            sa("203.0.113.7:50000"),
            sa("192.168.0.10:30080"),
        ),
        (
            30,
            "pod -> wrong port",
            sa("10.244.1.20:40002"),
            sa("10.96.0.10:81"),
        ),
    ];
    let mut reply_buffer = [0u8; MAX_REPLY_LEN];

    for (at, who, src, dst) in script {
        let now = Instant::from_millis(at);
        let mut packet = tcp(src, dst, true, false);
        // Path::Forward = PREROUTING (conntrack, DNAT) then POSTROUTING (masquerade).
        // Packets the node itself sends use Path::LocalOut; callers with their own hook
        // points call `engine.process(Hook::..., ..)` once per hook instead.
        let verdict = engine.process_path(Path::Forward, &mut packet, now);
        println!("[{at:>4} ms] {who}: SYN {src} -> {dst}");
        match verdict {
            Verdict::Translated(_) => {
                // The packet was rewritten in place: read where it goes now.
                let after = Flow::of_packet(&packet).expect("a translated packet parses");
                println!("           translated to {after}");
                // The endpoint answers the packet as it received it: swap the translated
                // tuple. Conntrack recognises the reply and undoes DNAT and masquerade.
                let mut reply = tcp(after.destination, after.source, true, true);
                let later = now + Duration::from_millis(1);
                match engine.process_path(Path::Forward, &mut reply, later) {
                    Verdict::Translated(_) => {
                        let back = Flow::of_packet(&reply).expect("a translated reply parses");
                        println!("           reply becomes {back}")
                    }
                    other => println!("           reply: {other:?}"),
                }
            }
            Verdict::Reject(reason) => {
                // The packet is untouched: answer its sender with ICMP port unreachable
                // (kube-proxy's `reject`), then send `reply_buffer[..len]` back out.
                let len = engine
                    .write_reject_reply(&packet, &mut reply_buffer)
                    .expect("rejected packets are IP");
                let icmp = SlicedPacket::from_ip(&reply_buffer[..len]).expect("valid reply");
                if let Some(TransportSlice::Icmpv4(icmp)) = icmp.transport {
                    println!(
                        "           rejected ({reason}): {len}-byte {:?}",
                        icmp.icmp_type()
                    );
                }
            }
            Verdict::Drop(reason) => println!("           dropped ({reason})"),
            Verdict::Accept => println!("           accepted untouched"),
            // `Verdict` is #[non_exhaustive]: later versions may add verdicts.
            other => println!("           other verdict: {other:?}"),
        }
    }
    println!("tracked connections: {}", engine.connections());

    // Timers: the engine never reads a clock, it tells you when it next needs the time.
    // An event loop would arm a timer for `poll_at()`; here virtual time jumps there.
    while let Some(deadline) = engine.poll_at() {
        let expired = engine.handle_timeout(deadline);
        let secs = Duration::from_nanos(deadline.as_nanos()).as_secs_f64();
        println!("[{secs:>7.3} s] {expired} connection(s) expired");
    }
    println!("tracked connections: {}", engine.connections());

    // Counters per verdict and per reason (stable names, e.g. for metrics labels).
    let counters = engine.counters();
    println!(
        "packets: {} (accepted {}, translated {}, dropped {}, rejected {})",
        counters.total(),
        counters.accepted,
        counters.translated,
        counters.dropped,
        counters.rejected
    );
    for (reason, count) in counters.drop_reasons().filter(|&(_, n)| n > 0) {
        println!("  drop {reason}: {count}");
    }
    for (reason, count) in counters.reject_reasons().filter(|&(_, n)| n > 0) {
        println!("  reject {reason}: {count}");
    }
}
