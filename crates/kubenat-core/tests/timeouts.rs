//! Conntrack timeouts: UDP unreplied and stream, every TCP state Linux tracks, expiry
//! with and without `handle_timeout`, and a clock that steps back.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use common::clusters::nodoa_two_dns;
use common::packets::{reply_to, tcp, udp};
use common::runner::{
    Dir, HANDSHAKE, forward_translated, just_before, secs, tcp_exchange, with_handshake,
};
use common::sa;
use kubenat_core::{Engine, Instant};

/// (name, packets one a second, seconds to expiry after the last one)
type TimeoutRow = (&'static str, Vec<(Dir, &'static str)>, u64);

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
