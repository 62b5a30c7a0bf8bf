//! The kernel's checksum rules at PREROUTING: a wrong IPv4 header checksum is dropped as
//! `ip_rcv` drops it; a wrong TCP, UDP or ICMP checksum makes the packet INVALID to
//! conntrack, so it is dropped with no connection, no round-robin turn and no
//! translation, unless its metadata says the NIC verified it or the checksum is partial.
//! Checksums are built and checked with etherparse.

mod common;

use common::clusters::nodoa_dual_stack;
use common::packets::{assert_checksums, echo_request, endpoints, tcp, udp};
use common::runner::secs;
use common::sa;
use etherparse::{IpSlice, TransportSlice};
use kubenat_core::{ChecksumStatus, DropReason, Engine, Hook, PacketMeta, Verdict, checksum};

/// What is wrong with the packet.
#[derive(Clone, Copy, Debug)]
enum Damage {
    None,
    /// The IPv4 TTL changed without its header checksum.
    IpHeader,
    /// The last payload byte changed without the transport checksum.
    Payload,
    /// A UDP checksum of zero.
    ZeroUdpChecksum,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Translated,
    /// Valid, and answered as kube-proxy's nftables rules answer it.
    Rejected,
    Dropped(DropReason),
}

struct Row {
    name: &'static str,
    packet: fn() -> Vec<u8>,
    damage: Damage,
    checksum: ChecksumStatus,
    hook: Hook,
    expect: Expect,
}

fn tcp_v4() -> Vec<u8> {
    tcp(
        sa("10.10.0.50:40000"),
        sa("10.10.1.102:8080"),
        "syn",
        b"hello",
    )
}
fn udp_v4() -> Vec<u8> {
    udp(sa("10.10.0.50:40000"), sa("10.10.1.120:7000"), b"hello")
}
fn tcp_v6() -> Vec<u8> {
    tcp(
        sa("[fd00:10::50]:40000"),
        sa("[fd00:10:1::120]:7000"),
        "syn",
        b"hello",
    )
}
fn udp_v6() -> Vec<u8> {
    udp(
        sa("[fd00:10::50]:40000"),
        sa("[fd00:10:1::120]:7000"),
        b"hello",
    )
}
fn echo_v4() -> Vec<u8> {
    echo_request("10.10.0.50", "10.10.1.102")
}
fn echo_v6() -> Vec<u8> {
    echo_request("fd00:10::50", "fd00:10:1::120")
}

use ChecksumStatus::{Unverified, Verified};
use DropReason::{IpHeaderChecksum, TransportChecksum};
use Hook::{Output, Prerouting};

