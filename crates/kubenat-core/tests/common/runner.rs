//! Running packets through an engine: one packet forward, a TCP exchange on one
//! connection, and a tally of verdicts for long lists of odd packets.

use std::collections::HashMap;
use std::net::SocketAddr;

use kubenat_core::{ClusterState, DropReason, Engine, Instant, Path, Rewrite, Verdict, reference};

use super::packets::{assert_checksums, endpoints, tcp};
use super::sa;

pub fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// One nanosecond before `secs(s)`.
pub fn just_before(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000 - 1)
}

pub fn translated(verdict: Verdict) -> Rewrite {
    match verdict {
        Verdict::Translated(t) => t,
        other => panic!("expected a translation, got {other:?}"),
    }
}

/// Runs a packet through the forward path and returns the verdict and the packet as it left.
pub fn forward(engine: &mut Engine, mut packet: Vec<u8>, now: Instant) -> (Verdict, Vec<u8>) {
    let verdict = engine.process_path(Path::Forward, &mut packet, now);
    (verdict, packet)
}

/// Forwards a packet that must be translated; checks its checksums and returns where it
/// went (source, destination as it left).
pub fn forward_translated(
    engine: &mut Engine,
    packet: Vec<u8>,
    now: Instant,
) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let before = endpoints(&packet);
    let (verdict, out) = forward(engine, packet, now);
    let t = translated(verdict);
    assert_checksums(&out);
    let (s, d) = endpoints(&out);
    assert_eq!(
        (t.source(), t.destination()),
        (s != before.0, d != before.1),
        "the rewrite reports what changed from {before:?} to {s} -> {d}"
    );
    (s, d, out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to Service.
    Orig,
    /// Endpoint back to the client.
    Reply,
}

/// Replays a TCP exchange on one connection (pod client -> wp-service), one packet a second,
/// and returns the engine and the time of the last packet.
pub fn tcp_exchange(steps: &[(Dir, &str)]) -> (Engine, u64, SocketAddr) {
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

pub const HANDSHAKE: [(Dir, &str); 3] = [
    (Dir::Orig, "syn"),
    (Dir::Reply, "syn,ack"),
    (Dir::Orig, "ack"),
];

pub fn with_handshake(rest: &[(Dir, &'static str)]) -> Vec<(Dir, &'static str)> {
    HANDSHAKE
        .iter()
        .copied()
        .chain(rest.iter().copied())
        .collect()
}

/// Runs packets through the forward path at time zero, counting them and their drops.
pub struct Tally {
    pub engine: Engine,
    pub seen: u64,
    pub drops: HashMap<DropReason, u64>,
}

impl Tally {
    pub fn new(state: &ClusterState) -> Tally {
        Tally {
            engine: Engine::new(state),
            seen: 0,
            drops: HashMap::new(),
        }
    }

    /// Runs `packet`, which must not panic the engine and must get `expected`; a dropped
    /// packet must be left as it was.
    pub fn check(&mut self, name: &str, mut packet: Vec<u8>, expected: Verdict) {
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
