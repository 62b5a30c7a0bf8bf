//! Connection tracking and everything around it: whole TCP connections through a Service,
//! reverse NAT of replies, timeouts, table limits, masquerade ports, updates, reject replies,
//! ICMP errors about translated connections, malformed input and batches.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{assert_checksums, endpoints, sa, tcp, udp};
use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, NetSlice,
    PacketBuilder, SlicedPacket, TransportSlice,
};
use kubenat_core::{
    ClusterState, DropReason, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine,
    Hook, Instant, Path, Protocol, ProxyMode, RejectReason, Service, ServiceName, ServicePort,
    ServiceType, TargetPort, Translation, Update, Verdict, reference,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const NODE: &str = "192.168.0.101";
const NODE6: &str = "fd00:192::101";
const TCP: u8 = 6;
const UDP: u8 = 17;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// One nanosecond before `secs(s)`.
fn just_before(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000 - 1)
}

fn translated(verdict: Verdict) -> Translation {
    match verdict {
        Verdict::Translated(t) => t,
        other => panic!("expected a translation, got {other:?}"),
    }
}

fn endpoint(address: &str, node: &str) -> Endpoint {
    Endpoint {
        addresses: vec![ip(address)],
        conditions: EndpointConditions::default(),
        node_name: Some(node.to_string()),
    }
}

fn slice_mut<'a>(state: &'a mut ClusterState, service: &str) -> &'a mut EndpointSlice {
    state
        .endpoint_slices
        .iter_mut()
        .find(|s| s.service.name == service)
        .expect("slice of the service")
}

fn dns() -> ServiceName {
    ServiceName::new("kube-system", "kube-dns")
}

/// The notes' cluster from nodoa, with kube-dns served by two pods, so round robin has
/// somewhere to move on to.
fn nodoa_two_dns() -> ClusterState {
    let mut state = reference::cluster("nodoa");
    slice_mut(&mut state, "kube-dns").endpoints = vec![
        endpoint("10.10.0.10", "nodo1"),
        endpoint("10.10.0.11", "nodob"),
    ];
    state
}

/// The notes' cluster from nodoa made dual-stack, plus a dual-stack NodePort Service
/// `default/echo` (TCP 7000 -> 7, NodePort 30990; UDP 7000 -> 7, NodePort 30991) with two
/// IPv4 pods and one IPv6 pod.
fn dual_stack() -> ClusterState {
    let mut state = reference::cluster("nodoa");
    state.proxy.node_ips.push(ip(NODE6));
    for node in &mut state.nodes {
        if node.name == "nodoa" {
            node.addresses.push(ip(NODE6));
        }
    }
    state
        .proxy
        .cluster_cidrs
        .push("fd00:10::/48".parse().unwrap());
    state
        .proxy
        .service_cidrs
        .push("fd00:10:1::/112".parse().unwrap());
    let name = ServiceName::new("default", "echo");
    state.services.push(Service {
        name: name.clone(),
        service_type: ServiceType::NodePort,
        cluster_ips: vec![ip("10.10.1.120"), ip("fd00:10:1::120")],
        ports: vec![
            ServicePort {
                name: "tcp".into(),
                protocol: Protocol::Tcp,
                port: 7000,
                target_port: TargetPort::Number(7),
                node_port: Some(30990),
            },
            ServicePort {
                name: "udp".into(),
                protocol: Protocol::Udp,
                port: 7000,
                target_port: TargetPort::Number(7),
                node_port: Some(30991),
            },
        ],
        ..Service::default()
    });
    let ports = vec![
        EndpointPort {
            name: "tcp".into(),
            protocol: Protocol::Tcp,
            port: 7,
        },
        EndpointPort {
            name: "udp".into(),
            protocol: Protocol::Udp,
            port: 7,
        },
    ];
    state.endpoint_slices.push(EndpointSlice {
        name: "echo-v4".into(),
        service: name.clone(),
        ports: ports.clone(),
        endpoints: vec![
            endpoint("10.10.0.120", "nodob"),
            endpoint("10.10.0.121", "nodoc"),
        ],
    });
    state.endpoint_slices.push(EndpointSlice {
        name: "echo-v6".into(),
        service: name,
        ports,
        endpoints: vec![endpoint("fd00:10::120", "nodob")],
    });
    state
}

/// The reply an endpoint (or whoever the packet reached) sends to a TCP/UDP packet as it
/// left the node: addresses and ports swapped.
fn reply_to(packet: &[u8], tcp_flags: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = endpoints(packet);
    match transport_protocol(packet) {
        TCP => tcp(dst, src, tcp_flags, payload),
        UDP => udp(dst, src, payload),
        other => panic!("no reply for protocol {other}"),
    }
}

fn transport_protocol(packet: &[u8]) -> u8 {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(_) => TCP,
        TransportSlice::Udp(_) => UDP,
        other => panic!("unexpected transport {other:?}"),
    }
}

fn transport_payload(packet: &[u8]) -> Vec<u8> {
    let sliced = SlicedPacket::from_ip(packet).expect("packet parses");
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(t) => t.payload().to_vec(),
        TransportSlice::Udp(u) => u.payload().to_vec(),
        other => panic!("unexpected transport {other:?}"),
    }
}

/// Runs a packet through the forward path and returns the verdict and the packet as it left.
fn forward(engine: &mut Engine, mut packet: Vec<u8>, now: Instant) -> (Verdict, Vec<u8>) {
    let verdict = engine.process_path(Path::Forward, &mut packet, now);
    (verdict, packet)
}

/// Forwards a packet that must be translated; checks its checksums and returns where it
/// went (source, destination as it left).
fn forward_translated(
    engine: &mut Engine,
    packet: Vec<u8>,
    now: Instant,
) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let before = endpoints(&packet);
    let (verdict, out) = forward(engine, packet, now);
    let t = translated(verdict);
    assert_eq!(
        (t.before.source, t.before.destination),
        before,
        "translation reports the packet as it arrived"
    );
    assert_checksums(&out);
    let (s, d) = endpoints(&out);
    assert_eq!(
        (t.after.source, t.after.destination),
        (s, d),
        "translation reports the packet as it left"
    );
    (s, d, out)
}

// ---------------------------------------------------------------------------------------
// A whole TCP connection through a NodePort with masquerade
// ---------------------------------------------------------------------------------------

/// (name, protocol, client, service address, endpoint set, masquerade source address)
type RoundTripRow = (
    &'static str,
    u8,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
);
/// (name, packets one a second, seconds to expiry after the last one)
type TimeoutRow = (&'static str, Vec<(Dir, &'static str)>, u64);
/// (name, client, service, error kind, router, quoted bytes of the post-NAT packet: None = all)
type IcmpErrorRow = (
    &'static str,
    &'static str,
    &'static str,
    IcmpError,
    &'static str,
    Option<usize>,
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Client to Service.
    Orig,
    /// Endpoint back to the client.
    Reply,
}

