//! pcapng files: the blocks read through pcap-file, the packets of the first interface's
//! link type replayed.

mod block;

use std::fs::File;
use std::io::{self, Seek, SeekFrom};

use kubenat_core::Instant;
use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use self::block::{Decoded, decode, to_nanos};
use crate::error::ReplayError;
use crate::link::Link;
use crate::pcap::{MAXIMUM_SNAPLEN, effective_snaplen};
use crate::run::{Run, Stamp, read_up_to};
use crate::summary::{BEYOND_SNAPLEN, MALFORMED_CAPTURE_RECORD, OTHER_LINK_TYPE};

/// pcap-file reads one whole pcapng block into a buffer of this size.
const PCAPNG_BLOCK_BUFFER: u64 = 8_000_000;

impl Run<'_, '_> {
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

    pub(crate) fn pcapng(&mut self, file: File, shb_len: u64) -> Result<(), ReplayError> {
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
}
