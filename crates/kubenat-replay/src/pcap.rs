//! pcap files, read record by record as libpcap reads them.

use std::fs::File;
use std::io::BufReader;

use kubenat_core::Instant;
use pcap_file::pcap::PcapHeader;
use pcap_file::{Endianness, TsResolution};

use crate::error::ReplayError;
use crate::link::Link;
use crate::run::{Run, Stamp, read_up_to};
use crate::summary::BEYOND_SNAPLEN;

/// libpcap's `MAXIMUM_SNAPLEN`: the most bytes of one packet a capture of the link types
/// replay reads may hold. libpcap and Wireshark refuse a record over it as a damaged file,
/// and read a snaplen of 0 ("no limit") or above it as this.
pub(crate) const MAXIMUM_SNAPLEN: u32 = 262_144;

impl Run<'_, '_> {
    /// Reads pcap records itself, as libpcap does: the header first, checked, then exactly
    /// its captured bytes (pcap-file's reader holds a record in a fixed 8 MB buffer and calls
    /// a longer one, even a complete one, the end of the file).
    pub(crate) fn pcap(&mut self, file: File) -> Result<(), ReplayError> {
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
}

/// The snaplen libpcap reads a header's as: 0 ("no limit") and anything over the maximum
/// are the maximum.
pub(crate) fn effective_snaplen(snaplen: u32) -> u32 {
    if snaplen == 0 || snaplen > MAXIMUM_SNAPLEN {
        MAXIMUM_SNAPLEN
    } else {
        snaplen
    }
}
