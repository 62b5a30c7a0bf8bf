//! `kubenat_replay` on damaged input: malformed frames counted and dropped, unreadable
//! capture files refused with an error naming the file.

mod common;

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use etherparse::PacketBuilder;
use kubenat_core::Path;
use kubenat_replay::{ReplayError, replay};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{PcapNgWriter, RawBlock};
use pcap_file::{DataLink, Endianness};

use common::capture::{Rec, read_out, rec, tmp, write_pcap};
use common::checks::checked_tcp;
use common::packets::{eth, sll, sll2, syn};
use common::{CLIENT, NGINX_ENDPOINT, NODE_PORT, T0, engine, run, sa, verdicts};

// ---- (4) malformed frames ----------------------------------------------------------------

/// Frames cut short in their link header, IP packets that are not what the link says or
/// that cannot be read, and truncated captures are dropped, counted, and the replay goes on.
#[test]
fn malformed_frames_are_counted_not_fatal() {
    let good = syn(CLIENT, NODE_PORT);
    let v6 = {
        let mut out = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(1, 2, 0, 100)
            .write(&mut out, b"")
            .unwrap();
        out
    };
    let mut ipv6_as_ipv4 = eth(&v6);
    ipv6_as_ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut vlan_cut = eth(&good)[..12].to_vec();
    vlan_cut.extend_from_slice(&[0x81, 0x00, 0x00]);
    let mut garbage_ip = eth(&good)[..14].to_vec();
    garbage_ip.extend_from_slice(&[0x45, 0, 0]);
    let truncated = eth(&good);

    // (name, record, expected drop reason; None: the engine's malformed-* reason)
    let rows: Vec<(&str, Rec, Option<&str>)> = vec![
        (
            "ten bytes",
            rec(T0, eth(&good)[..10].to_vec()),
            Some("malformed-link-header"),
        ),
        (
            "VLAN tag cut",
            rec(T0, vlan_cut),
            Some("malformed-link-header"),
        ),
        (
            "IPv6 as IPv4",
            rec(T0, ipv6_as_ipv4),
            Some("ip-version-mismatch"),
        ),
        (
            "3-byte IP",
            rec(T0, garbage_ip),
            Some("malformed-ip-header"),
        ),
        (
            "caplen < len",
            Rec {
                nanos: T0,
                orig_len: truncated.len() as u32,
                data: truncated[..14 + 30].to_vec(),
            },
            None,
        ),
    ];
    let mut recs: Vec<Rec> = Vec::new();
    for (name, r, reason) in rows {
        // Each row alone: exactly that reason.
        let input = tmp("malformed-row.pcap");
        let output = tmp("malformed-row-out.pcap");
        write_pcap(&input, 1, std::slice::from_ref(&r));
        let s = run(&input, &output, Path::Forward);
        assert_eq!(verdicts(&s), [0, 0, 0, 1], "{name}: {s:?}");
        let (got, n) = s.by_reason.iter().next().expect("a reason");
        assert_eq!(*n, 1);
        match reason {
            Some(reason) => assert_eq!(got, reason, "{name}"),
            None => assert!(got.starts_with("malformed-"), "{name}: {got}"),
        }
        assert_eq!(read_out(&output).packets.len(), 0, "{name}: left out");
        recs.push(r);
    }
    // All of them, then a good packet: the replay goes on.
    recs.push(rec(T0 + 1, eth(&good)));
    let input = tmp("malformed.pcap");
    let output = tmp("malformed-out.pcap");
    write_pcap(&input, 1, &recs);
    let s = run(&input, &output, Path::Forward);
    assert_eq!(s.packets, 6);
    assert_eq!(verdicts(&s), [1, 0, 0, 5], "{s:?}");
    assert_eq!(s.by_reason["malformed-link-header"], 2);
    assert_eq!(s.written, 1);
    let out = read_out(&output);
    assert_eq!(out.packets.len(), 1);
    assert_eq!(checked_tcp(&out.packets[0].1[14..]).1, sa(NGINX_ENDPOINT));

    // Other link types: a cooked header cut short, an IPv6 packet on LINKTYPE_IPV4.
    let cases: &[(&str, u32, Vec<u8>, &str)] = &[
        (
            "sll short",
            113,
            sll(&good)[..12].to_vec(),
            "malformed-link-header",
        ),
        (
            "sll2 short",
            276,
            sll2(&good)[..19].to_vec(),
            "malformed-link-header",
        ),
        ("v6 on ipv4", 228, v6.clone(), "ip-version-mismatch"),
        ("v4 on ipv6", 229, good.clone(), "ip-version-mismatch"),
        ("empty raw", 101, vec![], "malformed-ip-header"),
    ];
    for (name, link, frame, reason) in cases {
        let input = tmp("malformed-link.pcap");
        let output = tmp("malformed-link-out.pcap");
        // Then a packet the link type carries: the replay goes on past the bad one.
        let next = if *link == 229 {
            v6.clone()
        } else {
            good.clone()
        };
        write_pcap(&input, *link, &[rec(T0, frame.clone()), rec(T0 + 1, next)]);
        let s = run(&input, &output, Path::Forward);
        assert_eq!(s.by_reason.get(*reason), Some(&1), "{name}: {s:?}");
        assert_eq!(s.by_verdict["drop"], 1, "{name}");
        assert_eq!(s.written, 1, "{name}");
    }

    // A pcapng packet block whose captured length runs past the block: counted.
    let input = tmp("malformed.pcapng");
    let output = tmp("malformed-ng-out.pcap");
    {
        let file = std::fs::File::create(&input).unwrap();
        let mut w = PcapNgWriter::with_endianness(file, Endianness::Little).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        let mut body = Vec::new();
        for v in [0u32, 0, 0, 4000, 4000] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&[0; 8]);
        w.write_raw_block(&RawBlock {
            type_: 6,
            initial_len: 12 + body.len() as u32,
            body: Cow::Owned(body.clone()),
            trailer_len: 12 + body.len() as u32,
        })
        .unwrap();
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // The raw count in the interface's default unit, microseconds (see write_pcapng).
            timestamp: Duration::from_nanos(T0 / 1000),
            original_len: eth(&good).len() as u32,
            data: Cow::Owned(eth(&good)),
            options: vec![],
        })
        .unwrap();
    }
    let s = run(&input, &output, Path::Forward);
    assert_eq!(s.packets, 2);
    assert_eq!(
        s.by_reason.get("malformed-capture-record"),
        Some(&1),
        "{s:?}"
    );
    assert_eq!(s.by_verdict["translated"], 1);
    let out = read_out(&output);
    // pcapng's "no snaplen" (0) becomes the usual 262144.
    assert_eq!(out.header.snaplen, 262_144);
    assert_eq!(out.packets[0].0, T0, "microsecond default of if_tsresol");
}

