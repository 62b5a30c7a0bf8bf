//! Capture files written (pcap-file) for replay, and its output read back.

use std::borrow::Cow;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::{DataLink, Endianness, TsResolution};

// ---- capture files (pcap-file) -----------------------------------------------------------

/// One record: timestamp (ns), captured bytes, original length.
pub struct Rec {
    pub nanos: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

pub fn rec(nanos: u64, data: Vec<u8>) -> Rec {
    let orig_len = data.len() as u32;
    Rec {
        nanos,
        data,
        orig_len,
    }
}

pub fn tmp(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_dead_runs_files);
    let dir = std::env::temp_dir().join(format!("kubenat-replay-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Test binaries have no teardown: each run removes the files of earlier runs whose
/// process is gone (tens of MB each).
pub fn remove_dead_runs_files() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kubenat-replay-test-"))
        else {
            continue;
        };
        if !FsPath::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn pcap_header(link: u32, resolution: TsResolution, endianness: Endianness) -> PcapHeader {
    PcapHeader {
        snaplen: 65535,
        datalink: DataLink::from(link),
        ts_resolution: resolution,
        endianness,
        ..PcapHeader::default()
    }
}

pub fn write_pcap_with(path: &FsPath, header: PcapHeader, recs: &[Rec]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for r in recs {
        // Raw records: a truncated capture (caplen < len) is written as it is.
        let frac = (r.nanos % 1_000_000_000) as u32;
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: (r.nanos / 1_000_000_000) as u32,
            ts_frac: match header.ts_resolution {
                TsResolution::MicroSecond => frac / 1000,
                TsResolution::NanoSecond => frac,
            },
            incl_len: r.data.len() as u32,
            orig_len: r.orig_len,
            data: Cow::Borrowed(&r.data),
        })
        .unwrap();
    }
}

pub fn write_pcap(path: &FsPath, link: u32, recs: &[Rec]) {
    let header = pcap_header(link, TsResolution::NanoSecond, Endianness::Little);
    write_pcap_with(path, header, recs);
}

/// A pcapng with one interface of `link`; `tsresol` is the interface's `if_tsresol`
/// (None: the default, microseconds).
pub fn write_pcapng(
    path: &FsPath,
    link: u32,
    tsresol: Option<u8>,
    endianness: Endianness,
    recs: &[Rec],
) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapNgWriter::with_endianness(file, endianness).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::from(link), 65535);
    if let Some(r) = tsresol {
        idb.options.push(InterfaceDescriptionOption::IfTsResol(r));
    }
    w.write_pcapng_block(idb).unwrap();
    for r in recs {
        let units = match tsresol {
            None => r.nanos / 1000,
            Some(9) => r.nanos,
            Some(b) if b & 0x80 != 0 => {
                ((u128::from(r.nanos) << (b & 0x7f)) / 1_000_000_000) as u64
            }
            Some(other) => panic!("unused tsresol {other}"),
        };
        // pcap-file writes the Duration's nanosecond count as the raw 64-bit timestamp,
        // whatever the interface's resolution: give it the count in the interface's units.
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(units),
            original_len: r.orig_len,
            data: Cow::Borrowed(&r.data),
            options: vec![],
        })
        .unwrap();
    }
}

pub struct Out {
    pub header: PcapHeader,
    /// (timestamp ns, bytes, original length)
    pub packets: Vec<(u64, Vec<u8>, u32)>,
}

pub fn read_out(path: &FsPath) -> Out {
    let bytes = std::fs::read(path).unwrap();
    // The output is a plain pcap, not pcapng.
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(
        [0xa1b2c3d4, 0xa1b23c4d].contains(&magic)
            || [0xa1b2c3d4, 0xa1b23c4d].contains(&magic.swap_bytes()),
        "output is not a pcap: magic {magic:#x}"
    );
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let header = r.header();
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet() {
        let p: PcapPacket = p.unwrap();
        packets.push((
            p.timestamp.as_nanos() as u64,
            p.data.into_owned(),
            p.orig_len,
        ));
    }
    Out { header, packets }
}
