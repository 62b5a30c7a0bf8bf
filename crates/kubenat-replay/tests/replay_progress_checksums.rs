//! `kubenat_replay`'s progress reports, and the captured checksums verified or trusted.

mod common;

use kubenat_core::Path;
use kubenat_replay::{CaptureChecksums, replay, replay_with};
use pcap_file::Endianness;

use common::capture::{Rec, read_out, rec, tmp, write_pcap, write_pcapng};
use common::packets::{Seg, eth, raw, seg, syn, tcp};
use common::{CLIENT, NODE_PORT, T0, engine, run, sa, verdicts};

// ---- progress ----------------------------------------------------------------------------

#[test]
fn progress_reports_the_bytes_read() {
    let payload = [0x61u8; 1000];
    let recs: Vec<Rec> = (0..300)
        .map(|i| {
            let ip = tcp(Seg {
                payload: &payload,
                ..seg(
                    sa("192.168.0.200:41000"),
                    sa("192.168.0.50:9"),
                    i * 1000,
                    Some(1),
                )
            });
            rec(T0 + u64::from(i), eth(&ip))
        })
        .collect();
    for (name, pcapng) in [("pcap", false), ("pcapng", true)] {
        let input = tmp(&format!("progress.{name}"));
        let output = tmp("progress-out.pcap");
        if pcapng {
            write_pcapng(&input, 1, Some(9), Endianness::Little, &recs);
        } else {
            write_pcap(&input, 1, &recs);
        }
        let total = std::fs::metadata(&input).unwrap().len();
        let mut calls: Vec<(u64, u64)> = Vec::new();
        let mut engine = engine();
        let s = replay(&mut engine, &input, &output, Path::Forward, &mut |r, t| {
            calls.push((r, t))
        })
        .unwrap();
        // Not the node's traffic: passes untouched.
        assert_eq!(verdicts(&s), [0, 300, 0, 0], "{name}");
        assert_eq!(calls.first(), Some(&(0, total)), "{name}");
        assert_eq!(calls.last(), Some(&(total, total)), "{name}");
        assert!(
            calls.windows(2).all(|w| w[0].0 <= w[1].0),
            "{name}: monotonic"
        );
        let steps = total / (64 * 1024);
        assert!(
            calls.len() as u64 > steps,
            "{name}: about every 64 KiB ({} calls for {total} bytes)",
            calls.len()
        );
        assert!(
            calls
                .windows(2)
                .all(|w| w[1].0 - w[0].0 <= 64 * 1024 + 2048),
            "{name}: no gap over ~64 KiB"
        );
        let out = read_out(&output);
        assert_eq!(out.packets.len(), 300);
        assert!(out.packets.iter().zip(&recs).all(|(o, r)| o.1 == r.data));
    }
}

/// The one's-complement sum of an IPv4 TCP pseudo-header, folded, not complemented: what
/// a checksum left for offload holds (written here, not with kubenat's code).
fn ipv4_tcp_pseudo_sum(ip: &[u8]) -> u16 {
    let length = (ip.len() - 20) as u32;
    let mut sum: u32 = ip[12..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += 6 + length;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn checksums_are_verified_unless_trusted_and_partial_ones_stay_partial() {
    let valid = syn(CLIENT, NODE_PORT);
    let mut corrupt = syn("192.168.0.200:40001", NODE_PORT);
    *corrupt.last_mut().unwrap() ^= 0xff; // the urgent pointer, under the checksum
    let mut partial = syn("192.168.0.200:40002", NODE_PORT);
    let pseudo = ipv4_tcp_pseudo_sum(&partial);
    partial[36..38].copy_from_slice(&pseudo.to_be_bytes());
    let input = tmp("checksums.pcap");
    write_pcap(
        &input,
        101,
        &[
            rec(T0, raw(&valid)),
            rec(T0 + 1_000, raw(&corrupt)),
            rec(T0 + 2_000, raw(&partial)),
        ],
    );
    let output = tmp("checksums-out.pcap");
    let summary = run(&input, &output, Path::Forward);
    assert_eq!(verdicts(&summary), [2, 0, 0, 1], "{summary:?}");
    assert_eq!(summary.by_reason.get("transport-checksum"), Some(&1));
    let out = read_out(&output);
    assert_eq!(out.packets.len(), 2);
    // The partial checksum left partial: the pseudo-header sum of the translated packet.
    let translated = &out.packets[1].1;
    assert_eq!(
        translated[36..38],
        ipv4_tcp_pseudo_sum(translated).to_be_bytes(),
        "a partial checksum stays partial through NAT"
    );
    // Trusted: every packet is translated, the corrupt one too.
    let mut engine = engine();
    let trusted = replay_with(
        &mut engine,
        &input,
        &output,
        Path::Forward,
        CaptureChecksums::Trust,
        &mut |_, _| {},
    )
    .expect("replay succeeds");
    assert_eq!(verdicts(&trusted), [3, 0, 0, 0], "{trusted:?}");
}