#[test]
fn full_tcp_connection_through_node_port_with_masquerade() {
    let mut state = reference::cluster("nodoa");
    let mut engine = Engine::new(&state);
    let client = sa("192.168.0.200:51000");
    let node_port = sa("192.168.0.101:30880");
    let pod = sa("10.10.0.105:80");
    let steps: &[(Dir, &str, &[u8])] = &[
        (Dir::Orig, "syn", b""),
        (Dir::Reply, "syn,ack", b""),
        (Dir::Orig, "ack", b""),
        (Dir::Orig, "ack", b"GET / HTTP/1.1\r\nHost: nginx\r\n\r\n"),
        (
            Dir::Reply,
            "ack",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ),
        (Dir::Orig, "fin,ack", b""),
        (Dir::Reply, "fin,ack", b""),
        (Dir::Orig, "ack", b""),
    ];
    let mut leaving: Option<(SocketAddr, SocketAddr)> = None;
    let mut last = 0;
    for (i, &(dir, flags, payload)) in steps.iter().enumerate() {
        let now = secs(i as u64);
        last = i as u64;
        if i == 4 {
            // nginx moves to another pod mid-connection: established TCP keeps its endpoint
            // (kube-proxy never flushes TCP conntrack entries).
            slice_mut(&mut state, "nginx").endpoints = vec![endpoint("10.10.0.205", "nodoc")];
            let flushed = engine.update(Update::UpsertEndpointSlice(Box::new(
                slice_mut(&mut state, "nginx").clone(),
            )));
            assert_eq!(flushed, 0, "TCP connections are never flushed");
            assert_eq!(engine.connections(), 1);
        }
        match dir {
            Dir::Orig => {
                let (s, d, out) =
                    forward_translated(&mut engine, tcp(client, node_port, flags, payload), now);
                assert_eq!(d, pod, "step {i}: DNAT to the nginx pod");
                assert_eq!(
                    s.ip(),
                    ip(NODE),
                    "step {i}: masqueraded to the node address"
                );
                assert_eq!(transport_payload(&out), payload, "step {i}: payload intact");
                match leaving {
                    None => leaving = Some((s, d)),
                    Some(first) => assert_eq!((s, d), first, "step {i}: same translated tuple"),
                }
            }
            Dir::Reply => {
                let (masq_source, _) = leaving.expect("reply after the first packet");
                let (s, d, out) =
                    forward_translated(&mut engine, tcp(pod, masq_source, flags, payload), now);
                assert_eq!(
                    (s, d),
                    (node_port, client),
                    "step {i}: reply comes from the NodePort"
                );
                assert_eq!(transport_payload(&out), payload, "step {i}: payload intact");
            }
        }
        assert_eq!(engine.connections(), 1, "step {i}: one connection");
    }
    assert_eq!(engine.counters().translated, steps.len() as u64);
    assert_eq!(engine.counters().total(), steps.len() as u64);
    // FIN both ways then the last ACK: TIME_WAIT, 120 s.
    assert_eq!(
        engine.poll_at(),
        Some(secs(last) + Duration::from_secs(120))
    );

    // A new connection uses the updated endpoint.
    let (_, d, _) = forward_translated(
        &mut engine,
        tcp(sa("192.168.0.200:51001"), node_port, "syn", b""),
        secs(20),
    );
    assert_eq!(d, sa("10.10.0.205:80"));
    assert_eq!(engine.connections(), 2);
}

// ---------------------------------------------------------------------------------------
// Forward, then reply: the reply is the exact mirror of the original
// ---------------------------------------------------------------------------------------

