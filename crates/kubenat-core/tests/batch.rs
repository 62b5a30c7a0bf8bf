//! Batches: `process_batch` gives the verdicts, bytes, counters and connections that one
//! `process` call a packet gives.

mod common;

use std::net::SocketAddr;

use common::clusters::{EXT, POD, custom_cluster, nodoa_two_dns};
use common::packets::{echo_request, reply_to, split, tcp, udp};
use common::runner::secs;
use common::sa;
use kubenat_core::{
    ChecksumStatus, DropReason, Engine, Hook, Instant, PacketMeta, Path, TraceStep, Verdict,
};
use proptest::prelude::*;

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
    let (out, verdicts) =
        assert_batch_matches(&mut batched, &mut single, &first_round, secs(0), None);
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
    let (_, verdicts) = assert_batch_matches(&mut batched, &mut single, &replies, secs(1), None);
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::Translated(_))));
}

/// The short path for new connections to a cluster IP agrees with the whole path where
/// it applies and gives way to it where it does not: every Service of the policy table
/// (internalTrafficPolicy Local, session affinity, no endpoints, a hairpin, draining
/// endpoints, ...) from a pod, from the hairpin Service's own endpoint and from outside
/// the cluster CIDRs, three connections each so that round robin turns, with
/// masquerade-all off and on, along the whole forward path (masquerade shows at
/// POSTROUTING).
#[test]
fn new_connections_to_every_cluster_ip_match_one_by_one() {
    for masquerade_all in [false, true] {
        let state = custom_cluster(|proxy| proxy.masquerade_all = masquerade_all);
        let mut batched = Engine::new(&state);
        let mut single = Engine::new(&state);
        let mut packets = Vec::new();
        for (s, service) in state.services.iter().enumerate() {
            let cluster_ip = SocketAddr::new(service.cluster_ips[0], 80);
            for (n, client) in [POD, HAIRPIN_ENDPOINT, EXT].iter().enumerate() {
                for k in 0..3 {
                    // Every connection its own client port: the Services share endpoints.
                    let client = sa(&format!("{client}:{}", 40_000 + 10 * (3 * s + n) + k));
                    packets.push(tcp(client, cluster_ip, "syn", b""));
                }
            }
        }
        let forward = Some(Path::Forward);
        let (_, verdicts) =
            assert_batch_matches(&mut batched, &mut single, &packets, secs(0), forward);
        assert!(verdicts.iter().any(|v| matches!(v, Verdict::Translated(_))));
        assert!(
            verdicts
                .iter()
                .any(|v| !matches!(v, Verdict::Translated(_)))
        );
        // Every connection distinct after DNAT: none refused for its reply tuple.
        assert!(!verdicts.contains(&Verdict::Drop(DropReason::TupleClash)));
    }
}

/// The one endpoint of the policy table's `hairpin` Service.
const HAIRPIN_ENDPOINT: &str = "10.10.0.11";

/// Runs `packets` as one batch through `batched` and one by one through `single`, both at
/// `now`, through PREROUTING alone or along `path` (masquerade included), and checks that
/// verdicts, bytes, counters and connections agree; returns the batch's packets and
/// verdicts.
fn assert_batch_matches(
    batched: &mut Engine,
    single: &mut Engine,
    packets: &[Vec<u8>],
    now: Instant,
    path: Option<Path>,
) -> (Vec<Vec<u8>>, Vec<Verdict>) {
    let mut batch: Vec<Vec<u8>> = packets.to_vec();
    let mut refs: Vec<&mut [u8]> = batch.iter_mut().map(|p| p.as_mut_slice()).collect();
    let mut verdicts = vec![Verdict::Accept; packets.len()];
    let mut metas = vec![PacketMeta::default(); packets.len()];
    match path {
        Some(path) => batched.process_path_batch(path, &mut refs, &mut metas, now, &mut verdicts),
        None => batched.process_batch(Hook::Prerouting, &mut refs, &mut metas, now, &mut verdicts),
    }
    for (i, packet) in packets.iter().enumerate() {
        let mut p = packet.clone();
        let verdict = match path {
            Some(path) => single.process_path(path, &mut p, now),
            None => single.process(Hook::Prerouting, &mut p, now),
        };
        assert_eq!(verdicts[i], verdict, "packet {i}");
        assert_eq!(batch[i], p, "packet {i} bytes");
    }
    assert_eq!(batched.counters(), single.counters());
    assert_eq!(batched.connections(), single.connections());
    (batch, verdicts)
}

/// One packet of [`batches_match_one_by_one_over_any_history`]: a flow among a few clients
/// of two Services, sent by the client or answered by the endpoint it was given.
#[derive(Clone, Copy, Debug)]
struct Step {
    flow: usize,
    reply: bool,
    flags: usize,
    /// Ends the batch after this packet.
    last: bool,
    /// Seconds the clock moves before the next batch (timeouts are 10 to 120 s).
    wait: u64,
    /// Expire connections (`handle_timeout`) before the next batch.
    expire: bool,
    /// 1: the transport checksum is spoiled; 2: the IPv4 header's; else none.
    damage: u8,
}

