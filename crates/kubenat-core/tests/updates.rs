//! Cluster updates against tracked connections: removed endpoints flush their UDP flows
//! and never TCP ones (kube-proxy's `CleanStaleEntries`), serving terminating endpoints
//! and empty Services keep theirs, removed Services guard their address, `Replace` flushes
//! like the single updates.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::clusters::{NODE, dns, nodoa_dual_stack, nodoa_two_dns, slice_mut};
use common::packets::{TCP, endpoints, tcp, transport_protocol, udp};
use common::runner::{forward, forward_translated, secs};
use common::{ip, sa};
use kubenat_core::{
    ClusterState, DropReason, EndpointConditions, Engine, RejectReason, Update, Verdict,
};

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

/// Each TCP flow's next packet (an ACK) still reaches the pod it reached first.
fn assert_tcp_flows_keep_their_pod(engine: &mut Engine, tcp_out: &[Vec<u8>]) {
    for out in tcp_out {
        let (client, pod) = endpoints(out);
        let (_, d, _) = forward_translated(
            engine,
            tcp(client, sa("10.10.1.10:53"), "ack", b""),
            secs(1),
        );
        assert_eq!(d, pod);
    }
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
    assert_eq!(flushed, Ok(1), "the UDP flow to the removed pod is flushed");
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
    assert_tcp_flows_keep_their_pod(&mut engine, &tcp_out);
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
        flushed,
        Ok(0),
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
    assert_eq!(flushed, Ok(0));
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
    let mut state = nodoa_dual_stack();
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
        Ok(1)
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
    assert_eq!(engine.update(Update::RemoveService(dns())), Ok(0));
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
    assert_eq!(
        engine.update(Update::Replace(Box::new(state.clone()))),
        Ok(0)
    );
    assert_eq!(engine.connections(), 4);
    let gone = dns_pod_of(&udp_out[1]);
    let kept = dns_pod_of(&udp_out[0]);
    let mut next = state.clone();
    slice_mut(&mut next, "kube-dns")
        .endpoints
        .retain(|e| e.addresses[0] != gone.ip());
    assert_eq!(engine.update(Update::Replace(Box::new(next))), Ok(1));
    assert_eq!(engine.connections(), 3);
    let (_, d, _) = forward_translated(
        &mut engine,
        udp(endpoints(&udp_out[1]).0, sa("10.10.1.10:53"), b"q"),
        secs(1),
    );
    assert_eq!(d, kept);
    assert_tcp_flows_keep_their_pod(&mut engine, &tcp_out);
}

/// Updates to other Services leave a Service's round-robin turn where it was, however many
/// come: an engine with a control plane of its own once restarted every turn past 16.
#[test]
fn round_robin_turns_survive_updates_to_other_services() {
    let state = nodoa_two_dns();
    let mut engine = Engine::new(&state);
    let pod_for = |engine: &mut Engine, port: u16| {
        let client = SocketAddr::new(ip("10.10.0.50"), port);
        let (_, _, out) =
            forward_translated(engine, udp(client, sa("10.10.1.10:53"), b"q"), secs(0));
        dns_pod_of(&out).ip()
    };
    let first = pod_for(&mut engine, 42000);
    let other = state
        .services
        .iter()
        .find(|service| service.name.name != "kube-dns")
        .expect("the notes' cluster has more Services")
        .clone();
    for _ in 0..20 {
        let update = Update::UpsertService(Box::new(other.clone()));
        assert_eq!(engine.update(update), Ok(0));
    }
    assert_ne!(pod_for(&mut engine, 42001), first, "the turn moved on");
}
