//! `kubenat replay`: a packet capture through one node's engine, in capture order, with the
//! capture's timestamps as time, written back out as the packets leave the node.
//!
//! Input: pcap (either byte order, micro- or nanosecond timestamps) or pcapng, told apart by
//! their magic numbers. Link types: Ethernet (with 802.1Q/802.1ad VLAN tags), raw IP
//! (`LINKTYPE_RAW`, `LINKTYPE_IPV4`, `LINKTYPE_IPV6`) and Linux cooked capture v1 and v2.
//!
//! Output: a pcap of the input's link type and snaplen. Accepted and translated packets keep
//! their link header (translated ones carry the rewritten IP bytes), dropped ones are left
//! out, a rejected one is replaced by the ICMP port unreachable the node sends back. Frames
//! that are not IP (ARP, LLDP…) pass unchanged. Frames too short for their link header and
//! IP packets the engine cannot read are dropped with a counted reason; only a capture file
//! that cannot be read at all is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};

use kubenat_core::{Engine, Instant, Path, Verdict};
use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::{PcapNgReader, RawBlock};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use serde::Serialize;

/// `progress` is called each time about this many more input bytes have been read.
const PROGRESS_STEP: u64 = 64 * 1024;
/// Snaplen written when the input does not state one (pcapng's 0 means "no limit").
const DEFAULT_SNAPLEN: u32 = 262_144;
/// Longest reply [`Engine::write_reject_reply`] writes.
const REPLY_BUFFER: usize = 1280;

/// Link-level reasons a frame is dropped before the engine sees it.
pub const MALFORMED_LINK_HEADER: &str = "malformed-link-header";
/// The link header says IPv4 (or IPv6) and the packet's version field says otherwise.
pub const IP_VERSION_MISMATCH: &str = "ip-version-mismatch";
/// pcapng: a packet on an interface of another link type than the first one (the output
/// pcap holds one link type).
pub const OTHER_LINK_TYPE: &str = "other-link-type";
/// pcapng: a packet block the capture library could not decode.
pub const MALFORMED_CAPTURE_RECORD: &str = "malformed-capture-record";

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets per verdict: `translated`, `accept`, `reject`, `drop` (always all four).
    /// Frames that are not IP count as `accept`.
    pub by_verdict: BTreeMap<String, u64>,
    /// Dropped and rejected packets per reason: the engine's reasons plus the link-level
    /// ones of this module (e.g. `malformed-link-header`).
    pub by_reason: BTreeMap<String, u64>,
    /// Packets written to the output (rejected ones count once, as their reply).
    pub written: u64,
}

