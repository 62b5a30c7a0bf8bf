//! One frame through the engine, its checksums taken as [`CaptureChecksums`] says, and what
//! leaves the node written to the output.

use std::io;

use kubenat_core::{ChecksumStatus, Instant, PacketMeta, Verdict};
use pcap_file::PcapError;
use pcap_file::pcap::RawPcapPacket;

use crate::error::ReplayError;
use crate::link::{Frame, classify, reply_link_header};
use crate::run::{REPLY_BUFFER, Run, Stamp};
use crate::summary::{IP_VERSION_MISMATCH, MALFORMED_LINK_HEADER};

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

impl Run<'_, '_> {
    /// Runs the frame in `self.frame` through the engine and writes what leaves the node.
    pub(crate) fn packet(
        &mut self,
        now: Instant,
        stamp: Stamp,
        orig_len: u32,
    ) -> Result<(), ReplayError> {
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
}