const ROWS: &[Row] = &[
    Row {
        name: "valid TCP",
        packet: tcp_v4,
        damage: Damage::None,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Translated,
    },
    Row {
        name: "IPv4 header checksum wrong",
        packet: tcp_v4,
        damage: Damage::IpHeader,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(IpHeaderChecksum),
    },
    Row {
        name: "IPv4 header checksum wrong, transport verified by the NIC",
        packet: tcp_v4,
        damage: Damage::IpHeader,
        checksum: Verified,
        hook: Prerouting,
        expect: Expect::Dropped(IpHeaderChecksum),
    },
    Row {
        name: "TCP checksum wrong",
        packet: tcp_v4,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "TCP checksum wrong, NIC says verified",
        packet: tcp_v4,
        damage: Damage::Payload,
        checksum: Verified,
        hook: Prerouting,
        expect: Expect::Translated,
    },
    Row {
        name: "TCP checksum wrong, sent by the node (OUTPUT is not checked)",
        packet: tcp_v4,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Output,
        expect: Expect::Translated,
    },
    Row {
        name: "UDP checksum wrong",
        packet: udp_v4,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "UDP over IPv4 without checksum",
        packet: udp_v4,
        damage: Damage::ZeroUdpChecksum,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Translated,
    },
    Row {
        name: "TCP over IPv6 checksum wrong",
        packet: tcp_v6,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "UDP over IPv6 checksum wrong",
        packet: udp_v6,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "UDP over IPv6 with checksum zero (IPv6 has no 'none')",
        packet: udp_v6,
        damage: Damage::ZeroUdpChecksum,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "valid UDP over IPv6",
        packet: udp_v6,
        damage: Damage::None,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Translated,
    },
    Row {
        name: "ICMP echo checksum wrong",
        packet: echo_v4,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
    Row {
        name: "valid ICMP echo to a cluster IP (nftables mode rejects it)",
        packet: echo_v4,
        damage: Damage::None,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Rejected,
    },
    Row {
        name: "ICMPv6 echo checksum wrong",
        packet: echo_v6,
        damage: Damage::Payload,
        checksum: Unverified,
        hook: Prerouting,
        expect: Expect::Dropped(TransportChecksum),
    },
];

/// Where the transport header starts, as etherparse reads the packet.
fn transport_offset(packet: &[u8]) -> usize {
    let ip = IpSlice::from_slice(packet).unwrap();
    ip.payload().payload.as_ptr() as usize - packet.as_ptr() as usize
}

fn damage(packet: &mut [u8], damage: Damage) {
    match damage {
        Damage::None => {}
        Damage::IpHeader => packet[8] -= 1,
        Damage::Payload => *packet.last_mut().unwrap() ^= 0x5a,
        Damage::ZeroUdpChecksum => {
            let l4 = transport_offset(packet);
            packet[l4 + 6..l4 + 8].fill(0);
        }
    }
}

#[test]
fn arriving_packets_meet_the_kernels_checksum_rules() {
    let mut failures = Vec::new();
    for row in ROWS {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let mut packet = (row.packet)();
        damage(&mut packet, row.damage);
        let original = packet.clone();
        let mut meta = PacketMeta::new(row.checksum);
        let verdict = engine.process_with(row.hook, &mut packet, &mut meta, secs(1));
        let got = match verdict {
            Verdict::Translated(_) => Expect::Translated,
            Verdict::Reject(_) => Expect::Rejected,
            Verdict::Drop(reason) => Expect::Dropped(reason),
            other => panic!("{}: {other:?}", row.name),
        };
        if got != row.expect {
            failures.push(format!(
                "{}: want {:?}, got {verdict:?}",
                row.name, row.expect
            ));
            continue;
        }
        if let Expect::Dropped(reason) = row.expect {
            // Invalid: no connection, no turn, the packet as it came, and counted.
            let mut why = Vec::new();
            if engine.connections() != 0 {
                why.push("it created a connection");
            }
            if packet != original {
                why.push("it was rewritten");
            }
            if engine.counters().drops(reason) != 1 {
                why.push("it was not counted");
            }
            if !why.is_empty() {
                failures.push(format!("{}: {}", row.name, why.join(", ")));
            }
        }
        if matches!(row.damage, Damage::ZeroUdpChecksum) && got == Expect::Translated {
            let l4 = transport_offset(&packet);
            if packet[l4 + 6..l4 + 8] != [0, 0] {
                failures.push(format!("{}: a missing checksum stays missing", row.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_invalid_syn_takes_no_round_robin_turn() {
    // wp-service has two endpoints: round robin gives the first valid SYN the same one
    // whether or not invalid SYNs came before it.
    let first_choice = |invalid_before: usize| {
        let mut engine = Engine::new(&nodoa_dual_stack());
        for i in 0..invalid_before {
            let mut bad = tcp(
                sa(&format!("10.10.0.50:{}", 30_000 + i)),
                sa("10.10.1.102:8080"),
                "syn",
                b"hello",
            );
            damage(&mut bad, Damage::Payload);
            let verdict = engine.process(Prerouting, &mut bad, secs(1));
            assert_eq!(verdict, Verdict::Drop(TransportChecksum));
        }
        let mut good = tcp_v4();
        assert!(matches!(
            engine.process(Prerouting, &mut good, secs(1)),
            Verdict::Translated(_)
        ));
        assert_eq!(engine.connections(), 1);
        endpoints(&good).1
    };
    assert_eq!(first_choice(1), first_choice(0));
    assert_eq!(first_choice(3), first_choice(0));
}

#[test]
fn an_established_packet_with_a_wrong_checksum_is_dropped_and_the_connection_kept() {
    let mut engine = Engine::new(&nodoa_dual_stack());
    let client = sa("10.10.0.50:40000");
    let mut syn = tcp(client, sa("10.10.1.102:8080"), "syn", b"");
    assert!(matches!(
        engine.process(Prerouting, &mut syn, secs(1)),
        Verdict::Translated(_)
    ));
    let endpoint = endpoints(&syn).1;
    let mut syn_ack = tcp(endpoint, client, "syn,ack", b"");
    assert!(matches!(
        engine.process(Prerouting, &mut syn_ack, secs(1)),
        Verdict::Translated(_)
    ));
    let mut bad = tcp(client, sa("10.10.1.102:8080"), "ack", b"data");
    damage(&mut bad, Damage::Payload);
    let original = bad.clone();
    assert_eq!(
        engine.process(Prerouting, &mut bad, secs(2)),
        Verdict::Drop(TransportChecksum)
    );
    assert_eq!(bad, original, "not translated");
    assert_eq!(engine.connections(), 1, "the connection stays");
    let mut good = tcp(client, sa("10.10.1.102:8080"), "ack", b"data");
    assert!(matches!(
        engine.process(Prerouting, &mut good, secs(2)),
        Verdict::Translated(_)
    ));
    assert_eq!(endpoints(&good).1, endpoint);
}

/// The checksum a NIC completes from a partial one: the sum of the segment from the
/// transport header on, the field holding the pseudo-header sum, complemented.
fn complete_partial(packet: &mut [u8], field: usize) {
    let l4 = transport_offset(packet);
    let sum = checksum::compute(0, &packet[l4..]);
    packet[l4 + field..l4 + field + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Makes a built packet's TCP or UDP checksum partial, as a sender with offload on
/// leaves it: the field holds the pseudo-header sum.
fn make_partial(packet: &mut [u8]) -> usize {
    let ip = IpSlice::from_slice(packet).unwrap();
    let (source, destination) = match &ip {
        IpSlice::Ipv4(v4) => (
            v4.header().source().to_vec(),
            v4.header().destination().to_vec(),
        ),
        IpSlice::Ipv6(v6) => (
            v6.header().source().to_vec(),
            v6.header().destination().to_vec(),
        ),
    };
    let payload = ip.payload();
    let protocol = payload.ip_number.0;
    let field = if protocol == 6 { 16 } else { 6 };
    let l4 = transport_offset(packet);
    let length = (packet.len() - l4) as u32;
    let pseudo = checksum::pseudo_header_sum(&source, &destination, protocol, length);
    packet[l4 + field..l4 + field + 2].copy_from_slice(&checksum::fold_sum(pseudo).to_be_bytes());
    field
}

#[test]
fn partial_checksums_are_not_verified_and_stay_partial_through_nat() {
    for (name, build) in [
        ("TCP over IPv4", tcp_v4 as fn() -> Vec<u8>),
        ("UDP over IPv4", udp_v4),
        ("TCP over IPv6", tcp_v6),
        ("UDP over IPv6", udp_v6),
    ] {
        let mut engine = Engine::new(&nodoa_dual_stack());
        let mut packet = build();
        let field = make_partial(&mut packet);
        assert_eq!(
            PacketMeta::from_capture(&packet).checksum(),
            ChecksumStatus::Partial,
            "{name}: a capture shows it partial"
        );
        let mut meta = PacketMeta::new(ChecksumStatus::Partial);
        let verdict = engine.process_with(Prerouting, &mut packet, &mut meta, secs(1));
        assert!(
            matches!(verdict, Verdict::Translated(_)),
            "{name}: {verdict:?}"
        );
        // Completed as the NIC would, the translated packet's checksum is right.
        complete_partial(&mut packet, field);
        assert_checksums(&packet);
        let sliced = etherparse::SlicedPacket::from_ip(&packet).unwrap();
        assert!(matches!(
            sliced.transport,
            Some(TransportSlice::Tcp(_) | TransportSlice::Udp(_))
        ));
    }
    // A complete checksum is not taken for a partial one.
    assert_eq!(
        PacketMeta::from_capture(&tcp_v4()).checksum(),
        ChecksumStatus::Unverified
    );
}