/// Why a replay could not run or finish.
#[derive(Debug)]
pub enum ReplayError {
    /// A file could not be opened, created, read or written.
    Io { file: PathBuf, source: io::Error },
    /// Not a pcap or pcapng file.
    NotACapture { file: PathBuf },
    /// A pcap/pcapng file whose structure cannot be read: at `record` (a pcap packet record
    /// or a pcapng block after the first section header, counting from 1; 0 for the file
    /// header).
    Malformed {
        file: PathBuf,
        record: u64,
        detail: String,
    },
    /// A link type replay does not handle.
    UnsupportedLinkType { file: PathBuf, link_type: u32 },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io { file, source } => write!(f, "{}: {source}", file.display()),
            ReplayError::NotACapture { file } => write!(
                f,
                "{}: not a pcap or pcapng capture (unknown magic number)",
                file.display()
            ),
            ReplayError::Malformed {
                file,
                record: 0,
                detail,
            } => write!(f, "{}: unreadable capture header: {detail}", file.display()),
            ReplayError::Malformed {
                file,
                record,
                detail,
            } => write!(
                f,
                "{}: unreadable capture at record {record}: {detail} (the records before it \
                 were replayed and written)",
                file.display()
            ),
            ReplayError::UnsupportedLinkType { file, link_type } => write!(
                f,
                "{}: link type {link_type} is not supported (Ethernet 1, raw IP 101/228/229, \
                 Linux cooked SLL 113 and SLL2 276 are)",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Replays the capture `input` through `engine` as traffic on `path`, writing the packets
/// that leave the node to `output` (a pcap). `progress(read, total)` is called as the input
/// is read (about every 64 KiB, and once at the start and at the end).
pub fn replay(
    engine: &mut Engine,
    input: &FsPath,
    output: &FsPath,
    path: Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, ReplayError> {
    let io_in = |source| ReplayError::Io {
        file: input.to_path_buf(),
        source,
    };
    let mut file = File::open(input).map_err(io_in)?;
    let total = file.metadata().map_err(io_in)?.len();
    let mut magic = [0u8; 12];
    let got = read_up_to(&mut file, &mut magic).map_err(io_in)?;
    file.seek(SeekFrom::Start(0)).map_err(io_in)?;
    let first = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
    let mut run = Run {
        engine,
        path,
        input,
        output,
        writer: None,
        link: Link::Raw,
        snaplen: DEFAULT_SNAPLEN,
        frame: Vec::with_capacity(DEFAULT_SNAPLEN as usize),
        reply: Vec::with_capacity(64 + REPLY_BUFFER),
        counts: Counts::default(),
        progress: Progress {
            callback: progress,
            total,
            next: PROGRESS_STEP,
        },
    };
    run.progress.report(0);
    match first {
        _ if got < 4 => return Err(ReplayError::NotACapture { file: input.into() }),
        0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => run.pcap(file)?,
        0x0A0D_0D0A => {
            let shb_len = match &magic[8..12] {
                [0x1A, 0x2B, 0x3C, 0x4D] => {
                    u32::from_be_bytes([magic[4], magic[5], magic[6], magic[7]])
                }
                _ => u32::from_le_bytes([magic[4], magic[5], magic[6], magic[7]]),
            };
            run.pcapng(file, u64::from(shb_len))?
        }
        _ => return Err(ReplayError::NotACapture { file: input.into() }),
    }
    run.finish()
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The link layers replay understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Ethernet,
    /// Raw IP (`LINKTYPE_RAW`): the version field tells.
    Raw,
    /// `LINKTYPE_IPV4`
    RawV4,
    /// `LINKTYPE_IPV6`
    RawV6,
    /// Linux cooked capture v1 (16-byte header)
    Sll,
    /// Linux cooked capture v2 (20-byte header)
    Sll2,
}

impl Link {
    fn from_datalink(datalink: DataLink) -> Option<Link> {
        match u32::from(datalink) {
            1 => Some(Link::Ethernet),
            101 => Some(Link::Raw),
            228 => Some(Link::RawV4),
            229 => Some(Link::RawV6),
            113 => Some(Link::Sll),
            276 => Some(Link::Sll2),
            _ => None,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// Linux `PACKET_OUTGOING`: the SLL packet type of a packet the node sends.
const PACKET_OUTGOING: u8 = 4;

/// Where the IP packet starts in a frame, or what else the frame is.
enum Frame {
    /// IP at this offset; `version` is what the link header says (None: read the packet).
    Ip { offset: usize, version: Option<u8> },
    /// Not IP: passes unchanged.
    Other,
    /// Cut short inside the link header.
    Malformed,
}

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    frame
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn ether_version(ethertype: u16) -> Option<u8> {
    match ethertype {
        ETHERTYPE_IPV4 => Some(4),
        ETHERTYPE_IPV6 => Some(6),
        _ => None,
    }
}

fn classify(link: Link, frame: &[u8]) -> Frame {
    let ip_or_other = |offset: usize, ethertype: u16| match ether_version(ethertype) {
        Some(v) => Frame::Ip {
            offset,
            version: Some(v),
        },
        None => Frame::Other,
    };
    match link {
        Link::Raw => Frame::Ip {
            offset: 0,
            version: None,
        },
        Link::RawV4 => Frame::Ip {
            offset: 0,
            version: Some(4),
        },
        Link::RawV6 => Frame::Ip {
            offset: 0,
            version: Some(6),
        },
        Link::Ethernet => {
            let mut at = 12;
            loop {
                let Some(ethertype) = be16(frame, at) else {
                    return Frame::Malformed;
                };
                if ETHERTYPE_VLAN.contains(&ethertype) {
                    // Tag control information, then the next type.
                    at += 4;
                    continue;
                }
                return ip_or_other(at + 2, ethertype);
            }
        }
        Link::Sll => match be16(frame, 14) {
            Some(protocol) if frame.len() >= 16 => ip_or_other(16, protocol),
            _ => Frame::Malformed,
        },
        Link::Sll2 => match be16(frame, 0) {
            Some(protocol) if frame.len() >= 20 => ip_or_other(20, protocol),
            _ => Frame::Malformed,
        },
    }
}

/// Per-verdict and per-reason counts, keyed by static names so counting never allocates.
#[derive(Default)]
struct Counts {
    packets: u64,
    translated: u64,
    accept: u64,
    reject: u64,
    drop: u64,
    reasons: BTreeMap<&'static str, u64>,
    written: u64,
}

impl Counts {
    fn dropped(&mut self, reason: &'static str) {
        self.drop += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }

    fn rejected(&mut self, reason: &'static str) {
        self.reject += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }

    fn summary(&self) -> Summary {
        let by_verdict = [
            ("translated", self.translated),
            ("accept", self.accept),
            ("reject", self.reject),
            ("drop", self.drop),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Summary {
            packets: self.packets,
            by_verdict,
            by_reason: self
                .reasons
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            written: self.written,
        }
    }
}

struct Progress<'p> {
    callback: &'p mut dyn FnMut(u64, u64),
    total: u64,
    next: u64,
}

impl Progress<'_> {
    fn report(&mut self, read: u64) {
        (self.callback)(read.min(self.total), self.total);
    }

    fn advance(&mut self, read: u64) {
        if read >= self.next {
            self.report(read);
            self.next = (read / PROGRESS_STEP + 1) * PROGRESS_STEP;
        }
    }
}

/// A packet's timestamp as it goes to the output file.
#[derive(Clone, Copy)]
struct Stamp {
    secs: u32,
    /// Micro- or nanoseconds, as the output's resolution says.
    frac: u32,
}

struct Run<'a, 'p> {
    engine: &'a mut Engine,
    path: Path,
    input: &'a FsPath,
    output: &'a FsPath,
    writer: Option<PcapWriter<BufWriter<File>>>,
    link: Link,
    snaplen: u32,
    /// The frame being processed (the engine rewrites its IP bytes in place).
    frame: Vec<u8>,
    /// A rejected packet's reply, with its link header.
    reply: Vec<u8>,
    counts: Counts,
    progress: Progress<'p>,
}

impl Run<'_, '_> {
    fn malformed(&self, record: u64, error: PcapError) -> ReplayError {
        let detail = match error {
            PcapError::IncompleteBuffer => "cut short".to_string(),
            PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                "the file ends in the middle of a record".to_string()
            }
            PcapError::IoError(source) => {
                return ReplayError::Io {
                    file: self.input.to_path_buf(),
                    source,
                };
            }
            other => other.to_string(),
        };
        ReplayError::Malformed {
            file: self.input.to_path_buf(),
            record,
            detail,
        }
    }

    fn open_output(&mut self, header: PcapHeader) -> Result<(), ReplayError> {
        let io_out = |source| ReplayError::Io {
            file: self.output.to_path_buf(),
            source,
        };
        let file = File::create(self.output).map_err(io_out)?;
        let writer =
            PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| match e {
                PcapError::IoError(source) => io_out(source),
                other => io_out(io::Error::other(other.to_string())),
            })?;
        self.snaplen = header.snaplen;
        self.writer = Some(writer);
        Ok(())
    }

    fn pcap(&mut self, file: File) -> Result<(), ReplayError> {
        let mut reader = PcapReader::new(file).map_err(|e| self.malformed(0, e))?;
        let header = reader.header();
        self.link = Link::from_datalink(header.datalink).ok_or_else(|| {
            ReplayError::UnsupportedLinkType {
                file: self.input.to_path_buf(),
                link_type: header.datalink.into(),
            }
        })?;
        let micros = header.ts_resolution == TsResolution::MicroSecond;
        self.open_output(PcapHeader {
            snaplen: if header.snaplen == 0 {
                DEFAULT_SNAPLEN
            } else {
                header.snaplen
            },
            ..header
        })?;
        let mut read = 24u64;
        while let Some(record) = reader.next_raw_packet() {
            let record = match record {
                Ok(record) => record,
                Err(e) => return Err(self.malformed(self.counts.packets + 1, e)),
            };
            read += 16 + u64::from(record.incl_len);
            let nanos = u64::from(record.ts_frac) * if micros { 1000 } else { 1 };
            let now = u64::from(record.ts_sec) * 1_000_000_000 + nanos;
            let stamp = Stamp {
                secs: record.ts_sec,
                frac: record.ts_frac,
            };
            self.frame.clear();
            self.frame.extend_from_slice(&record.data);
            let orig_len = record.orig_len;
            drop(record);
            self.packet(Instant::from_nanos(now), stamp, orig_len)?;
            self.progress.advance(read);
        }
        Ok(())
    }

    fn pcapng(&mut self, file: File, shb_len: u64) -> Result<(), ReplayError> {
        let mut reader = PcapNgReader::new(file).map_err(|e| self.malformed(0, e))?;
        let mut endianness = reader.section().endianness;
        // (link type, timestamp units per second) of each interface of the current section.
        let mut interfaces: Vec<(DataLink, u64)> = Vec::new();
        let mut output_link: Option<DataLink> = None;
        let mut read = shb_len;
        let mut last_time = 0u64;
        let mut records = 0u64;
        loop {
            let block = match reader.next_raw_block() {
                None => break,
                Some(Ok(block)) => block,
                Some(Err(e)) => return Err(self.malformed(records + 1, e)),
            };
            records += 1;
            read += u64::from(block.initial_len);
            // Packets: (interface, timestamp in the interface's units or None, original length).
            let packet = match decode(&block, endianness) {
                Decoded::Section(e) => {
                    endianness = e;
                    interfaces.clear();
                    None
                }
                Decoded::Interface(link, snaplen, units) => {
                    interfaces.push((link, units));
                    if output_link.is_none() {
                        output_link = Some(link);
                        self.link = Link::from_datalink(link).ok_or_else(|| {
                            ReplayError::UnsupportedLinkType {
                                file: self.input.to_path_buf(),
                                link_type: link.into(),
                            }
                        })?;
                        self.open_output(PcapHeader {
                            snaplen: if snaplen == 0 {
                                DEFAULT_SNAPLEN
                            } else {
                                snaplen
                            },
                            datalink: link,
                            ts_resolution: TsResolution::NanoSecond,
                            endianness: Endianness::native(),
                            ..PcapHeader::default()
                        })?;
                    }
                    None
                }
                Decoded::Packet {
                    interface,
                    timestamp,
                    orig_len,
                    data,
                } => {
                    self.frame.clear();
                    self.frame.extend_from_slice(data);
                    Some((interface, timestamp, orig_len))
                }
                Decoded::BadPacket => {
                    self.counts.packets += 1;
                    self.counts.dropped(MALFORMED_CAPTURE_RECORD);
                    None
                }
                Decoded::Other => None,
            };
            if let Some((interface, timestamp, orig_len)) = packet {
                let iface = interfaces.get(interface as usize).copied();
                match (iface, output_link) {
                    (Some((link, units)), Some(out)) if link == out => {
                        if let Some(raw) = timestamp {
                            last_time = to_nanos(raw, units);
                        }
                        let stamp = Stamp {
                            secs: u32::try_from(last_time / 1_000_000_000).unwrap_or(u32::MAX),
                            frac: (last_time % 1_000_000_000) as u32,
                        };
                        self.packet(Instant::from_nanos(last_time), stamp, orig_len)?;
                    }
                    _ => {
                        self.counts.packets += 1;
                        self.counts.dropped(OTHER_LINK_TYPE);
                    }
                }
            }
            self.progress.advance(read);
        }
        if self.writer.is_none() {
            // No interface at all: an empty capture, written as an empty Ethernet pcap.
            self.open_output(PcapHeader {
                ts_resolution: TsResolution::NanoSecond,
                endianness: Endianness::native(),
                ..PcapHeader::default()
            })?;
        }
        Ok(())
    }

    /// Runs the frame in `self.frame` through the engine and writes what leaves the node.
    fn packet(&mut self, now: Instant, stamp: Stamp, orig_len: u32) -> Result<(), ReplayError> {
        self.counts.packets += 1;
        let (offset, version) = match classify(self.link, &self.frame) {
            Frame::Malformed => {
                self.counts.dropped(MALFORMED_LINK_HEADER);
                return Ok(());
            }
            Frame::Other => {
                self.counts.accept += 1;
                return self.write_frame(stamp, orig_len, false);
            }
            Frame::Ip { offset, version } => (offset, version),
        };
        let ip = &mut self.frame[offset..];
        if let (Some(expected), Some(first)) = (version, ip.first())
            && first >> 4 != expected
        {
            self.counts.dropped(IP_VERSION_MISMATCH);
            return Ok(());
        }
        match self.engine.process_path(self.path, ip, now) {
            Verdict::Accept => {
                self.counts.accept += 1;
                self.write_frame(stamp, orig_len, false)
            }
            Verdict::Translated(_) => {
                self.counts.translated += 1;
                self.write_frame(stamp, orig_len, false)
            }
            Verdict::Drop(reason) => {
                self.counts.dropped(reason.as_str());
                Ok(())
            }
            Verdict::Reject(reason) => {
                self.counts.rejected(reason.as_str());
                self.reply.clear();
                self.reply.extend_from_slice(&self.frame[..offset]);
                reply_link_header(self.link, &mut self.reply);
                self.reply.resize(offset + REPLY_BUFFER, 0);
                match self
                    .engine
                    .write_reject_reply(&self.frame[offset..], &mut self.reply[offset..])
                {
                    Ok(len) => {
                        self.reply.truncate(offset + len);
                        let len = u32::try_from(self.reply.len()).unwrap_or(u32::MAX);
                        self.write_frame(stamp, len, true)
                    }
                    // The engine rejected it, so it has an IP header: nothing to send if not.
                    Err(_) => Ok(()),
                }
            }
        }
    }

    fn write_frame(&mut self, stamp: Stamp, orig_len: u32, reply: bool) -> Result<(), ReplayError> {
        let data = if reply { &self.reply } else { &self.frame };
        let incl = data.len().min(self.snaplen as usize);
        let incl_len = incl as u32;
        let record = RawPcapPacket {
            ts_sec: stamp.secs,
            ts_frac: stamp.frac,
            incl_len,
            orig_len: orig_len.max(incl_len),
            data: std::borrow::Cow::Borrowed(&data[..incl]),
        };
        let writer = self.writer.as_mut().expect("output opened before packets");
        writer
            .write_raw_packet(&record)
            .map_err(|e| ReplayError::Io {
                file: self.output.to_path_buf(),
                source: match e {
                    PcapError::IoError(source) => source,
                    other => io::Error::other(other.to_string()),
                },
            })?;
        self.counts.written += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Summary, ReplayError> {
        if let Some(writer) = self.writer.take() {
            writer
                .into_writer()
                .flush()
                .map_err(|source| ReplayError::Io {
                    file: self.output.to_path_buf(),
                    source,
                })?;
        }
        let total = self.progress.total;
        self.progress.report(total);
        Ok(self.counts.summary())
    }
}

/// Turns the link header of a rejected frame (copied into `header`) into the header of
/// the reply the node sends back.
fn reply_link_header(link: Link, header: &mut [u8]) {
    match link {
        Link::Ethernet => {
            // Back to the sender: destination and source swapped, VLAN tags kept.
            let (dst, src) = header[..12].split_at_mut(6);
            dst.swap_with_slice(src);
        }
        Link::Sll => {
            // Sent by the node: PACKET_OUTGOING, and the node's own link address is unknown.
            header[0..2].copy_from_slice(&u16::from(PACKET_OUTGOING).to_be_bytes());
            header[4..14].fill(0);
        }
        Link::Sll2 => {
            header[10] = PACKET_OUTGOING;
            header[11..20].fill(0);
        }
        Link::Raw | Link::RawV4 | Link::RawV6 => {}
    }
}

/// Converts a pcapng timestamp in `units` per second to nanoseconds.
fn to_nanos(raw: u64, units: u64) -> u64 {
    if units == 1_000_000_000 {
        return raw;
    }
    let nanos = u128::from(raw) * 1_000_000_000 / u128::from(units.max(1));
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// Timestamp units per second from an `if_tsresol` option (default: microseconds).
fn units_per_second(tsresol: Option<u8>) -> u64 {
    match tsresol {
        None => 1_000_000,
        Some(r) if r & 0x80 != 0 => 1u64.checked_shl(u32::from(r & 0x7F)).unwrap_or(u64::MAX),
        Some(r) => 10u64.checked_pow(u32::from(r)).unwrap_or(u64::MAX),
    }
}

enum Decoded<'a> {
    Section(Endianness),
    /// (link type, snaplen, timestamp units per second)
    Interface(DataLink, u32, u64),
    Packet {
        interface: u32,
        /// In the interface's units; None for a simple packet block (no timestamp).
        timestamp: Option<u64>,
        orig_len: u32,
        data: &'a [u8],
    },
    BadPacket,
    Other,
}

const SECTION_HEADER_BLOCK: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION_BLOCK: u32 = 1;
const PACKET_BLOCK: u32 = 2;
const SIMPLE_PACKET_BLOCK: u32 = 3;
const ENHANCED_PACKET_BLOCK: u32 = 6;
/// `if_tsresol`
const OPTION_TSRESOL: u16 = 9;

/// Reads the blocks replay needs from a block body (pcap-file's own block decoding reads
/// every timestamp as nanoseconds and allocates for options, so the few fields are read
/// here).
fn decode<'a>(block: &RawBlock<'a>, endianness: Endianness) -> Decoded<'a> {
    let body: &'a [u8] = match &block.body {
        std::borrow::Cow::Borrowed(body) => body,
        // The reader lends blocks from its buffer; an owned body never comes from it.
        std::borrow::Cow::Owned(_) => return Decoded::Other,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = body.get(at..at + 2)?.try_into().ok()?;
        Some(match endianness {
            Endianness::Big => u16::from_be_bytes(b),
            Endianness::Little => u16::from_le_bytes(b),
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(match endianness {
            Endianness::Big => u32::from_be_bytes(b),
            Endianness::Little => u32::from_le_bytes(b),
        })
    };
    let packet = |interface: u32, timestamp: Option<u64>, header: usize| {
        let captured = u32_at(header - 8)? as usize;
        let orig_len = u32_at(header - 4)?;
        let data = body.get(header..header.checked_add(captured)?)?;
        Some(Decoded::Packet {
            interface,
            timestamp,
            orig_len,
            data,
        })
    };
    let timestamp = |at: usize| -> Option<u64> {
        Some((u64::from(u32_at(at)?) << 32) | u64::from(u32_at(at + 4)?))
    };
    match block.type_ {
        SECTION_HEADER_BLOCK => match body.get(..4) {
            Some([0x1A, 0x2B, 0x3C, 0x4D]) => Decoded::Section(Endianness::Big),
            _ => Decoded::Section(Endianness::Little),
        },
        INTERFACE_DESCRIPTION_BLOCK => {
            let (Some(link), Some(snaplen)) = (u16_at(0), u32_at(4)) else {
                return Decoded::Other;
            };
            let mut tsresol = None;
            let mut at = 8;
            while let (Some(code), Some(len)) = (u16_at(at), u16_at(at + 2)) {
                if code == 0 {
                    break;
                }
                if code == OPTION_TSRESOL && len == 1 {
                    tsresol = body.get(at + 4).copied();
                }
                at += 4 + usize::from(len).div_ceil(4) * 4;
            }
            Decoded::Interface(
                DataLink::from(u32::from(link)),
                snaplen,
                units_per_second(tsresol),
            )
        }
        ENHANCED_PACKET_BLOCK => u32_at(0)
            .and_then(|interface| packet(interface, Some(timestamp(4)?), 20))
            .unwrap_or(Decoded::BadPacket),
        PACKET_BLOCK => u16_at(0)
            .and_then(|interface| packet(u32::from(interface), Some(timestamp(4)?), 20))
            .unwrap_or(Decoded::BadPacket),
        SIMPLE_PACKET_BLOCK => match u32_at(0) {
            Some(orig_len) => {
                let data = &body[4..];
                let captured = data.len().min(orig_len as usize);
                Decoded::Packet {
                    interface: 0,
                    timestamp: None,
                    orig_len,
                    data: &data[..captured],
                }
            }
            None => Decoded::BadPacket,
        },
        _ => Decoded::Other,
    }
}
