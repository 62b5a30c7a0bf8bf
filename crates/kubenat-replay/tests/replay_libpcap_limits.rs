//! `kubenat_replay` and the records libpcap refuses: over its maximum captured length, a
//! fraction of a second that is a second or more, longer than the file's snaplen.

mod common;

use std::borrow::Cow;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use kubenat_core::Path;
use kubenat_replay::{ReplayError, replay};
use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::{DataLink, Endianness, TsResolution};

use common::capture::{pcap_header, read_out, rec, tmp, write_pcapng};
use common::packets::{eth, syn};
use common::{CLIENT, NODE_PORT, T0, engine, run};

// ---- (6) records libpcap refuses -----------------------------------------------------------

/// A pcap of raw records: (seconds, fraction, captured bytes), orig_len = captured length.
fn write_raw_pcap(path: &FsPath, header: PcapHeader, recs: &[(u32, u32, &[u8])]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (ts_sec, ts_frac, data) in recs {
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: *ts_sec,
            ts_frac: *ts_frac,
            incl_len: data.len() as u32,
            orig_len: data.len() as u32,
            data: Cow::Borrowed(data),
        })
        .unwrap();
    }
}

/// What libpcap and Wireshark refuse is refused with the reason, naming the record: a
/// captured length over libpcap's 262,144-byte maximum (even when the whole record is in
/// the file), a fraction of a second that is a second or more. A record longer than its
/// snaplen is dropped with a counted reason, never written with a header rewritten to fit.
#[test]
fn records_libpcap_refuses() {
    let good = eth(&syn(CLIENT, NODE_PORT));
    let huge = vec![0u8; 9 << 20];
    let sec = (T0 / 1_000_000_000) as u32;
    let header = |snaplen: u32, resolution| PcapHeader {
        snaplen,
        ..pcap_header(1, resolution, Endianness::Little)
    };
    let output = tmp("refused-out.pcap");

    // (name, file, record, what the error says)
    let huge_ng = tmp("huge.pcapng");
    write_pcapng(
        &huge_ng,
        1,
        None,
        Endianness::Little,
        &[rec(T0, huge.clone())],
    );
    let rows: Vec<(&str, PathBuf, u64, &[&str])> = vec![
        (
            "9 MiB record, whole, snaplen 0",
            {
                let p = tmp("huge-0.pcap");
                write_raw_pcap(
                    &p,
                    header(0, TsResolution::NanoSecond),
                    &[(sec, 0, &good), (sec, 1, &huge)],
                );
                p
            },
            2,
            &["9437184 bytes", "maximum of 262144"],
        ),
        (
            "9 MiB record, whole, snaplen 65535",
            {
                let p = tmp("huge-65535.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::MicroSecond),
                    &[(sec, 0, &huge)],
                );
                p
            },
            1,
            &["9437184 bytes", "maximum of 262144", "snaplen is 65535"],
        ),
        (
            "9 MiB pcapng block, whole",
            huge_ng,
            2,
            &["block of 94372", "maximum of 8000000", "262144"],
        ),
        (
            "262145-byte record, snaplen 0x7fffffff",
            {
                let p = tmp("over-max.pcap");
                let over = vec![0u8; 262_145];
                write_raw_pcap(
                    &p,
                    header(0x7fff_ffff, TsResolution::NanoSecond),
                    &[(sec, 0, &over)],
                );
                p
            },
            1,
            &["262145 bytes", "maximum of 262144"],
        ),
        (
            "nanoseconds 10^9",
            {
                let p = tmp("ns.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::NanoSecond),
                    &[(sec, 999_999_999, &good), (sec, 1_000_000_000, &good)],
                );
                p
            },
            2,
            &["1000000000 nanoseconds", "a second or more"],
        ),
        (
            "microseconds 10^6",
            {
                let p = tmp("us.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::MicroSecond),
                    &[(sec, 1_000_000, &good)],
                );
                p
            },
            1,
            &["1000000 microseconds", "a second or more"],
        ),
        (
            "nanoseconds u32::MAX",
            {
                let p = tmp("ns-max.pcap");
                write_raw_pcap(
                    &p,
                    header(65535, TsResolution::NanoSecond),
                    &[(sec, u32::MAX, &good)],
                );
                p
            },
            1,
            &["4294967295 nanoseconds"],
        ),
    ];
    for (name, input, record, texts) in rows {
        let mut engine = engine();
        let err =
            replay(&mut engine, &input, &output, Path::Forward, &mut |_, _| {}).expect_err(name);
        let shown = err.to_string();
        assert!(
            matches!(err, ReplayError::Malformed { record: r, .. } if r == record),
            "{name}: {err:?}"
        );
        assert!(
            shown.contains(&format!("record {record}")),
            "{name}: {shown}"
        );
        assert!(!shown.contains("ends in the middle"), "{name}: {shown}");
        for text in texts {
            assert!(shown.contains(text), "{name}: {shown} lacks {text:?}");
        }
    }

    // Cut short inside a large record: that, precisely.
    let cut = tmp("cut-large.pcap");
    let large = vec![0u8; 200_000];
    write_raw_pcap(
        &cut,
        header(0, TsResolution::NanoSecond),
        &[(sec, 0, &large)],
    );
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let err = replay(&mut engine(), &cut, &output, Path::Forward, &mut |_, _| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("ends in the middle of a record (199000 of 200000 captured bytes)"),
        "{err}"
    );

    // Longer than the snaplen (pcap's header, pcapng's interface): dropped and counted,
    // the next packet replayed.
    let over = tmp("over-snaplen.pcap");
    write_raw_pcap(
        &over,
        header(40, TsResolution::NanoSecond),
        &[(sec, 0, &good), (sec, 1, &good[..40])],
    );
    let over_ng = tmp("over-snaplen.pcapng");
    {
        let file = std::fs::File::create(&over_ng).unwrap();
        let mut w = PcapNgWriter::with_endianness(file, Endianness::Little).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 40))
            .unwrap();
        for (i, data) in [&good[..], &good[..40]].into_iter().enumerate() {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(T0 / 1000 + i as u64),
                original_len: good.len() as u32,
                data: Cow::Borrowed(data),
                options: vec![],
            })
            .unwrap();
        }
    }
    for input in [over, over_ng] {
        let s = run(&input, &output, Path::Forward);
        assert_eq!(s.packets, 2, "{}", input.display());
        assert_eq!(
            s.by_reason.get("captured-beyond-snaplen"),
            Some(&1),
            "{}: {s:?}",
            input.display()
        );
        let out = read_out(&output);
        assert_eq!(out.header.snaplen, 40);
        // Only the second record, within the snaplen, is written; none is longer than it.
        assert_eq!(out.packets.len(), s.written as usize);
        assert!(
            out.packets.iter().all(|p| p.1.len() <= 40),
            "{}",
            input.display()
        );
        assert!(
            out.packets.iter().all(|p| p.1 != good),
            "{}",
            input.display()
        );
    }
}
