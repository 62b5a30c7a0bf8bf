//! Packet captures: one pcap per link (the LAN, each veth) with every packet as it
//! crosses the link, time-stamped in nanoseconds by the virtual clock (from 0 at the start
//! of the run, so Wireshark shows 1970-01-01 plus the simulated time).
//!
//! Link type `LINKTYPE_RAW` (101): the simulator's packets are bare IP packets
//! (`Medium::Ip`), as the engines take them. The files are written by the `pcap-file`
//! crate, little-endian whatever the platform, so a seed gives the same bytes everywhere.

use std::io;
use std::path::{Path, PathBuf};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::clock::Instant;
use crate::fabric::{Fabric, LinkId};

/// The largest packet kept whole (the simulator's MTU is far below it).
const SNAPLEN: u32 = 65_535;

/// The captures of a run in progress, in memory.
#[derive(Default)]
pub struct Capture {
    /// Per link, the pcap written so far (`None` until the link carries a packet).
    links: Vec<Option<PcapWriter<Vec<u8>>>>,
}

/// One finished capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFile {
    /// The file name (`lan.pcap`, `veth-nodoa-mariadb-0.pcap`).
    pub name: String,
    /// The link as the report names it (`lan 192.168.0.0/16`).
    pub link: String,
    pub packets: u64,
    /// The whole pcap file.
    pub bytes: Vec<u8>,
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

impl Capture {
    /// Records `packet` crossing `link` at `now`.
    pub fn record(&mut self, link: LinkId, now: Instant, packet: &[u8]) {
        if self.links.len() <= link {
            self.links.resize_with(link + 1, || None);
        }
        let writer = self.links[link].get_or_insert_with(|| {
            PcapWriter::with_header(Vec::new(), header()).expect("writing to memory")
        });
        let len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let record = PcapPacket::new(
            std::time::Duration::from_nanos(now.as_nanos()),
            len,
            &packet[..packet.len().min(SNAPLEN as usize)],
        );
        writer.write_packet(&record).expect("writing to memory");
    }

    /// The pcaps, one per link of `fabric` in link order (links that carried nothing get an
    /// empty capture too, so every link has its file).
    pub fn finish(self, fabric: &Fabric) -> Vec<CaptureFile> {
        let mut writers = self.links;
        writers.resize_with(fabric.links.len(), || None);
        writers
            .into_iter()
            .zip(&fabric.links)
            .map(|(writer, link)| {
                let bytes = match writer {
                    Some(w) => w.into_writer(),
                    None => PcapWriter::with_header(Vec::new(), header())
                        .expect("writing to memory")
                        .into_writer(),
                };
                CaptureFile {
                    name: format!("{}.pcap", link.file),
                    link: link.name.clone(),
                    packets: link.packets,
                    bytes,
                }
            })
            .collect()
    }
}

/// Writes each capture into `dir` (created if missing); returns the paths written.
pub fn write_all(files: &[CaptureFile], dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.bytes)?;
        written.push(path);
    }
    Ok(written)
}