const FLAGS: [&str; 6] = ["syn", "ack", "syn,ack", "fin,ack", "rst", "ack"];

fn any_step() -> impl Strategy<Value = Step> {
    (
        0usize..6,
        any::<bool>(),
        0..FLAGS.len(),
        0u32..4,
        0u64..40,
        any::<bool>(),
        0u8..8,
    )
        .prop_map(|(flow, reply, flags, last, wait, expire, damage)| Step {
            flow,
            reply,
            flags,
            last: last == 0,
            wait,
            expire,
            damage,
        })
}

/// The packet a step sends, spoiled as the step says.
fn step_packet(step: &Step, translated: &[Option<Vec<u8>>]) -> Option<Vec<u8>> {
    let mut packet = clean_step_packet(step, translated)?;
    let transport_checksum = match packet[9] {
        6 => 20 + 16,
        _ => 20 + 6,
    };
    match step.damage {
        1 => packet[transport_checksum] ^= 0x40,
        2 => packet[10] ^= 0x40,
        _ => {}
    }
    Some(packet)
}

/// The packet a step sends: TCP to MariaDB or UDP to DNS from one of three client ports;
/// a reply answers the flow's last translated packet (nothing before one exists).
fn clean_step_packet(step: &Step, translated: &[Option<Vec<u8>>]) -> Option<Vec<u8>> {
    // One client of each three is off the pod network: masqueraded on a whole path.
    let host = match step.flow % 3 {
        1 => "192.168.7.7",
        _ => "10.10.0.50",
    };
    let client = sa(&format!("{host}:{}", 40_000 + step.flow % 3));
    if step.reply {
        let last = translated[step.flow].as_ref()?;
        return Some(match step.flow < 3 {
            true => reply_to(last, FLAGS[step.flags], b""),
            false => reply_to(last, "", b"answer"),
        });
    }
    Some(match step.flow < 3 {
        true => tcp(client, sa("10.10.1.101:3307"), FLAGS[step.flags], b""),
        false => udp(client, sa("10.10.1.10:53"), b"query"),
    })
}

proptest! {
    /// Any history of handshakes, resets, closes, reopened tuples, duplicates inside a batch,
    /// expiry between batches and timers running out: batches give the verdicts, bytes,
    /// counters and connections that one call per packet gives, through PREROUTING alone or
    /// the whole forward path (masquerade included), whatever the packets' checksum status
    /// and with some checksums spoiled. What the batch looked up ahead of a packet never
    /// outlives a change to the table that would change the answer, and its short path for
    /// tracked packets agrees with the whole one.
    #[test]
    fn batches_match_one_by_one_over_any_history(
        steps in proptest::collection::vec(any_step(), 1..120),
        whole_path in any::<bool>(),
        status in prop_oneof![
            Just(ChecksumStatus::Unverified),
            Just(ChecksumStatus::Verified),
            Just(ChecksumStatus::Partial),
        ],
    ) {
        let state = nodoa_two_dns();
        let mut batched = Engine::new(&state);
        let mut single = Engine::new(&state);
        let mut translated: Vec<Option<Vec<u8>>> = vec![None; 6];
        let mut now = secs(0);
        let mut batch: Vec<(usize, Vec<u8>)> = Vec::new();
        for step in &steps {
            if let Some(packet) = step_packet(step, &translated) {
                batch.push((step.flow, packet));
            }
            if !step.last {
                continue;
            }
            let mut packets: Vec<Vec<u8>> = batch.iter().map(|(_, p)| p.clone()).collect();
            let mut refs: Vec<&mut [u8]> = packets.iter_mut().map(|p| p.as_mut_slice()).collect();
            let mut verdicts = vec![Verdict::Accept; refs.len()];
            let mut metas = vec![PacketMeta::new(status); refs.len()];
            if whole_path {
                batched.process_path_batch(Path::Forward, &mut refs, &mut metas, now, &mut verdicts);
            } else {
                batched.process_batch(Hook::Prerouting, &mut refs, &mut metas, now, &mut verdicts);
            }
            for (i, (flow, packet)) in batch.drain(..).enumerate() {
                let mut p = packet.clone();
                let mut meta = PacketMeta::new(status);
                let verdict = match whole_path {
                    true => single.process_path_traced(
                        Path::Forward,
                        &mut p,
                        &mut meta,
                        now,
                        &mut Vec::<TraceStep>::new(),
                    ),
                    false => single.process_with(Hook::Prerouting, &mut p, &mut meta, now),
                };
                prop_assert_eq!(verdicts[i], verdict, "packet {}", i);
                prop_assert_eq!(&packets[i], &p, "packet {} bytes", i);
                let original = common::packets::endpoints(&packet).0.port() >= 40_000;
                if matches!(verdict, Verdict::Translated(_)) && original {
                    translated[flow] = Some(p);
                }
            }
            prop_assert_eq!(batched.counters(), single.counters());
            prop_assert_eq!(batched.connections(), single.connections());
            now = now + std::time::Duration::from_secs(step.wait);
            if step.expire {
                prop_assert_eq!(batched.handle_timeout(now), single.handle_timeout(now));
            }
        }
    }
}
