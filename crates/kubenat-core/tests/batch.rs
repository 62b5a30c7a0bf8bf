//! Batches: `process_batch` gives the verdicts, bytes, counters and connections that one
//! `process` call a packet gives.

mod common;

use common::clusters::nodoa_two_dns;
use common::packets::{echo_request, reply_to, split, tcp, udp};
use common::runner::secs;
use common::sa;
use kubenat_core::{Engine, Hook, Instant, PacketMeta, Verdict};

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
        let mut metas = vec![PacketMeta::default(); packets.len()];
        batched.process_batch(Hook::Prerouting, &mut refs, &mut metas, now, &mut verdicts);
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
