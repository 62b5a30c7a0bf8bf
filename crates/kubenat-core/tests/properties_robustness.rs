//! Property tests of the engine's robustness over fuzzed packets and generated clusters:
//!
//! 1. Arbitrary bytes, and arbitrary bytes behind valid IPv4/IPv6 (and ICMP error) header
//!    prefixes, never make any entry point panic, and the counters count every call once.
//! 2. An `Accept` leaves the packet byte-identical.
//!
//! Connection state is carried between the packets of a case: replies (swapped
//! addresses), repeats and ICMP errors about the previous output reach conntrack.

mod common;

use std::net::{IpAddr, Ipv6Addr};

use common::generated::{Call, any_cluster, config, destinations, notes_cluster, run, sources};
use etherparse::Ipv4Header;
use kubenat_core::{ClusterState, Engine, Hook, Instant, Path, Verdict, checksum, reject};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------
// Arbitrary bytes
// ---------------------------------------------------------------------------------------

/// Addresses the fuzzer puts in headers: the clusters' and a few arbitrary ones.
fn fuzz_v4() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        prop::sample::select(vec![
            [10, 10, 1, 101],
            [10, 10, 1, 102],
            [10, 10, 1, 105],
            [10, 10, 1, 10],
            [10, 10, 1, 200],
            [10, 10, 0, 102],
            [10, 10, 0, 103],
            [10, 10, 0, 112],
            [10, 10, 0, 10],
            [192, 168, 0, 100],
            [192, 168, 0, 101],
            [192, 168, 0, 102],
            [192, 168, 0, 103],
            [192, 168, 0, 200],
            [127, 0, 0, 1],
            [10, 96, 0, 1],
            [10, 96, 0, 2],
            [203, 0, 113, 1],
            [172, 16, 0, 10],
            [10, 20, 0, 1],
            [10, 20, 1, 2],
        ]),
        any::<[u8; 4]>(),
    ]
}

fn fuzz_v6() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        prop::sample::select(vec![
            [0xfd00u16, 0x96, 0, 0, 0, 0, 0, 1],
            [0xfd00, 0x96, 0, 0, 0, 0, 0, 2],
            [0xfd00, 0x96, 0, 0, 0, 0, 0, 0x99],
            [0xfd00, 0x16, 0, 0, 0, 0, 0, 0x10],
            [0xfd00, 0x20, 0, 0, 0, 0, 0, 1],
            [0xfd00, 0x20, 1, 0, 0, 0, 0, 2],
            [0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, 1],
            [0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7],
            [0, 0, 0, 0, 0, 0, 0, 1],
        ])
        .prop_map(|s| Ipv6Addr::from(s).octets()),
        any::<[u8; 16]>(),
    ]
}

fn fuzz_port() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            53u16, 80, 3306, 3307, 8080, 8081, 30880, 30000, 30001, 30010, 30020, 1001, 1002,
        ]),
        1u16..200,
        any::<u16>(),
    ]
}

/// A transport header start: ports aimed at services, then junk (flags, lengths, options);
/// or a header both TCP and UDP accept (the UDP length is the TCP sequence number's top
/// half), with flags that open connections, so fuzzing reaches conntrack and the rewrite.
fn fuzz_transport() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        6 => (
            any::<u16>(),
            fuzz_port(),
            prop_oneof![3 => Just(0x50u8), 1 => any::<u8>()],
            prop_oneof![
                3 => Just(0x02u8),
                3 => Just(0x10),
                1 => Just(0x12),
                1 => Just(0x11),
                1 => Just(0x04),
                1 => any::<u8>()
            ],
            any::<[u8; 12]>(),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(sport, dport, offset, flags, junk, payload)| {
                let mut out = sport.to_be_bytes().to_vec();
                out.extend_from_slice(&dport.to_be_bytes());
                let length = (20 + payload.len()) as u16;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&junk[..6]);
                out.extend_from_slice(&[offset, flags]);
                out.extend_from_slice(&junk[6..]);
                out.extend(payload);
                out
            }),
        1 => (
            any::<u16>(),
            fuzz_port(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(sport, dport, rest)| {
                let mut out = sport.to_be_bytes().to_vec();
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend(rest);
                out
            }),
    ]
}

