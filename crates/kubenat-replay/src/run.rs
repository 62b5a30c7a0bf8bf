//! The replay itself: the input opened and told apart by its magic number, the output
//! opened, the reading of either format driven, progress reported, the summary returned.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path as FsPath;

use kubenat_core::{Engine, Path};
use pcap_file::PcapError;
use pcap_file::pcap::{PcapHeader, PcapWriter};

use crate::error::ReplayError;
use crate::link::Link;
use crate::packet::CaptureChecksums;
use crate::pcap::MAXIMUM_SNAPLEN;
use crate::summary::{Counts, Summary};

/// `progress` is called each time about this many more input bytes have been read.
const PROGRESS_STEP: u64 = 64 * 1024;
/// Longest reply [`Engine::write_reject_reply`] writes.
pub(crate) const REPLY_BUFFER: usize = 1280;

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
pub(crate) fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

pub(crate) struct Progress<'p> {
    callback: &'p mut dyn FnMut(u64, u64),
    pub(crate) total: u64,
    next: u64,
}

impl Progress<'_> {
    fn report(&mut self, read: u64) {
        (self.callback)(read.min(self.total), self.total);
    }

    pub(crate) fn advance(&mut self, read: u64) {
        if read >= self.next {
            self.report(read);
            self.next = (read / PROGRESS_STEP + 1) * PROGRESS_STEP;
        }
    }
}

/// A packet's timestamp as it goes to the output file.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) secs: u32,
    /// Micro- or nanoseconds, as the output's resolution says.
    pub(crate) frac: u32,
}

pub(crate) struct Run<'a, 'p> {
    pub(crate) engine: &'a mut Engine,
    pub(crate) path: Path,
    pub(crate) checksums: CaptureChecksums,
    pub(crate) input: &'a FsPath,
    pub(crate) output: &'a FsPath,
    pub(crate) writer: Option<PcapWriter<BufWriter<File>>>,
    pub(crate) link: Link,
    pub(crate) snaplen: u32,
    /// The frame being processed (the engine rewrites its IP bytes in place).
    pub(crate) frame: Vec<u8>,
    /// A rejected packet's reply, with its link header.
    pub(crate) reply: Vec<u8>,
    pub(crate) counts: Counts,
    pub(crate) progress: Progress<'p>,
}

impl Run<'_, '_> {
    /// A file header (record 0) or pcapng block pcap-file could not read.
    pub(crate) fn malformed(&self, record: u64, error: PcapError) -> ReplayError {
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

    pub(crate) fn open_output(&mut self, header: PcapHeader) -> Result<(), ReplayError> {
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

    pub(crate) fn bad(&self, record: u64, detail: String) -> ReplayError {
        ReplayError::Malformed {
            file: self.input.to_path_buf(),
            record,
            detail,
        }
    }

    pub(crate) fn io_in(&self, source: io::Error) -> ReplayError {
        ReplayError::Io {
            file: self.input.to_path_buf(),
            source,
        }
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
