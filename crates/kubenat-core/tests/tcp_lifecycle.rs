//! Whole connections through a Service: a TCP connection from SYN to TIME_WAIT through a
//! NodePort with masquerade, replies restoring the original tuple, and new connections on
//! a tuple that was closed or is still established.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::clusters::{NODE, NODE6, endpoint, nodoa_dual_stack, slice_mut};
use common::packets::{TCP, UDP, endpoints, reply_to, tcp, transport_payload, udp};
use common::runner::{Dir, HANDSHAKE, forward_translated, secs, tcp_exchange, with_handshake};
use common::{ip, sa};
use kubenat_core::{Engine, Instant, Update, reference};

/// (name, protocol, client, service address, endpoint set, masquerade source address)
type RoundTripRow = (
    &'static str,
    u8,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
);

// ---------------------------------------------------------------------------------------
// A whole TCP connection through a NodePort with masquerade
// ---------------------------------------------------------------------------------------

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
            assert_eq!(flushed, Ok(0), "TCP connections are never flushed");
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
        let mut engine = Engine::new(&nodoa_dual_stack());
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