#[test]
fn reply_restores_the_original_tuple() {
    // (name, protocol, client, service address, endpoint set, masquerade source address)
    let rows: &[RoundTripRow] = &[
        (
            "v4 pod -> ClusterIP tcp",
            TCP,
            "10.10.0.50:40000",
            "10.10.1.101:3307",
            &["10.10.0.103:3306"],
            None,
        ),
        (
            "v4 pod -> ClusterIP udp",
            UDP,
            "10.10.0.50:40001",
            "10.10.1.10:53",
            &["10.10.0.10:53"],
            None,
        ),
        (
            "v4 pod -> dual-stack ClusterIP tcp",
            TCP,
            "10.10.0.50:40002",
            "10.10.1.120:7000",
            &["10.10.0.120:7", "10.10.0.121:7"],
            None,
        ),
        (
            "v4 external -> NodePort tcp",
            TCP,
            "192.168.0.200:50000",
            "192.168.0.101:30880",
            &["10.10.0.105:80"],
            Some(NODE),
        ),
        (
            "v4 pod -> NodePort tcp (ETP Cluster masquerades)",
            TCP,
            "10.10.0.50:40003",
            "192.168.0.101:30880",
            &["10.10.0.105:80"],
            Some(NODE),
        ),
        (
            "v4 external -> NodePort udp",
            UDP,
            "192.168.0.200:50001",
            "192.168.0.101:30991",
            &["10.10.0.120:7", "10.10.0.121:7"],
            Some(NODE),
        ),
        (
            "v6 pod -> ClusterIP tcp",
            TCP,
            "[fd00:10::50]:40000",
            "[fd00:10:1::120]:7000",
            &["[fd00:10::120]:7"],
            None,
        ),
        (
            "v6 pod -> ClusterIP udp",
            UDP,
            "[fd00:10::50]:40001",
            "[fd00:10:1::120]:7000",
            &["[fd00:10::120]:7"],
            None,
        ),
        (
            "v6 external -> NodePort tcp",
            TCP,
            "[fd00:192::200]:50000",
            "[fd00:192::101]:30990",
            &["[fd00:10::120]:7"],
            Some(NODE6),
        ),
        (
            "v6 external -> NodePort udp",
            UDP,
            "[fd00:192::200]:50001",
            "[fd00:192::101]:30991",
            &["[fd00:10::120]:7"],
            Some(NODE6),
        ),
    ];
    for &(name, protocol, client, service, allowed, masquerade) in rows {
        let mut engine = Engine::new(&dual_stack());
        let (client, service) = (sa(client), sa(service));
        let packet = match protocol {
            TCP => tcp(client, service, "syn", b"hello"),
            _ => udp(client, service, b"hello"),
        };
        let original = packet.clone();
        let (s, d, out) = forward_translated(&mut engine, packet, Instant::ZERO);
        assert!(
            allowed.iter().any(|e| sa(e) == d),
            "{name}: endpoint {d} not in {allowed:?}"
        );
        match masquerade {
            Some(address) => assert_eq!(s.ip(), ip(address), "{name}: masqueraded"),
            None => assert_eq!(s, client, "{name}: source kept"),
        }
        let reply = reply_to(&out, "syn,ack", b"world");
        let (rs, rd, reply_out) = forward_translated(&mut engine, reply, secs(1));
        assert_eq!(
            (rs, rd),
            (service, client),
            "{name}: reply mirrors the original"
        );
        assert_eq!(transport_payload(&reply_out), b"world", "{name}");
        // The reply packet is the original with addresses and ports swapped.
        let (os, od) = endpoints(&original);
        assert_eq!((rd, rs), (os, od), "{name}");
        assert_eq!(engine.connections(), 1, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------

#[test]
fn udp_expires_30s_unreplied_and_a_new_flow_moves_round_robin_on() {
    for explicit_expiry in [true, false] {
        let mut engine = Engine::new(&nodoa_two_dns());
        let client = sa("10.10.0.50:40000");
        let service = sa("10.10.1.10:53");
        let (_, first, _) =
            forward_translated(&mut engine, udp(client, service, b"q"), Instant::ZERO);
        assert_eq!(
            engine.poll_at(),
            Some(secs(30)),
            "nf_conntrack_udp_timeout is 30 s"
        );
        assert_eq!(engine.handle_timeout(just_before(30)), 0);
        assert_eq!(engine.connections(), 1);
        // Still tracked just before the deadline: the same endpoint, and the timer restarts.
        let (_, again, _) =
            forward_translated(&mut engine, udp(client, service, b"q"), just_before(30));
        assert_eq!(again, first);
        assert_eq!(
            engine.poll_at(),
            Some(just_before(60)),
            "each packet restarts the timer"
        );
        assert_eq!(engine.handle_timeout(just_before(60)), 1);
        assert_eq!(engine.connections(), 0);
        // A new flow: 30 s unreplied again.
        let (_, second, _) = forward_translated(&mut engine, udp(client, service, b"q"), secs(60));
        assert_ne!(
            second, first,
            "expired: a new connection, round robin moved on"
        );
        assert_eq!(engine.poll_at(), Some(secs(90)));
        let first = second;
        if explicit_expiry {
            assert_eq!(engine.handle_timeout(secs(90)), 1);
            assert_eq!(engine.connections(), 0);
            assert_eq!(engine.poll_at(), None);
        }
        // Without handle_timeout the stale entry is noticed on lookup.
        let (_, next, _) = forward_translated(&mut engine, udp(client, service, b"q"), secs(90));
        assert_ne!(
            next, first,
            "expired: a new connection, round robin moved on (explicit={explicit_expiry})"
        );
        assert_eq!(engine.connections(), 1);
    }
}

#[test]
fn udp_replied_lives_120s() {
    let mut engine = Engine::new(&nodoa_two_dns());
    let client = sa("10.10.0.50:40000");
    let service = sa("10.10.1.10:53");
    let (_, _, out) = forward_translated(&mut engine, udp(client, service, b"q"), Instant::ZERO);
    forward_translated(&mut engine, reply_to(&out, "", b"a"), secs(5));
    assert_eq!(
        engine.poll_at(),
        Some(secs(125)),
        "nf_conntrack_udp_timeout_stream is 120 s"
    );
    forward_translated(&mut engine, udp(client, service, b"q"), secs(100));
    assert_eq!(
        engine.poll_at(),
        Some(secs(220)),
        "stays a stream after the reply"
    );
    assert_eq!(engine.handle_timeout(just_before(220)), 0);
    assert_eq!(engine.handle_timeout(secs(220)), 1);
    assert_eq!(engine.connections(), 0);
}

/// Replays a TCP exchange on one connection (pod client -> wp-service), one packet a second,
/// and returns the engine and the time of the last packet.
fn tcp_exchange(steps: &[(Dir, &str)]) -> (Engine, u64, SocketAddr) {
    let mut engine = Engine::new(&reference::cluster("nodoa"));
    let client = sa("10.10.0.50:41000");
    let service = sa("10.10.1.102:8080");
    let mut pod = None;
    for (i, &(dir, flags)) in steps.iter().enumerate() {
        let now = secs(i as u64);
        match dir {
            Dir::Orig => {
                let (_, d, _) =
                    forward_translated(&mut engine, tcp(client, service, flags, b""), now);
                if let Some(p) = pod {
                    assert_eq!(d, p);
                }
                pod = Some(d);
            }
            Dir::Reply => {
                let (s, d, _) =
                    forward_translated(&mut engine, tcp(pod.unwrap(), client, flags, b""), now);
                assert_eq!((s, d), (service, client));
            }
        }
    }
    (engine, steps.len() as u64 - 1, pod.unwrap())
}

const HANDSHAKE: [(Dir, &str); 3] = [
    (Dir::Orig, "syn"),
    (Dir::Reply, "syn,ack"),
    (Dir::Orig, "ack"),
];

fn with_handshake(rest: &[(Dir, &'static str)]) -> Vec<(Dir, &'static str)> {
    HANDSHAKE
        .iter()
        .copied()
        .chain(rest.iter().copied())
        .collect()
}

fn check_tcp_timeout(name: &str, steps: &[(Dir, &'static str)], timeout: u64) {
    let (mut engine, last, _) = tcp_exchange(steps);
    assert_eq!(
        engine.poll_at(),
        Some(secs(last + timeout)),
        "{name}: deadline {timeout} s after the last packet"
    );
    assert_eq!(
        engine.handle_timeout(just_before(last + timeout)),
        0,
        "{name}"
    );
    assert_eq!(engine.connections(), 1, "{name}");
    assert_eq!(engine.handle_timeout(secs(last + timeout)), 1, "{name}");
    assert_eq!(engine.connections(), 0, "{name}");
}

#[test]
fn tcp_state_timeouts() {
    // Linux conntrack TCP state machine, kernel default timeouts, kube-proxy's
    // tcpEstablishedTimeout of 24 h.
    let rows: Vec<TimeoutRow> = vec![
        ("SYN_SENT", vec![(Dir::Orig, "syn")], 120),
        (
            "SYN_SENT, SYN retransmitted",
            vec![(Dir::Orig, "syn"), (Dir::Orig, "syn")],
            120,
        ),
        (
            "SYN_RECV",
            vec![(Dir::Orig, "syn"), (Dir::Reply, "syn,ack")],
            60,
        ),
        ("ESTABLISHED", HANDSHAKE.to_vec(), 86_400),
        (
            "ESTABLISHED with data",
            with_handshake(&[(Dir::Orig, "ack"), (Dir::Reply, "ack")]),
            86_400,
        ),
        (
            "FIN_WAIT: client FIN",
            with_handshake(&[(Dir::Orig, "fin,ack")]),
            120,
        ),
        (
            "LAST_ACK: FIN both ways",
            with_handshake(&[(Dir::Orig, "fin,ack"), (Dir::Reply, "fin,ack")]),
            30,
        ),
        (
            "TIME_WAIT: FIN both ways, last ACK",
            with_handshake(&[
                (Dir::Orig, "fin,ack"),
                (Dir::Reply, "fin,ack"),
                (Dir::Orig, "ack"),
            ]),
            120,
        ),
        (
            "CLOSE: RST from the endpoint",
            with_handshake(&[(Dir::Reply, "rst")]),
            10,
        ),
        (
            "CLOSE: RST from the client",
            with_handshake(&[(Dir::Orig, "rst")]),
            10,
        ),
        (
            "CLOSE: RST answering a SYN",
            vec![(Dir::Orig, "syn"), (Dir::Reply, "rst")],
            10,
        ),
    ];
    for (name, steps, timeout) in rows {
        check_tcp_timeout(name, &steps, timeout);
    }
}

#[test]
fn tcp_half_close_timeouts_follow_linux() {
    // nf_conntrack_proto_tcp.c tcp_conntracks[]: in both directions `fin` takes sES -> sFW
    // and `ack` takes sFW -> sCW ("Normal close request answered by ACK").
    let rows: Vec<TimeoutRow> = vec![
        (
            "server closes first: FIN_WAIT",
            with_handshake(&[(Dir::Reply, "fin,ack")]),
            120,
        ),
        (
            "client FIN acked by server: CLOSE_WAIT",
            with_handshake(&[(Dir::Orig, "fin,ack"), (Dir::Reply, "ack")]),
            3_600,
        ),
        (
            "server FIN acked by client: CLOSE_WAIT",
            with_handshake(&[(Dir::Reply, "fin,ack"), (Dir::Orig, "ack")]),
            3_600,
        ),
    ];
    for (name, steps, timeout) in rows {
        check_tcp_timeout(name, &steps, timeout);
    }
}

#[test]
fn expired_tcp_connection_is_new_and_round_robin_moves_on() {
    let (mut engine, last, first) = tcp_exchange(&HANDSHAKE);
    let client = sa("10.10.0.50:41000");
    let service = sa("10.10.1.102:8080");
    let deadline = last + 86_400;
    assert_eq!(engine.handle_timeout(secs(deadline)), 1);
    let (_, d, _) = forward_translated(
        &mut engine,
        tcp(client, service, "syn", b""),
        secs(deadline + 1),
    );
    assert_ne!(d, first, "a new connection picks the next endpoint");
    assert_eq!(engine.poll_at(), Some(secs(deadline + 1 + 120)));
}

#[test]
fn time_never_goes_backwards() {
    let mut engine = Engine::new(&nodoa_two_dns());
    let service = sa("10.10.1.10:53");
    let a = sa("10.10.0.50:40000");
    let b = sa("10.10.0.50:40001");
    let (_, a_pod, _) = forward_translated(&mut engine, udp(a, service, b"q"), secs(100));
    // A caller whose clock stepped back: the engine keeps its latest time.
    forward_translated(&mut engine, udp(b, service, b"q"), secs(50));
    let (_, a_again, _) = forward_translated(&mut engine, udp(a, service, b"q"), secs(60));
    assert_eq!(a_again, a_pod, "an earlier time does not expire anything");
    assert_eq!(engine.handle_timeout(secs(10)), 0);
    assert_eq!(
        engine.poll_at(),
        Some(secs(130)),
        "both timers run from t=100, not from t=50/60"
    );
    assert_eq!(engine.handle_timeout(just_before(130)), 0);
    assert_eq!(engine.connections(), 2);
    assert_eq!(engine.handle_timeout(secs(130)), 2);
    assert_eq!(engine.connections(), 0);
    // And an earlier time afterwards still works.
    forward_translated(&mut engine, udp(a, service, b"q"), secs(1));
    assert_eq!(engine.poll_at(), Some(secs(160)));
}

// ---------------------------------------------------------------------------------------
// RST and reopening
// ---------------------------------------------------------------------------------------

#[test]
fn new_syn_on_a_closed_or_time_wait_tuple_is_a_new_connection() {
    let rows: Vec<(&str, Vec<(Dir, &str)>)> = vec![
        ("CLOSE after RST", with_handshake(&[(Dir::Reply, "rst")])),
        (
            "TIME_WAIT",
            with_handshake(&[
                (Dir::Orig, "fin,ack"),
                (Dir::Reply, "fin,ack"),
                (Dir::Orig, "ack"),
            ]),
        ),
    ];
    for (name, steps) in rows {
        let (mut engine, last, first) = tcp_exchange(&steps);
        let client = sa("10.10.0.50:41000");
        let service = sa("10.10.1.102:8080");
        // Linux: sTW/sCL + SYN -> sSS, "Reopened connection (RFC 1122)".
        let (_, d, _) = forward_translated(
            &mut engine,
            tcp(client, service, "syn", b""),
            secs(last + 1),
        );
        assert_ne!(
            d, first,
            "{name}: the new connection picks the next endpoint"
        );
        assert_eq!(engine.connections(), 1, "{name}: the old entry is replaced");
        assert_eq!(
            engine.poll_at(),
            Some(secs(last + 1 + 120)),
            "{name}: SYN_SENT again"
        );
        // The reply goes back through the new connection.
        let (s, dd, _) =
            forward_translated(&mut engine, tcp(d, client, "syn,ack", b""), secs(last + 2));
        assert_eq!((s, dd), (service, client), "{name}");
    }
}

#[test]
fn syn_on_an_established_tuple_keeps_the_connection() {
    let (mut engine, last, first) = tcp_exchange(&HANDSHAKE);
    let (_, d, _) = forward_translated(
        &mut engine,
        tcp(sa("10.10.0.50:41000"), sa("10.10.1.102:8080"), "syn", b""),
        secs(last + 1),
    );
    assert_eq!(
        d, first,
        "sES + SYN is ignored by Linux, not a new connection"
    );
    assert_eq!(engine.connections(), 1);
}

// ---------------------------------------------------------------------------------------
// Conntrack full
// ---------------------------------------------------------------------------------------

#[test]
fn full_table_drops_new_flows_and_keeps_established_ones() {
    let mut state = nodoa_two_dns();
    state.proxy.conntrack_capacity = 4;
    let mut engine = Engine::new(&state);
    let service = sa("10.10.1.10:53");
    let mut leaving = Vec::new();
    for port in 0..4u16 {
        let client = SocketAddr::new(ip("10.10.0.50"), 40000 + port);
        let (_, _, out) = forward_translated(&mut engine, udp(client, service, b"q"), secs(0));
        // Replied (ASSURED) entries are never early-dropped by Linux to make room.
        forward_translated(&mut engine, reply_to(&out, "", b"a"), secs(1));
        leaving.push(out);
    }
    assert_eq!(engine.connections(), 4);
    let new_flows = [
        (
            "new UDP flow to a Service",
            udp(sa("10.10.0.50:40004"), service, b"q"),
        ),
        (
            "new TCP flow to a Service",
            tcp(sa("10.10.0.50:40005"), sa("10.10.1.101:3307"), "syn", b""),
        ),
        (
            "new flow not to a Service",
            udp(sa("10.10.0.50:40006"), sa("10.10.0.77:9999"), b"q"),
        ),
    ];
    let mut full = 0;
    for (name, packet) in new_flows {
        let copy = packet.clone();
        let (verdict, out) = forward(&mut engine, packet, secs(2));
        assert_eq!(verdict, Verdict::Drop(DropReason::ConntrackFull), "{name}");
        assert_eq!(out, copy, "{name}: a dropped packet is not rewritten");
        full += 1;
    }
    // Established flows keep working both ways.
    for (port, out) in (0..4u16).zip(&leaving) {
        let client = SocketAddr::new(ip("10.10.0.50"), 40000 + port);
        let (_, d, _) = forward_translated(&mut engine, udp(client, service, b"q"), secs(3));
        assert_eq!(d, endpoints(out).1);
        let (s, dd, _) = forward_translated(&mut engine, reply_to(out, "", b"a"), secs(3));
        assert_eq!((s, dd), (service, client));
    }
    assert_eq!(engine.counters().drops(DropReason::ConntrackFull), full);
    assert_eq!(engine.counters().dropped, full);
    assert_eq!(engine.connections(), 4);
    // Once the replied entries time out (120 s), there is room again, without handle_timeout.
    forward_translated(
        &mut engine,
        udp(sa("10.10.0.50:40004"), service, b"q"),
        secs(3 + 120),
    );
    assert_eq!(engine.connections(), 1);
}

#[test]
fn capacity_is_per_family() {
    let mut state = dual_stack();
    state.proxy.conntrack_capacity = 1;
    let mut engine = Engine::new(&state);
    forward_translated(
        &mut engine,
        udp(sa("10.10.0.50:1"), sa("10.10.1.10:53"), b"q"),
        secs(0),
    );
    forward_translated(
        &mut engine,
        udp(sa("[fd00:10::50]:1"), sa("[fd00:10:1::120]:7000"), b"q"),
        secs(0),
    );
    let (verdict, _) = forward(
        &mut engine,
        udp(sa("10.10.0.50:2"), sa("10.10.1.10:53"), b"q"),
        secs(0),
    );
    assert_eq!(verdict, Verdict::Drop(DropReason::ConntrackFull));
    let (verdict, _) = forward(
        &mut engine,
        udp(sa("[fd00:10::50]:2"), sa("[fd00:10:1::120]:7000"), b"q"),
        secs(0),
    );
    assert_eq!(verdict, Verdict::Drop(DropReason::ConntrackFull));
    assert_eq!(engine.connections(), 2);
}

// ---------------------------------------------------------------------------------------
// Masquerade source ports
// ---------------------------------------------------------------------------------------

#[test]
fn masquerade_ports_exhausted_per_endpoint() {
    let mut state = reference::cluster("nodoa");
    state.proxy.masquerade_ports = 40000..=40001;
    let mut engine = Engine::new(&state);
    let node_port = sa("192.168.0.101:30880");
    let ports = 40000..=40001u16;
    let mut live = BTreeSet::new();
    let mut leaving = Vec::new();
    for client in ["192.168.0.200:50000", "192.168.0.201:50000"] {
        let (s, d, out) =
            forward_translated(&mut engine, tcp(sa(client), node_port, "syn", b""), secs(0));
        assert_eq!(s.ip(), ip(NODE));
        assert!(
            ports.contains(&s.port()),
            "port {} outside the range",
            s.port()
        );
        assert!(
            live.insert((s, d)),
            "two live connections share a translated tuple"
        );
        leaving.push(out);
    }
    // Every (node address, port) towards 10.10.0.105:80 is taken, whoever the client is.
    let mut exhausted = 0;
    for client in ["192.168.0.200:50001", "192.168.0.202:50000"] {
        let packet = tcp(sa(client), node_port, "syn", b"");
        let copy = packet.clone();
        let (verdict, out) = forward(&mut engine, packet, secs(1));
        assert_eq!(
            verdict,
            Verdict::Drop(DropReason::MasqueradePortsExhausted),
            "{client}"
        );
        assert_eq!(out, copy);
        exhausted += 1;
    }
    assert_eq!(
        engine
            .counters()
            .drops(DropReason::MasqueradePortsExhausted),
        exhausted
    );
    // Another endpoint has its own tuple space: an off-cluster client to wp-service
    // (masqueraded: source outside the cluster CIDR) still gets a port.
    let (s, d, _) = forward_translated(
        &mut engine,
        tcp(
            sa("192.168.0.200:50002"),
            sa("10.10.1.102:8080"),
            "syn",
            b"",
        ),
        secs(1),
    );
    assert!(ports.contains(&s.port()));
    assert!(live.insert((s, d)));
    // Established connections keep working.
    for out in &leaving {
        let (rs, rd, _) = forward_translated(&mut engine, reply_to(out, "syn,ack", b""), secs(2));
        assert_eq!(rs, node_port);
        assert!(rd.ip() == ip("192.168.0.200") || rd.ip() == ip("192.168.0.201"));
    }
    // A RST closes the first one (CLOSE, 10 s); once it expires its port is free again.
    forward_translated(&mut engine, reply_to(&leaving[0], "rst", b""), secs(3));
    assert_eq!(engine.handle_timeout(secs(13)), 1);
    let freed = endpoints(&leaving[0]).0;
    let (s, d, _) = forward_translated(
        &mut engine,
        tcp(sa("192.168.0.203:50000"), node_port, "syn", b""),
        secs(14),
    );
    assert_eq!(
        (s, d),
        (freed, sa("10.10.0.105:80")),
        "the only free port is the freed one"
    );
}

#[test]
fn masquerade_never_reuses_the_tuple_of_an_untranslated_flow() {
    let mut state = reference::cluster("nodoa");
    state.proxy.masquerade_ports = 40000..=40001;
    let mut engine = Engine::new(&state);
    // The node itself talks to the nginx pod from 192.168.0.101:40000: no Service, tracked.
    let mut direct = tcp(sa("192.168.0.101:40000"), sa("10.10.0.105:80"), "syn", b"");
    let copy = direct.clone();
    assert_eq!(
        engine.process_path(Path::LocalOut, &mut direct, secs(0)),
        Verdict::Accept
    );
    assert_eq!(direct, copy);
    let (s, _, _) = forward_translated(
        &mut engine,
        tcp(
            sa("192.168.0.200:50000"),
            sa("192.168.0.101:30880"),
            "syn",
            b"",
        ),
        secs(0),
    );
    assert_eq!(
        s,
        sa("192.168.0.101:40001"),
        "40000 towards 10.10.0.105:80 is in use"
    );
    let (verdict, _) = forward(
        &mut engine,
        tcp(
            sa("192.168.0.200:50001"),
            sa("192.168.0.101:30880"),
            "syn",
            b"",
        ),
        secs(0),
    );
    assert_eq!(verdict, Verdict::Drop(DropReason::MasqueradePortsExhausted));
}

// ---------------------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------------------

/// Two UDP and two TCP flows to kube-dns, one of each on each pod. Returns
/// (engine, state, [udp flow leaving packets], [tcp flow leaving packets]).
fn dns_flows() -> (Engine, ClusterState, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let state = nodoa_two_dns();
    let mut engine = Engine::new(&state);
    let mut udp_out = Vec::new();
    let mut tcp_out = Vec::new();
    for port in 0..2u16 {
        let client = SocketAddr::new(ip("10.10.0.50"), 40000 + port);
        let (_, _, out) =
            forward_translated(&mut engine, udp(client, sa("10.10.1.10:53"), b"q"), secs(0));
        udp_out.push(out);
        let client = SocketAddr::new(ip("10.10.0.50"), 41000 + port);
        let (_, _, out) = forward_translated(
            &mut engine,
            tcp(client, sa("10.10.1.10:53"), "syn", b""),
            secs(0),
        );
        tcp_out.push(out);
    }
    let pods = |flows: &[Vec<u8>]| {
        flows
            .iter()
            .map(|p| endpoints(p).1.ip())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(pods(&udp_out).len(), 2, "round robin spreads the UDP flows");
    assert_eq!(pods(&tcp_out).len(), 2, "round robin spreads the TCP flows");
    (engine, state, udp_out, tcp_out)
}

fn dns_pod_of(packet: &[u8]) -> SocketAddr {
    endpoints(packet).1
}

#[test]
fn removing_an_endpoint_flushes_its_udp_flows_but_not_tcp() {
    let (mut engine, mut state, udp_out, tcp_out) = dns_flows();
    let gone = dns_pod_of(&udp_out[1]);
    let kept = dns_pod_of(&udp_out[0]);
    slice_mut(&mut state, "kube-dns")
        .endpoints
        .retain(|e| e.addresses[0] != gone.ip());
    let flushed = engine.update(Update::UpsertEndpointSlice(Box::new(
        slice_mut(&mut state, "kube-dns").clone(),
    )));
    assert_eq!(flushed, 1, "the UDP flow to the removed pod is flushed");
    assert_eq!(engine.connections(), 3);
    // The flushed UDP flow's next packet is a new connection to a live pod.
    let client = endpoints(&udp_out[1]).0;
    let (_, d, _) =
        forward_translated(&mut engine, udp(client, sa("10.10.1.10:53"), b"q"), secs(1));
    assert_eq!(d, kept);
    // The other UDP flow is untouched.
    let (_, d, _) = forward_translated(
        &mut engine,
        udp(endpoints(&udp_out[0]).0, sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(d, kept);
    // TCP flows keep their pod, even the removed one (it drains).
    for out in &tcp_out {
        let (client, pod) = endpoints(out);
        let (_, d, _) = forward_translated(
            &mut engine,
            tcp(client, sa("10.10.1.10:53"), "ack", b""),
            secs(1),
        );
        assert_eq!(d, pod);
    }
    assert_eq!(engine.connections(), 4);
}

#[test]
fn udp_flow_to_a_serving_terminating_endpoint_is_not_flushed() {
    let (mut engine, mut state, udp_out, _) = dns_flows();
    let draining = dns_pod_of(&udp_out[1]);
    for e in &mut slice_mut(&mut state, "kube-dns").endpoints {
        if e.addresses[0] == draining.ip() {
            e.conditions = EndpointConditions {
                ready: false,
                serving: true,
                terminating: true,
            };
        }
    }
    let flushed = engine.update(Update::UpsertEndpointSlice(Box::new(
        slice_mut(&mut state, "kube-dns").clone(),
    )));
    assert_eq!(
        flushed, 0,
        "pkg/proxy/conntrack/cleanup.go: endpoint.IsServing() keeps the flow"
    );
    let (_, d, _) = forward_translated(
        &mut engine,
        udp(endpoints(&udp_out[1]).0, sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(d, draining);
}

#[test]
fn udp_flows_survive_when_no_endpoint_is_left() {
    // CleanStaleEntries: "a Service without endpoints does not require to clean the
    // conntrack entries associated".
    let (mut engine, mut state, udp_out, _) = dns_flows();
    slice_mut(&mut state, "kube-dns").endpoints.clear();
    let flushed = engine.update(Update::UpsertEndpointSlice(Box::new(
        slice_mut(&mut state, "kube-dns").clone(),
    )));
    assert_eq!(flushed, 0);
    assert_eq!(engine.connections(), 4);
    let (client, pod) = endpoints(&udp_out[0]);
    let (_, d, _) =
        forward_translated(&mut engine, udp(client, sa("10.10.1.10:53"), b"q"), secs(1));
    assert_eq!(d, pod, "tracked flows keep their DNAT");
    let (verdict, _) = forward(
        &mut engine,
        udp(sa("10.10.0.50:45000"), sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(
        verdict,
        Verdict::Reject(RejectReason::NoEndpoints),
        "new flows are rejected"
    );
}

#[test]
fn removing_a_node_port_endpoint_flushes_udp_node_port_flows() {
    let mut state = dual_stack();
    let mut engine = Engine::new(&state);
    let node_port = sa("192.168.0.101:30991");
    let mut outs = Vec::new();
    for client in ["192.168.0.200:6000", "192.168.0.200:6001"] {
        let (_, _, out) =
            forward_translated(&mut engine, udp(sa(client), node_port, b"q"), secs(0));
        outs.push(out);
    }
    let gone = endpoints(&outs[1]).1;
    let kept = endpoints(&outs[0]).1;
    assert_ne!(gone, kept);
    let slice = state
        .endpoint_slices
        .iter_mut()
        .find(|s| s.name == "echo-v4")
        .unwrap();
    slice.endpoints.retain(|e| e.addresses[0] != gone.ip());
    let slice = slice.clone();
    assert_eq!(
        engine.update(Update::UpsertEndpointSlice(Box::new(slice))),
        1
    );
    let (s, d, _) = forward_translated(
        &mut engine,
        udp(sa("192.168.0.200:6001"), node_port, b"q"),
        secs(1),
    );
    assert_eq!(d, kept);
    assert_eq!(s.ip(), ip(NODE));
}

#[test]
fn removing_a_service_keeps_tracked_flows_and_guards_its_address() {
    let (mut engine, _, udp_out, tcp_out) = dns_flows();
    assert_eq!(engine.update(Update::RemoveService(dns())), 0);
    assert_eq!(engine.connections(), 4);
    for out in udp_out.iter().chain(&tcp_out) {
        let (client, pod) = endpoints(out);
        let packet = match transport_protocol(out) {
            TCP => tcp(client, sa("10.10.1.10:53"), "ack", b""),
            _ => udp(client, sa("10.10.1.10:53"), b"q"),
        };
        let (_, d, _) = forward_translated(&mut engine, packet, secs(1));
        assert_eq!(d, pod);
    }
    // nftables mode: the address is no longer allocated but inside the service CIDR.
    let (verdict, _) = forward(
        &mut engine,
        udp(sa("10.10.0.50:45000"), sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(verdict, Verdict::Drop(DropReason::UnallocatedServiceIp));
}

#[test]
fn replace_flushes_stale_udp_and_keeps_tcp() {
    let (mut engine, state, udp_out, tcp_out) = dns_flows();
    // Replacing with the same state changes nothing.
    assert_eq!(engine.update(Update::Replace(Box::new(state.clone()))), 0);
    assert_eq!(engine.connections(), 4);
    let gone = dns_pod_of(&udp_out[1]);
    let kept = dns_pod_of(&udp_out[0]);
    let mut next = state.clone();
    slice_mut(&mut next, "kube-dns")
        .endpoints
        .retain(|e| e.addresses[0] != gone.ip());
    assert_eq!(engine.update(Update::Replace(Box::new(next))), 1);
    assert_eq!(engine.connections(), 3);
    let (_, d, _) = forward_translated(
        &mut engine,
        udp(endpoints(&udp_out[1]).0, sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(d, kept);
    for out in &tcp_out {
        let (client, pod) = endpoints(out);
        let (_, d, _) = forward_translated(
            &mut engine,
            tcp(client, sa("10.10.1.10:53"), "ack", b""),
            secs(1),
        );
        assert_eq!(d, pod);
    }
}

// ---------------------------------------------------------------------------------------
// Reject replies
// ---------------------------------------------------------------------------------------

#[test]
fn reject_replies_are_icmp_port_unreachable() {
    let mut state = dual_stack();
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
        let mut engine = Engine::new(&dual_stack());
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
            t.icmp_error,
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
    let mut engine = Engine::new(&dual_stack());
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

fn echo_request(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut out, b"ping")
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut out, b"ping")
            .unwrap(),
        _ => panic!("mixed"),
    }
    out
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
        let mut state = dual_stack();
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

// ---------------------------------------------------------------------------------------
// Malformed input and fragments
// ---------------------------------------------------------------------------------------

/// Rewrites an IPv4 packet's total length (and header checksum) to `len` and cuts it there.
fn ipv4_cut_consistently(packet: &[u8], len: usize) -> Vec<u8> {
    let (mut header, _) = Ipv4Header::from_slice(packet).unwrap();
    header.total_len = len as u16;
    header.header_checksum = header.calc_header_checksum();
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&packet[out.len()..len]);
    out
}

fn ipv6_cut_consistently(packet: &[u8], len: usize) -> Vec<u8> {
    let mut out = packet[..len].to_vec();
    out[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    out
}

struct Tally {
    engine: Engine,
    seen: u64,
    drops: HashMap<DropReason, u64>,
}

impl Tally {
    fn check(&mut self, name: &str, mut packet: Vec<u8>, expected: Verdict) {
        let copy = packet.clone();
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.engine
                .process_path(Path::Forward, &mut packet, secs(0))
        }))
        .unwrap_or_else(|_| panic!("{name}: the engine panicked"));
        self.seen += 1;
        if let Verdict::Drop(reason) = verdict {
            *self.drops.entry(reason).or_default() += 1;
            assert_eq!(packet, copy, "{name}: a dropped packet is not rewritten");
        }
        assert_eq!(verdict, expected, "{name}");
    }
}

#[test]
fn malformed_packets_are_dropped_with_a_reason() {
    let mut t = Tally {
        engine: Engine::new(&dual_stack()),
        seen: 0,
        drops: HashMap::new(),
    };
    let malformed_ip = Verdict::Drop(DropReason::MalformedIpHeader);
    let malformed_l4 = Verdict::Drop(DropReason::MalformedTransportHeader);
    let v4 = tcp(
        sa("10.10.0.50:40000"),
        sa("10.10.1.101:3307"),
        "syn",
        b"abc",
    );
    let v6 = tcp(
        sa("[fd00:10::50]:40000"),
        sa("[fd00:10:1::120]:7000"),
        "syn",
        b"abc",
    );
    let v4_udp = udp(sa("10.10.0.50:40001"), sa("10.10.1.10:53"), b"abc");
    let v6_udp = udp(
        sa("[fd00:10::50]:40001"),
        sa("[fd00:10:1::120]:7000"),
        b"abc",
    );

    t.check("empty", Vec::new(), malformed_ip);
    t.check(
        "version 5",
        {
            let mut p = v4.clone();
            p[0] = 0x55;
            p
        },
        malformed_ip,
    );
    t.check(
        "version 0",
        {
            let mut p = v4.clone();
            p[0] = 0x05;
            p
        },
        malformed_ip,
    );
    t.check(
        "IPv4 IHL 4",
        {
            let mut p = v4.clone();
            p[0] = 0x44;
            p
        },
        malformed_ip,
    );
    // Cut anywhere: inside the IP header, or after it while the header claims more.
    for len in 1..v4.len() {
        t.check(
            &format!("IPv4 cut at {len}"),
            v4[..len].to_vec(),
            malformed_ip,
        );
    }
    for len in 1..v6.len() {
        t.check(
            &format!("IPv6 cut at {len}"),
            v6[..len].to_vec(),
            malformed_ip,
        );
    }
    // Total length lies.
    for total in [0u16, 10, 19] {
        let mut p = v4.clone();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        t.check(&format!("IPv4 total length {total}"), p, malformed_ip);
    }
    {
        let mut p = v4.clone();
        let total = (p.len() + 1) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        t.check("IPv4 total length one past the buffer", p, malformed_ip);
        let mut p = v6.clone();
        let payload = (p.len() - 40 + 1) as u16;
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        t.check("IPv6 payload length one past the buffer", p, malformed_ip);
    }
    // Transport header cut short inside a consistent IP packet.
    for len in 20..40 {
        t.check(
            &format!("IPv4 TCP header cut to {}", len - 20),
            ipv4_cut_consistently(&v4, len),
            malformed_l4,
        );
    }
    for len in 40..60 {
        t.check(
            &format!("IPv6 TCP header cut to {}", len - 40),
            ipv6_cut_consistently(&v6, len),
            malformed_l4,
        );
    }
    for len in 20..28 {
        t.check(
            &format!("IPv4 UDP header cut to {}", len - 20),
            ipv4_cut_consistently(&v4_udp, len),
            malformed_l4,
        );
    }
    for len in 40..48 {
        t.check(
            &format!("IPv6 UDP header cut to {}", len - 40),
            ipv6_cut_consistently(&v6_udp, len),
            malformed_l4,
        );
    }
    // Impossible transport lengths.
    t.check(
        "TCP data offset 4",
        {
            let mut p = v4.clone();
            p[20 + 12] = 0x40;
            p
        },
        malformed_l4,
    );
    t.check(
        "TCP data offset past the packet",
        {
            let mut p = v4.clone();
            p[20 + 12] = 0xf0;
            p
        },
        malformed_l4,
    );
    t.check(
        "UDP length 7",
        {
            let mut p = v4_udp.clone();
            p[24..26].copy_from_slice(&7u16.to_be_bytes());
            p
        },
        malformed_l4,
    );
    t.check(
        "UDP length past the packet",
        {
            let mut p = v4_udp.clone();
            p[24..26].copy_from_slice(&100u16.to_be_bytes());
            p
        },
        malformed_l4,
    );
    t.check(
        "IPv6 UDP length past the packet",
        {
            let mut p = v6_udp.clone();
            p[44..46].copy_from_slice(&100u16.to_be_bytes());
            p
        },
        malformed_l4,
    );

    // Capture padding after the datagram is not a lie: the packet is handled.
    {
        let mut p = v4.clone();
        p.extend_from_slice(&[0xee; 6]);
        let verdict = t.engine.process_path(Path::Forward, &mut p, secs(0));
        t.seen += 1;
        translated(verdict);
        assert_eq!(&p[p.len() - 6..], &[0xee; 6], "padding untouched");
    }

    assert_eq!(
        t.engine.counters().total(),
        t.seen,
        "counters add up to packets seen"
    );
    for (reason, count) in &t.drops {
        assert_eq!(t.engine.counters().drops(*reason), *count, "{reason}");
    }
    assert_eq!(t.engine.counters().dropped, t.drops.values().sum::<u64>());
    assert_eq!(t.engine.counters().translated, 1);
}

/// A UDP datagram with the don't-fragment bit set.
fn v4_dont_fragment(src: &str, dst: &str) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("v4 only")
    };
    let mut header = Ipv4Header::new(0, 64, IpNumber::UDP, s.octets(), d.octets()).unwrap();
    header.dont_fragment = true;
    let mut out = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(header, Default::default()))
        .udp(src.port(), dst.port())
        .write(&mut out, b"0123456789abcdef")
        .unwrap();
    out
}

/// Splits a whole IP datagram (no extension headers) into two fragments, the first
/// carrying `first_len` bytes of the transport (a multiple of 8), built with etherparse.
fn split(datagram: &[u8], first_len: usize, id: u16) -> [Vec<u8>; 2] {
    assert_eq!(first_len % 8, 0);
    match datagram[0] >> 4 {
        4 => {
            let (header, l4) = Ipv4Header::from_slice(datagram).unwrap();
            let l4 = &l4[..usize::from(header.total_len) - header.header_len()];
            let make = |offset: usize, data: &[u8], more: bool| {
                let mut h = header.clone();
                h.identification = id;
                h.more_fragments = more;
                h.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
                h.set_payload_len(data.len()).unwrap();
                h.header_checksum = h.calc_header_checksum();
                let mut out = h.to_bytes().to_vec();
                out.extend_from_slice(data);
                out
            };
            [
                make(0, &l4[..first_len], true),
                make(first_len, &l4[first_len..], false),
            ]
        }
        6 => {
            let (header, l4) = Ipv6Header::from_slice(datagram).unwrap();
            let l4 = &l4[..usize::from(header.payload_length)];
            let make = |offset: usize, data: &[u8], more: bool| {
                let fragment = Ipv6FragmentHeader::new(
                    header.next_header,
                    IpFragOffset::try_new((offset / 8) as u16).unwrap(),
                    more,
                    u32::from(id),
                );
                let mut h = header.clone();
                h.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
                h.payload_length = (Ipv6FragmentHeader::LEN + data.len()) as u16;
                let mut out = h.to_bytes().to_vec();
                out.extend_from_slice(&fragment.to_bytes());
                out.extend_from_slice(data);
                out
            };
            [
                make(0, &l4[..first_len], true),
                make(first_len, &l4[first_len..], false),
            ]
        }
        v => panic!("version {v}"),
    }
}

/// Reassembles two fragments made by [`split`] (possibly rewritten since) into one datagram.
fn reassemble(fragments: &[Vec<u8>; 2]) -> Vec<u8> {
    let sliced: Vec<_> = fragments
        .iter()
        .map(|f| etherparse::IpSlice::from_slice(f).unwrap())
        .collect();
    let mut l4 = Vec::new();
    for s in &sliced {
        assert!(s.payload().fragmented, "still a fragment");
        l4.extend_from_slice(s.payload().payload);
    }
    match &sliced[0] {
        etherparse::IpSlice::Ipv4(v4) => {
            let mut h = v4.header().to_header();
            h.more_fragments = false;
            h.fragment_offset = IpFragOffset::ZERO;
            h.set_payload_len(l4.len()).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            out
        }
        etherparse::IpSlice::Ipv6(v6) => {
            let mut h = v6.header().to_header();
            h.next_header = v6.payload().ip_number;
            h.payload_length = l4.len() as u16;
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&l4);
            out
        }
    }
}

#[test]
fn fragments_follow_their_first_fragment() {
    // netfilter reassembles before NAT, so every fragment of a datagram to a Service is
    // translated like the whole datagram would be; reassembled, it must be the translated
    // datagram with valid checksums.
    // (name, datagram, endpoint)
    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "v4 udp",
            udp(sa("10.10.0.50:40000"), sa("10.10.1.10:53"), &[7u8; 100]),
            "10.10.0.10:53",
        ),
        (
            "v4 tcp",
            tcp(
                sa("10.10.0.50:40001"),
                sa("10.10.1.101:3307"),
                "syn",
                &[7u8; 100],
            ),
            "10.10.0.103:3306",
        ),
        (
            "v6 udp",
            udp(
                sa("[fd00:10::50]:40000"),
                sa("[fd00:10:1::120]:7000"),
                &[7u8; 100],
            ),
            "[fd00:10::120]:7",
        ),
        (
            "v6 tcp",
            tcp(
                sa("[fd00:10::50]:40001"),
                sa("[fd00:10:1::120]:7000"),
                "syn",
                &[7u8; 100],
            ),
            "[fd00:10::120]:7",
        ),
    ];
    for (id, (name, datagram, pod)) in rows.into_iter().enumerate() {
        let mut engine = Engine::new(&dual_stack());
        let (client, _) = endpoints(&datagram);
        let [first, second] = split(&datagram, 32, 100 + id as u16);
        let mut out = [first, second];
        for (i, fragment) in out.iter_mut().enumerate() {
            let verdict = engine.process_path(Path::Forward, fragment, secs(0));
            assert!(
                matches!(verdict, Verdict::Translated(_)),
                "{name}: fragment {i}: {verdict:?}"
            );
        }
        let whole = reassemble(&out);
        assert_checksums(&whole);
        assert_eq!(endpoints(&whole), (client, sa(pod)), "{name}");
        assert_eq!(transport_payload(&whole), [7u8; 100], "{name}");
        assert_eq!(engine.connections(), 1, "{name}");
    }
}

#[test]
fn fragments_without_their_first_fragment_are_dropped() {
    let mut t = Tally {
        engine: Engine::new(&dual_stack()),
        seen: 0,
        drops: HashMap::new(),
    };
    let fragment = Verdict::Drop(DropReason::Fragment);
    let datagrams = [
        (
            "v4 udp",
            udp(sa("10.10.0.50:40000"), sa("10.10.1.10:53"), &[7u8; 100]),
        ),
        (
            "v4 tcp",
            tcp(
                sa("10.10.0.50:40001"),
                sa("10.10.1.101:3307"),
                "syn",
                &[7u8; 100],
            ),
        ),
        (
            "v6 udp",
            udp(
                sa("[fd00:10::50]:40000"),
                sa("[fd00:10:1::120]:7000"),
                &[7u8; 100],
            ),
        ),
        (
            "v6 tcp",
            tcp(
                sa("[fd00:10::50]:40001"),
                sa("[fd00:10:1::120]:7000"),
                "syn",
                &[7u8; 100],
            ),
        ),
    ];
    for (name, datagram) in datagrams {
        let [_, second] = split(&datagram, 32, 7);
        t.check(
            &format!("{name}: later fragment, first never seen"),
            second.clone(),
            fragment,
        );
        // Another datagram's first fragment (other id) does not adopt it.
        let [first_other, _] = split(&datagram, 32, 8);
        let mut first_other = first_other;
        t.engine
            .process_path(Path::Forward, &mut first_other, secs(0));
        t.seen += 1;
        t.check(
            &format!("{name}: later fragment, other id"),
            second,
            fragment,
        );
    }
    // Don't-fragment is not a fragment: the UDP DNS query is translated.
    let mut df = v4_dont_fragment("10.10.0.50:40009", "10.10.1.10:53");
    let verdict = t.engine.process_path(Path::Forward, &mut df, secs(0));
    t.seen += 1;
    translated(verdict);
    assert_checksums(&df);
    assert_eq!(
        t.engine.counters().drops(DropReason::Fragment),
        t.drops[&DropReason::Fragment]
    );
    assert_eq!(t.engine.counters().total(), t.seen);
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

#[test]
fn process_batch_matches_one_by_one() {
    let state = nodoa_two_dns();
    let mut batched = Engine::new(&state);
    let mut single = Engine::new(&state);
    let first_round: Vec<Vec<u8>> = vec![
        tcp(sa("10.10.0.50:40000"), sa("10.10.1.101:3307"), "syn", b""),
        udp(sa("10.10.0.50:40001"), sa("10.10.1.10:53"), b"q1"),
        udp(sa("10.10.0.50:40002"), sa("10.10.1.10:53"), b"q2"),
        udp(sa("10.10.0.50:40001"), sa("10.10.1.10:53"), b"q1 again"),
        tcp(sa("10.10.0.50:40003"), sa("10.10.1.102:8080"), "syn", b""),
        tcp(sa("10.10.0.51:40003"), sa("10.10.1.102:8080"), "syn", b""),
        tcp(sa("10.10.0.50:40004"), sa("10.10.1.102:9999"), "syn", b""),
        udp(sa("10.10.0.50:40005"), sa("10.10.1.200:53"), b"q"),
        udp(sa("10.10.0.50:40006"), sa("10.10.0.77:53"), b"q"),
        echo_request("10.10.0.50", "10.10.1.101"),
        split(
            &udp(sa("10.10.0.50:40008"), sa("10.10.1.10:53"), &[1u8; 40]),
            32,
            9,
        )[1]
        .clone(),
        tcp(sa("10.10.0.50:40007"), sa("10.10.1.101:3307"), "syn", b"")[..30].to_vec(),
        tcp(
            sa("[fd00:10::50]:40000"),
            sa("[fd00:10::60]:80"),
            "syn",
            b"",
        ),
    ];
    let run = |batched: &mut Engine, single: &mut Engine, packets: &[Vec<u8>], now: Instant| {
        let mut batch: Vec<Vec<u8>> = packets.to_vec();
        let mut refs: Vec<&mut [u8]> = batch.iter_mut().map(|p| p.as_mut_slice()).collect();
        let mut verdicts = vec![Verdict::Accept; packets.len()];
        batched.process_batch(Hook::Prerouting, &mut refs, now, &mut verdicts);
        for (i, packet) in packets.iter().enumerate() {
            let mut p = packet.clone();
            let verdict = single.process(Hook::Prerouting, &mut p, now);
            assert_eq!(verdicts[i], verdict, "packet {i}");
            assert_eq!(batch[i], p, "packet {i} bytes");
        }
        assert_eq!(batched.counters(), single.counters());
        assert_eq!(batched.connections(), single.connections());
        (batch, verdicts)
    };
    let (out, verdicts) = run(&mut batched, &mut single, &first_round, secs(0));
    // Sanity: the round has a mix of verdicts.
    assert!(verdicts.iter().any(|v| matches!(v, Verdict::Translated(_))));
    assert!(verdicts.iter().any(|v| matches!(v, Verdict::Reject(_))));
    assert!(verdicts.iter().any(|v| matches!(v, Verdict::Drop(_))));
    assert!(verdicts.contains(&Verdict::Accept));
    // Second round: the replies to everything that was translated (un-DNAT at PREROUTING).
    let replies: Vec<Vec<u8>> = out
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v, Verdict::Translated(_)))
        .map(|(p, _)| reply_to(p, "syn,ack", b"r"))
        .collect();
    let (_, verdicts) = run(&mut batched, &mut single, &replies, secs(1));
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::Translated(_))));
}