fn fuzz_protocol() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![6u8, 17, 132, 1, 58, 0, 43, 44, 60, 59, 4, 41, 47, 50]),
        any::<u8>(),
    ]
}

/// An IPv4 header (mostly well-formed: right length, no fragment flags) and arbitrary bytes.
fn fuzz_ipv4(inner: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        (
            prop_oneof![8 => Just(5u8), 1 => 0u8..16],
            prop::collection::vec(any::<u8>(), 40),
            prop_oneof![8 => Just(None), 1 => any::<u16>().prop_map(Some)],
            prop_oneof![8 => Just(0u16), 1 => Just(0x4000), 1 => any::<u16>()],
            if inner {
                prop::sample::select(vec![6u8, 17, 132, 1]).boxed()
            } else {
                fuzz_protocol().boxed()
            },
        ),
        fuzz_v4(),
        fuzz_v4(),
        fuzz_transport(),
        any::<bool>(),
    )
        .prop_map(
            |((ihl, options, total, frag, protocol), src, dst, tail, good_checksum)| {
                let header_len = usize::from(ihl.max(5)) * 4;
                let mut out = vec![0u8; header_len];
                out[0] = 0x40 | ihl;
                out[4..6].copy_from_slice(&[0x12, 0x34]);
                out[6..8].copy_from_slice(&frag.to_be_bytes());
                out[8] = 64;
                out[9] = protocol;
                out[12..16].copy_from_slice(&src);
                out[16..20].copy_from_slice(&dst);
                out[20..].copy_from_slice(&options[..header_len - 20]);
                out.extend(tail);
                let total = total.unwrap_or(out.len() as u16);
                out[2..4].copy_from_slice(&total.to_be_bytes());
                if good_checksum {
                    let sum = checksum::compute(0, &out[..header_len]);
                    out[10..12].copy_from_slice(&sum.to_be_bytes());
                }
                out
            },
        )
}

/// An IPv6 header (mostly the right payload length) and arbitrary bytes.
fn fuzz_ipv6(inner: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        if inner {
            prop::sample::select(vec![6u8, 17, 132, 58]).boxed()
        } else {
            fuzz_protocol().boxed()
        },
        prop_oneof![8 => Just(None), 1 => any::<u16>().prop_map(Some)],
        fuzz_v6(),
        fuzz_v6(),
        fuzz_transport(),
    )
        .prop_map(|(next, length, src, dst, tail)| {
            let mut out = vec![0x60, 0, 0, 0, 0, 0, next, 64];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            let length = length.unwrap_or(tail.len() as u16);
            out[4..6].copy_from_slice(&length.to_be_bytes());
            out.extend(tail);
            out
        })
}

/// An ICMP (v4) or ICMPv6 error quoting a (cut) packet of the same family.
fn fuzz_icmp_error() -> impl Strategy<Value = Vec<u8>> {
    let v4 = (
        fuzz_v4(),
        fuzz_v4(),
        prop::sample::select(vec![3u8, 11, 12, 5, 4]),
        any::<u8>(),
        fuzz_ipv4(true),
        any::<usize>(),
    )
        .prop_map(|(src, dst, kind, code, quoted, cut)| {
            let quoted = &quoted[..cut % (quoted.len() + 1)];
            let mut out = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            out.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(quoted);
            let total = out.len() as u16;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            let sum = checksum::compute(0, &out[..20]);
            out[10..12].copy_from_slice(&sum.to_be_bytes());
            out
        });
    let v6 = (
        fuzz_v6(),
        fuzz_v6(),
        prop::sample::select(vec![1u8, 2, 3, 4]),
        any::<u8>(),
        fuzz_ipv6(true),
        any::<usize>(),
    )
        .prop_map(|(src, dst, kind, code, quoted, cut)| {
            let quoted = &quoted[..cut % (quoted.len() + 1)];
            let mut out = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            out.extend_from_slice(&src);
            out.extend_from_slice(&dst);
            out.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(quoted);
            let length = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&length.to_be_bytes());
            out
        });
    prop_oneof![v4, v6]
}

