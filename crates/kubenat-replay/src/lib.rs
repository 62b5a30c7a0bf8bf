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
//! that are not IP (ARP, LLDP…) pass unchanged. Frames too short for their link header,
//! IP packets the engine cannot read and records longer than their snaplen are dropped with
//! a counted reason. A capture file whose structure cannot be read is an error naming the
//! record, as libpcap's are: a file cut short, a record whose captured length is over
//! libpcap's maximum of 262,144 bytes, a timestamp fraction of a second or more.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};

use kubenat_core::{ChecksumStatus, Engine, Instant, PacketMeta, Path, Verdict};
use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::{PcapNgReader, RawBlock};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use serde::Serialize;

/// `progress` is called each time about this many more input bytes have been read.
const PROGRESS_STEP: u64 = 64 * 1024;
/// libpcap's `MAXIMUM_SNAPLEN`: the most bytes of one packet a capture of the link types
/// replay reads may hold. libpcap and Wireshark refuse a record over it as a damaged file,
/// and read a snaplen of 0 ("no limit") or above it as this.
const MAXIMUM_SNAPLEN: u32 = 262_144;
/// pcap-file reads one whole pcapng block into a buffer of this size.
const PCAPNG_BLOCK_BUFFER: u64 = 8_000_000;
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
/// A record that holds more bytes than the snaplen of its file (pcap) or interface (pcapng)
/// allows: the header contradicts itself, so the packet is not replayed.
pub const BEYOND_SNAPLEN: &str = "captured-beyond-snaplen";

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
#[non_exhaustive]
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

/// What a replay makes of the captured packets' checksums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureChecksums {
    /// As the kernel on the receiving node would: a wrong checksum drops the packet
    /// (`ip-header-checksum`, `transport-checksum`), except a TCP or UDP checksum left for
    /// offload (the field holds the pseudo-header sum, as in captures taken on the
    /// sending host or a veth), which is translated as a partial checksum.
    #[default]
    Verify,
    /// Every transport checksum is taken as verified (`--trust-checksums`); the IPv4
    /// header's is still checked, as `ip_rcv` does whatever the NIC says.
    Trust,
}

