//! Packet captures: one pcap per link (the LAN, each veth) with every packet as it
//! crosses the link, time-stamped in nanoseconds by the virtual clock (from 0 at the start
//! of the run, so Wireshark shows 1970-01-01 plus the simulated time).
//!
//! Link type `LINKTYPE_RAW` (101): the simulator's packets are bare IP packets
//! (`Medium::Ip`), as the engines take them. Records are written by the `pcap-file` crate,
//! little-endian whatever the platform, so a seed gives the same bytes everywhere.
//!
//! Packets stream to the files as they cross their link, through buffered writers, so a
//! long or large run holds no capture in memory. A cluster has more links than a process
//! may open files: at most [`MAX_OPEN`] files are open at once, and the least recently
//! opened one is closed (and later reopened to append) when another is needed.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use byteorder::LittleEndian;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::clock::Instant;
use crate::fabric::{Fabric, LinkId};

/// The largest packet kept whole (the simulator's MTU is far below it).
const SNAPLEN: u32 = 65_535;

/// Capture files open at once, well under the usual limit of 1,024 descriptors.
pub const MAX_OPEN: usize = 256;

/// Where one link's capture stands.
enum LinkFile {
    /// No packet yet: no file.
    Unborn,
    Open(BufWriter<File>),
    /// Written and closed to make room; reopened to append.
    Closed,
}

/// The captures of a run in progress, streaming into a directory.
pub struct Capture {
    dir: PathBuf,
    links: Vec<LinkFile>,
    /// Open links, oldest first.
    open: VecDeque<LinkId>,
    /// The first write that failed; capture stops there and [`Capture::finish`] reports it.
    error: Option<io::Error>,
}

/// One finished capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFile {
    /// The file name (`lan.pcap`, `veth-nodoa-mariadb-0.pcap`).
    pub name: String,
    /// The link as the report names it (`lan 192.168.0.0/16`).
    pub link: String,
    pub packets: u64,
    /// Where it was written.
    pub path: PathBuf,
}

fn header() -> PcapHeader {
    PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::RAW,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
    }
}

fn pcap_error(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// A new capture file at `path` holding only the pcap header.
fn create(path: &Path) -> io::Result<BufWriter<File>> {
    let mut file = BufWriter::new(File::create(path)?);
    header().write_to(&mut file).map_err(pcap_error)?;
    Ok(file)
}

impl Capture {
    /// Captures into `dir`, created if missing.
    pub fn new(dir: &Path) -> io::Result<Capture> {
        std::fs::create_dir_all(dir)?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            links: Vec::new(),
            open: VecDeque::new(),
            error: None,
        })
    }

    /// Records `packet` crossing `link` at `now`, into `file` (the link's file name, without
    /// `.pcap`).
    pub fn record(&mut self, link: LinkId, file: &str, now: Instant, packet: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.write(link, file, now, packet)
        {
            self.error = Some(e);
        }
    }

    fn write(&mut self, link: LinkId, file: &str, now: Instant, packet: &[u8]) -> io::Result<()> {
        if self.links.len() <= link {
            self.links.resize_with(link + 1, || LinkFile::Unborn);
        }
        if !matches!(self.links[link], LinkFile::Open(_)) {
            let path = self.dir.join(format!("{file}.pcap"));
            let writer = match self.links[link] {
                LinkFile::Closed => BufWriter::new(OpenOptions::new().append(true).open(path)?),
                _ => create(&path)?,
            };
            if self.open.len() == MAX_OPEN {
                self.close_oldest()?;
            }
            self.links[link] = LinkFile::Open(writer);
            self.open.push_back(link);
        }
        let LinkFile::Open(writer) = &mut self.links[link] else {
            unreachable!("opened above");
        };
        let len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let record = PcapPacket::new(
            std::time::Duration::from_nanos(now.as_nanos()),
            len,
            &packet[..packet.len().min(SNAPLEN as usize)],
        );
        record
            .write_to::<_, LittleEndian>(writer, TsResolution::NanoSecond, SNAPLEN)
            .map_err(pcap_error)?;
        Ok(())
    }

    fn close_oldest(&mut self) -> io::Result<()> {
        if let Some(oldest) = self.open.pop_front()
            && let LinkFile::Open(mut writer) =
                std::mem::replace(&mut self.links[oldest], LinkFile::Closed)
        {
            writer.flush()?;
        }
        Ok(())
    }

    /// Flushes and closes every file, and writes one with only the header for each link of
    /// `fabric` that carried nothing, so every link has its file. Returns them in link order.
    pub fn finish(mut self, fabric: &Fabric) -> io::Result<Vec<CaptureFile>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        while !self.open.is_empty() {
            self.close_oldest()?;
        }
        self.links
            .resize_with(fabric.links.len(), || LinkFile::Unborn);
        let mut files = Vec::with_capacity(fabric.links.len());
        for (state, link) in self.links.iter().zip(&fabric.links) {
            let name = format!("{}.pcap", link.file);
            let path = self.dir.join(&name);
            if matches!(state, LinkFile::Unborn) {
                create(&path)?.flush()?;
            }
            files.push(CaptureFile {
                name,
                link: link.name.clone(),
                packets: link.packets,
                path,
            });
        }
        Ok(files)
    }
}