fn fuzz_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..1500),
        3 => fuzz_ipv4(false),
        3 => fuzz_ipv6(false),
        2 => fuzz_icmp_error(),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop::sample::select(vec![
        Call::Hook(Hook::Prerouting),
        Call::Hook(Hook::Output),
        Call::Hook(Hook::Postrouting),
        Call::Path(Path::Forward),
        Call::Path(Path::LocalOut),
    ])
}

/// What to feed next: a fresh packet, or the previous output with its addresses and ports
/// swapped (a "reply", to reach the conntrack paths).
#[derive(Clone, Debug)]
enum Feed {
    /// A fuzzed packet, maybe aimed (see [`aim`]) at one of the cluster's destinations from
    /// one of its sources.
    Fresh(Vec<u8>, Option<(Index, Index)>),
    SwapPrevious,
    RepeatPrevious,
    /// An ICMP error about the previous output packet (cut to `.0` bytes), sent back to its
    /// source by its destination, as a router or the endpoint would.
    IcmpAboutPrevious(usize, u8),
}

fn feed() -> impl Strategy<Value = Feed> {
    prop_oneof![
        4 => (fuzz_packet(), prop::option::of(any::<(Index, Index)>()))
            .prop_map(|(bytes, aim)| Feed::Fresh(bytes, aim)),
        2 => Just(Feed::SwapPrevious),
        1 => Just(Feed::RepeatPrevious),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(cut, code)| Feed::IcmpAboutPrevious(cut, code)),
    ]
}

