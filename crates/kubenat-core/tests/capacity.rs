//! Limits of the connection table: a full table drops new flows and keeps established
//! ones (per family), and masquerade source ports run out per endpoint.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::clusters::{NODE, nodoa_dual_stack, nodoa_two_dns};
use common::packets::{endpoints, reply_to, tcp, udp};
use common::runner::{forward, forward_translated, secs};
use common::{ip, sa};
use kubenat_core::{DropReason, Engine, Path, Verdict, reference};

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
    let mut state = nodoa_dual_stack();
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