/// Replays the capture `input` through `engine` as traffic on `path`, writing the packets
/// that leave the node to `output` (a pcap), with checksums verified
/// ([`CaptureChecksums::Verify`]). `progress(read, total)` is called as the input is read
/// (about every 64 KiB, and once at the start and at the end).
pub fn replay(
    engine: &mut Engine,
    input: &FsPath,
    output: &FsPath,
    path: Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, ReplayError> {
    replay_with(
        engine,
        input,
        output,
        path,
        CaptureChecksums::Verify,
        progress,
    )
}

/// [`replay`], with the checksums taken as `checksums` says.
pub fn replay_with(
    engine: &mut Engine,
    input: &FsPath,
    output: &FsPath,
    path: Path,
    checksums: CaptureChecksums,
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
        checksums,
        input,
        output,
        writer: None,
        link: Link::Raw,
        snaplen: MAXIMUM_SNAPLEN,
        frame: Vec::with_capacity(MAXIMUM_SNAPLEN as usize),
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

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
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
    checksums: CaptureChecksums,
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
    /// A file header (record 0) or pcapng block pcap-file could not read.
    fn malformed(&self, record: u64, error: PcapError) -> ReplayError {
        let detail = match error {
            PcapError::IncompleteBuffer => "cut short".to_string(),
            PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                "the file ends early".to_string()
            }
            PcapError::IoError(source) => return self.io_in(source),
            other => other.to_string(),
        };
        self.bad(record, detail)
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

    fn bad(&self, record: u64, detail: String) -> ReplayError {
        ReplayError::Malformed {
            file: self.input.to_path_buf(),
            record,
            detail,
        }
    }

    fn io_in(&self, source: io::Error) -> ReplayError {
        ReplayError::Io {
            file: self.input.to_path_buf(),
            source,
        }
    }

    /// Reads pcap records itself, as libpcap does: the header first, checked, then exactly
    /// its captured bytes (pcap-file's reader holds a record in a fixed 8 MB buffer and calls
    /// a longer one, even a complete one, the end of the file).
    fn pcap(&mut self, file: File) -> Result<(), ReplayError> {
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut head = [0u8; 24];
        let got = read_up_to(&mut input, &mut head).map_err(|e| self.io_in(e))?;
        let (_, header) = PcapHeader::from_slice(&head[..got]).map_err(|e| self.malformed(0, e))?;
        self.link = Link::from_datalink(header.datalink).ok_or_else(|| {
            ReplayError::UnsupportedLinkType {
                file: self.input.to_path_buf(),
                link_type: header.datalink.into(),
            }
        })?;
        let (unit, per_second) = match header.ts_resolution {
            TsResolution::MicroSecond => ("microseconds", 1_000_000),
            TsResolution::NanoSecond => ("nanoseconds", 1_000_000_000),
        };
        self.open_output(PcapHeader {
            snaplen: effective_snaplen(header.snaplen),
            ..header
        })?;
        let field = |b: &[u8], at: usize| {
            let b = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            match header.endianness {
                Endianness::Big => u32::from_be_bytes(b),
                Endianness::Little => u32::from_le_bytes(b),
            }
        };
        let mut read = 24u64;
        loop {
            let record = self.counts.packets + 1;
            let mut rh = [0u8; 16];
            match read_up_to(&mut input, &mut rh).map_err(|e| self.io_in(e))? {
                0 => break,
                16 => {}
                got => {
                    return Err(self.bad(
                        record,
                        format!(
                            "the file ends in the middle of a record header ({got} of 16 bytes)"
                        ),
                    ));
                }
            }
            let (ts_sec, ts_frac) = (field(&rh, 0), field(&rh, 4));
            let (incl_len, orig_len) = (field(&rh, 8), field(&rh, 12));
            if incl_len > MAXIMUM_SNAPLEN {
                return Err(self.bad(
                    record,
                    format!(
                        "captured length of {incl_len} bytes is over the maximum of \
                         {MAXIMUM_SNAPLEN} (libpcap's; the file's snaplen is {})",
                        header.snaplen
                    ),
                ));
            }
            if ts_frac >= per_second {
                return Err(self.bad(
                    record,
                    format!(
                        "timestamp fraction of {ts_frac} {unit} is a second or more \
                         (at most {} in a valid record)",
                        per_second - 1
                    ),
                ));
            }
            self.frame.resize(incl_len as usize, 0);
            let got = read_up_to(&mut input, &mut self.frame).map_err(|e| self.io_in(e))?;
            if got < self.frame.len() {
                return Err(self.bad(
                    record,
                    format!(
                        "the file ends in the middle of a record ({got} of {incl_len} captured \
                         bytes)"
                    ),
                ));
            }
            read += 16 + u64::from(incl_len);
            if incl_len > self.snaplen {
                self.counts.packets += 1;
                self.counts.dropped(BEYOND_SNAPLEN);
            } else {
                let nanos = u64::from(ts_frac) * u64::from(1_000_000_000 / per_second);
                let now = u64::from(ts_sec) * 1_000_000_000 + nanos;
                let stamp = Stamp {
                    secs: ts_sec,
                    frac: ts_frac,
                };
                self.packet(Instant::from_nanos(now), stamp, orig_len)?;
            }
            self.progress.advance(read);
        }
        Ok(())
    }

    /// Why pcap-file found no whole block at `at` when its file is `total` bytes long: the
    /// file ends there, or the block is longer than the buffer pcap-file reads blocks into.
    fn pcapng_eof(&self, record: u64, at: u64, endianness: Endianness) -> ReplayError {
        let total = self.progress.total;
        let mut head = [0u8; 8];
        let got = File::open(self.input)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(at))?;
                read_up_to(&mut f, &mut head)
            })
            .unwrap_or(0);
        let len = u64::from(match endianness {
            Endianness::Big => u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            Endianness::Little => u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        });
        let detail = if got == 8 && len > PCAPNG_BLOCK_BUFFER && at + len <= total {
            format!(
                "block of {len} bytes is over the maximum of {PCAPNG_BLOCK_BUFFER} this reader \
                 takes (no packet may hold more than {MAXIMUM_SNAPLEN} bytes, libpcap's maximum)"
            )
        } else if got == 8 {
            format!(
                "the file ends in the middle of a block ({} of {len} bytes)",
                total.saturating_sub(at)
            )
        } else {
            format!(
                "the file ends in the middle of a block header ({} of 8 bytes)",
                total.saturating_sub(at)
            )
        };
        self.bad(record, detail)
    }

    fn pcapng(&mut self, file: File, shb_len: u64) -> Result<(), ReplayError> {
        let mut reader = PcapNgReader::new(file).map_err(|e| self.malformed(0, e))?;
        let mut endianness = reader.section().endianness;
        // (link type, timestamp units per second, snaplen) of each interface of the current
        // section.
        let mut interfaces: Vec<(DataLink, u64, u32)> = Vec::new();
        let mut output_link: Option<DataLink> = None;
        let mut read = shb_len;
        let mut last_time = 0u64;
        let mut records = 0u64;
        loop {
            let block = match reader.next_raw_block() {
                None => break,
                Some(Ok(block)) => block,
                Some(Err(PcapError::IoError(e))) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.pcapng_eof(records + 1, read, endianness));
                }
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
                    interfaces.push((link, units, effective_snaplen(snaplen)));
                    if output_link.is_none() {
                        output_link = Some(link);
                        self.link = Link::from_datalink(link).ok_or_else(|| {
                            ReplayError::UnsupportedLinkType {
                                file: self.input.to_path_buf(),
                                link_type: link.into(),
                            }
                        })?;
                        self.open_output(PcapHeader {
                            snaplen: effective_snaplen(snaplen),
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
                    if data.len() > MAXIMUM_SNAPLEN as usize {
                        return Err(self.bad(
                            records,
                            format!(
                                "captured length of {} bytes is over the maximum of \
                                 {MAXIMUM_SNAPLEN} (libpcap's)",
                                data.len()
                            ),
                        ));
                    }
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
                    (Some((link, _, snaplen)), Some(out))
                        if link == out && self.frame.len() > snaplen as usize =>
                    {
                        self.counts.packets += 1;
                        self.counts.dropped(BEYOND_SNAPLEN);
                    }
                    (Some((link, units, _)), Some(out)) if link == out => {
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
        let mut meta = match self.checksums {
            CaptureChecksums::Verify => PacketMeta::from_capture(ip),
            CaptureChecksums::Trust => PacketMeta::new(ChecksumStatus::Verified),
        };
        let mut trace = kubenat_core::trace::NoTrace;
        match self
            .engine
            .process_path_traced(self.path, ip, &mut meta, now, &mut trace)
        {
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
            // A verdict this replay does not know yet: the packet is not written.
            _ => {
                self.counts.dropped("unknown-verdict");
                Ok(())
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

/// The snaplen libpcap reads a header's as: 0 ("no limit") and anything over the maximum
/// are the maximum.
fn effective_snaplen(snaplen: u32) -> u32 {
    if snaplen == 0 || snaplen > MAXIMUM_SNAPLEN {
        MAXIMUM_SNAPLEN
    } else {
        snaplen
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
