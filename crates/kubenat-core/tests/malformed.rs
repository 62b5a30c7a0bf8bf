//! Malformed input: every way an IP or transport header can be cut short or lie about its
//! lengths is dropped with its reason, untouched, without a panic, and counted.
//!
//! Expected values come from netfilter and kube-proxy semantics (Linux conntrack state
//! tables and default timeouts, kube-proxy's `CleanStaleEntries`, nftables `reject`), never
//! from the engine. Packets are built and checked with etherparse.

mod common;

use common::clusters::nodoa_dual_stack;
use common::packets::{tcp, udp};
use common::runner::{Tally, secs, translated};
use common::sa;
use etherparse::Ipv4Header;
use kubenat_core::{DropReason, Path, Verdict};

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

#[test]
fn malformed_packets_are_dropped_with_a_reason() {
    let mut t = Tally::new(&nodoa_dual_stack());
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