/// Wraps `quoted` in an ICMP destination-unreachable (v4) / ICMPv6 unreachable from its
/// destination to its source; `None` when it is not IP.
fn icmp_error_about(quoted: &[u8], cut: usize, code: u8) -> Option<Vec<u8>> {
    match quoted.first().map(|b| b >> 4) {
        Some(4) if quoted.len() >= 20 => {
            let cut = &quoted[..20 + cut % (quoted.len() - 19)];
            let mut out = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            out.extend_from_slice(&quoted[16..20]);
            out.extend_from_slice(&quoted[12..16]);
            out.extend_from_slice(&[3, code % 16, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(cut);
            let total = out.len() as u16;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            let sum = checksum::compute(0, &out[..20]);
            out[10..12].copy_from_slice(&sum.to_be_bytes());
            let sum = checksum::compute(0, &out[20..]);
            out[22..24].copy_from_slice(&sum.to_be_bytes());
            Some(out)
        }
        Some(6) if quoted.len() >= 40 => {
            let cut = &quoted[..40 + cut % (quoted.len() - 39)];
            let mut out = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            out.extend_from_slice(&quoted[24..40]);
            out.extend_from_slice(&quoted[8..24]);
            out.extend_from_slice(&[1, code % 8, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(cut);
            let length = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&length.to_be_bytes());
            Some(out)
        }
        _ => None,
    }
}

/// Points a fuzzed IP packet at a destination of `state` (address, protocol, port) from one
/// of its sources, keeping a valid IPv4 header checksum valid.
fn aim(state: &ClusterState, packet: &mut [u8], destination: &Index, source: &Index) {
    let (dst, protocol) = *destination.get(&destinations(state));
    let family: Vec<IpAddr> = sources(state)
        .into_iter()
        .filter(|s| s.is_ipv4() == dst.is_ipv4())
        .collect();
    let src = *source.get(&family);
    let l4 = match (packet.first().map(|b| b >> 4), dst.ip(), src) {
        (Some(4), IpAddr::V4(d), IpAddr::V4(s)) if packet.len() >= 20 => {
            let ihl = usize::from(packet[0] & 0xf) * 4;
            let valid =
                ihl >= 20 && packet.len() >= ihl && checksum::compute(0, &packet[..ihl]) == 0;
            packet[9] = protocol.ip_number();
            packet[12..16].copy_from_slice(&s.octets());
            packet[16..20].copy_from_slice(&d.octets());
            if valid {
                packet[10..12].fill(0);
                let sum = checksum::compute(0, &packet[..ihl]);
                packet[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            ihl
        }
        (Some(6), IpAddr::V6(d), IpAddr::V6(s)) if packet.len() >= 40 => {
            packet[6] = protocol.ip_number();
            packet[8..24].copy_from_slice(&s.octets());
            packet[24..40].copy_from_slice(&d.octets());
            40
        }
        _ => return,
    };
    if packet.len() >= l4 + 4 {
        packet[l4 + 2..l4 + 4].copy_from_slice(&dst.port().to_be_bytes());
    }
}

/// Swaps source and destination addresses and (when present) ports, by the layout of a
/// plain IPv4/IPv6 header.
fn swap(packet: &mut [u8]) {
    let (src, dst, len, l4) = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => (12, 16, 4, usize::from(packet[0] & 0xf) * 4),
        Some(6) if packet.len() >= 40 => (8, 24, 16, 40),
        _ => return,
    };
    for i in 0..len {
        packet.swap(src + i, dst + i);
    }
    if l4 >= 20 && packet.len() >= l4 + 4 {
        packet.swap(l4, l4 + 2);
        packet.swap(l4 + 1, l4 + 3);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Properties 1 and 2 over fuzzed packets, with connection state carried between them.
    #[test]
    fn arbitrary_bytes_never_panic(
        state in any_cluster(),
        feeds in prop::collection::vec((feed(), call(), 0u64..200), 1..16),
    ) {
        let mut engine = Engine::new(&state);
        let mut previous: Vec<u8> = Vec::new();
        let mut calls = 0u64;
        let mut now = 0u64;
        let mut reply = vec![0u8; reject::MAX_REPLY_LEN];
        for (feed, call, advance) in feeds {
            now += advance * 1_000_000_000 / 4;
            let mut packet = match feed {
                Feed::Fresh(mut bytes, target) => {
                    if let Some((destination, source)) = target {
                        aim(&state, &mut bytes, &destination, &source);
                    }
                    bytes
                }
                Feed::SwapPrevious => {
                    let mut p = previous.clone();
                    swap(&mut p);
                    p
                }
                Feed::RepeatPrevious => previous.clone(),
                Feed::IcmpAboutPrevious(cut, code) => {
                    icmp_error_about(&previous, cut, code).unwrap_or_else(|| previous.clone())
                }
            };
            let input = packet.clone();
            let verdict = run(&mut engine, call, &mut packet, Instant::from_nanos(now));
            calls += 1;
            if let Verdict::Reject(_) = verdict {
                // Must not panic; the reply quotes the packet as it was.
                let _ = engine.write_reject_reply(&input, &mut reply);
            }
            if let Verdict::Translated(t) = verdict {
                // A translated packet parsed; whatever the transport, the IP header sum holds.
                if let Ok((header, _)) = Ipv4Header::from_slice(&packet)
                    && Ipv4Header::from_slice(&input).is_ok_and(|(h, _)| h.header_checksum == h.calc_header_checksum())
                {
                    prop_assert_eq!(header.header_checksum, header.calc_header_checksum(), "{:?}", t);
                }
            }
            prop_assert_eq!(engine.counters().total(), calls);
            previous = packet;
        }
        let _ = engine.poll_at();
        // Once every timeout has run out, nothing is tracked.
        engine.handle_timeout(Instant::from_secs(10_000_000));
        prop_assert_eq!(engine.connections(), 0);
        prop_assert_eq!(engine.counters().total(), calls);
    }

    /// Property 1 for bytes with no structure at all, each through every entry point.
    #[test]
    fn raw_bytes_never_panic(
        state in notes_cluster(),
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1500), 1..4),
    ) {
        let mut engine = Engine::new(&state);
        let calls = [
            Call::Hook(Hook::Prerouting),
            Call::Hook(Hook::Output),
            Call::Hook(Hook::Postrouting),
            Call::Path(Path::Forward),
            Call::Path(Path::LocalOut),
        ];
        let mut count = 0;
        for packet in packets {
            for call in calls {
                let mut p = packet.clone();
                run(&mut engine, call, &mut p, Instant::ZERO);
                count += 1;
                prop_assert_eq!(engine.counters().total(), count);
            }
        }
    }
}