// ---- (5) unreadable files ----------------------------------------------------------------

#[test]
fn unreadable_captures_are_errors_naming_the_file() {
    let output = tmp("err-out.pcap");
    let garbage = tmp("garbage.pcap");
    std::fs::write(&garbage, b"this is not a packet capture at all\n").unwrap();
    let empty = tmp("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let header_only = tmp("short-header.pcap");
    std::fs::write(&header_only, 0xa1b2c3d4u32.to_le_bytes()).unwrap();
    let wifi = tmp("wifi.pcap");
    write_pcap(&wifi, 105, &[]);
    let cut = tmp("cut.pcap");
    write_pcap(
        &cut,
        1,
        &[
            rec(T0, eth(&syn(CLIENT, NODE_PORT))),
            rec(T0 + 1, eth(&syn(CLIENT, NODE_PORT))),
        ],
    );
    let len = std::fs::metadata(&cut).unwrap().len();
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..len as usize - 10]).unwrap();
    let missing = tmp("does-not-exist.pcap");

    type Is = fn(&ReplayError) -> bool;
    let rows: &[(&PathBuf, Is, &str)] = &[
        (
            &garbage,
            |e| matches!(e, ReplayError::NotACapture { .. }),
            "not a pcap",
        ),
        (
            &empty,
            |e| matches!(e, ReplayError::NotACapture { .. }),
            "not a pcap",
        ),
        (
            &header_only,
            |e| matches!(e, ReplayError::Malformed { .. }),
            "header",
        ),
        (
            &wifi,
            |e| matches!(e, ReplayError::UnsupportedLinkType { link_type: 105, .. }),
            "105",
        ),
        (
            &cut,
            |e| matches!(e, ReplayError::Malformed { record: 2, .. }),
            "record 2",
        ),
        (
            &missing,
            |e| matches!(e, ReplayError::Io { .. }),
            "does-not-exist",
        ),
    ];
    for (input, is, text) in rows {
        let mut engine = engine();
        let err = replay(&mut engine, input, &output, Path::Forward, &mut |_, _| {})
            .expect_err(&input.display().to_string());
        let shown = err.to_string();
        assert!(is(&err), "{}: {err:?}", input.display());
        assert!(
            shown.contains(&input.display().to_string()),
            "names the file: {shown}"
        );
        assert!(shown.contains(text), "{shown}");
    }
    // What was replayed before the cut is written.
    assert_eq!(read_out(&output).packets.len(), 1);
}
