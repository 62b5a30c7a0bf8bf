//! The packet loop: wait for packets or a signal, read every queued packet (up to a batch),
//! run them through the engine on their whole paths as batches (`process_path_batch`),
//! write back what it lets through and the ICMP error for what it rejects.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::{Engine, Instant, PacketMeta, Path, Verdict};

use crate::batch_io::BatchIo;
use crate::link_watch::LinkWatch;
use crate::signals::{Request, Signals};
use crate::stats::Reporter;
use crate::tun::{self, Tun, VNET_HEADER_LEN};

/// Packets read before they are processed and written: enough to amortize the wake-up,
/// few enough that the first waits little for the last.
const BATCH: usize = 64;
/// The virtio-net header and the largest packet: a GSO super-packet is at most 64 KiB.
const PACKET_BUFFER: usize = VNET_HEADER_LEN + 65_535;
/// The virtio-net header of a packet with complete checksums and no segmentation.
const NO_HEADER: [u8; VNET_HEADER_LEN] = [0; VNET_HEADER_LEN];
/// The longest sleep without a signal or a packet: the engine's next expiry, at most this.
const IDLE: Duration = Duration::from_secs(1);

/// What the loop did, for the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Packets read from the TUN.
    pub received: u64,
    /// Packets written back: passed, translated, and rejects' ICMP errors.
    pub sent: u64,
    /// Writes the kernel refused (a packet it found malformed, a full queue).
    pub send_errors: u64,
}

/// What the loop hears besides packets, and what it does about it, between batches.
pub struct Events<'a> {
    pub signals: &'a Signals,
    /// On SIGHUP: apply what changed to the engine.
    pub reload: &'a mut dyn FnMut(&mut Engine),
    /// The namespace's devices changed: steer the new ones (`None`: not followed).
    pub links: Option<(&'a LinkWatch, &'a mut dyn FnMut())>,
}

/// Runs until SIGINT or SIGTERM. `clock` gives the engine's time; `reporter` prints the
/// counters on SIGUSR1 and when its period comes.
pub fn run(
    engine: &mut Engine,
    tun: &Tun,
    events: Events<'_>,
    clock: impl Fn() -> Instant,
    reporter: &mut Reporter,
) -> io::Result<Totals> {
    let Events {
        signals,
        reload,
        mut links,
    } = events;
    let watch = links.as_ref().map(|(watch, _)| *watch);
    let mut buffers = vec![vec![0u8; PACKET_BUFFER]; BATCH];
    let mut lengths = [0usize; BATCH];
    let mut reply = [0u8; MAX_REPLY_LEN];
    let mut totals = Totals::default();
    let mut io = BatchIo::new();
    loop {
        let links_changed = wait(tun, signals, watch, engine, reporter, &clock)?;
        if links_changed && let Some((watch, steer)) = &mut links {
            watch.drain();
            steer();
        }
        while let Some(request) = signals.take()? {
            match request {
                Request::Stop => return Ok(totals),
                Request::Reload => reload(engine),
                Request::Stats => reporter.report(engine, &totals),
            }
        }
        reporter.tick(engine, &totals);
        let count = io
            .read(tun, &mut buffers, &mut lengths)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", tun.name())))?;
        totals.received += lengths[..count].iter().filter(|&&l| l > 0).count() as u64;
        let now = clock();
        // Each packet behind its virtio-net header: the header says whether its checksum is
        // partial or verified, and goes back unchanged with it (NAT never changes header
        // lengths). Runs of packets on one path go through the engine as one batch.
        let mut headers = [[0u8; VNET_HEADER_LEN]; BATCH];
        let mut metas = [PacketMeta::default(); BATCH];
        let mut paths = [Path::Forward; BATCH];
        let mut verdicts = [Verdict::Accept; BATCH];
        let mut packets: [&mut [u8]; BATCH] = std::array::from_fn(|_| &mut [][..]);
        let mut kept = 0;
        for (buffer, &length) in buffers.iter_mut().zip(&lengths[..count]) {
            if length < VNET_HEADER_LEN {
                continue;
            }
            let (header, packet) = buffer[..length].split_at_mut(VNET_HEADER_LEN);
            headers[kept].copy_from_slice(header);
            metas[kept] = PacketMeta::new(tun::checksum_status(header));
            paths[kept] = path(engine, packet);
            packets[kept] = packet;
            kept += 1;
        }
        let mut start = 0;
        while start < kept {
            let run = paths[start..kept]
                .iter()
                .take_while(|&&p| p == paths[start])
                .count();
            let batch = start..start + run;
            engine.process_path_batch(
                paths[start],
                &mut packets[batch.clone()],
                &mut metas[batch.clone()],
                now,
                &mut verdicts[batch],
            );
            start += run;
        }
        let mut out: [(&[u8; VNET_HEADER_LEN], &[u8]); BATCH] = [(&NO_HEADER, &[]); BATCH];
        let mut passing = 0;
        for ((packet, verdict), header) in packets.iter().zip(&verdicts).zip(&headers).take(kept) {
            match verdict {
                Verdict::Accept | Verdict::Translated(_) => {
                    out[passing] = (header, &**packet);
                    passing += 1;
                }
                // Rare: written at once, each with the one reply buffer.
                Verdict::Reject(_) => {
                    if let Ok(length) = engine.write_reject_reply(packet, &mut reply) {
                        // A reply of its own: complete checksums, no segmentation.
                        match tun.send(&NO_HEADER, &reply[..length]) {
                            Ok(()) => totals.sent += 1,
                            Err(_) => totals.send_errors += 1,
                        }
                    }
                }
                // Drops, and any verdict a later engine adds: fail closed.
                _ => {}
            }
        }
        let refused = io.write(tun, &out[..passing]);
        totals.sent += passing as u64 - refused;
        totals.send_errors += refused;
        if engine.poll_at().is_some_and(|at| at <= now) {
            engine.handle_timeout(now);
        }
    }
}

/// Which hooks a packet from the TUN takes: one the node sent comes from one of its own
/// addresses (as `kubenat trace` decides), anything else arrived on an interface.
fn path(engine: &Engine, packet: &[u8]) -> Path {
    let source = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            IpAddr::from(<[u8; 4]>::try_from(&packet[12..16]).unwrap_or_default())
        }
        Some(6) if packet.len() >= 40 => {
            IpAddr::from(<[u8; 16]>::try_from(&packet[8..24]).unwrap_or_default())
        }
        _ => return Path::Forward,
    };
    if source.is_loopback() || engine.tables().settings().is_local_ip(source) {
        Path::LocalOut
    } else {
        Path::Forward
    }
}

/// Sleeps until a packet or a signal arrives, the devices change, or the engine has
/// connections to expire. Returns whether the devices changed.
fn wait(
    tun: &Tun,
    signals: &Signals,
    watch: Option<&LinkWatch>,
    engine: &Engine,
    reporter: &Reporter,
    clock: &impl Fn() -> Instant,
) -> io::Result<bool> {
    let mut timeout = match engine.poll_at() {
        Some(at) => at.saturating_since(clock()).min(IDLE),
        None => IDLE,
    };
    if let Some(report) = reporter.due_in() {
        timeout = timeout.min(report);
    }
    let mut fds = [
        libc::pollfd {
            fd: tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: signals.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        // A negative descriptor is left out by poll.
        libc::pollfd {
            fd: watch.map_or(-1, AsRawFd::as_raw_fd),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Round up: a zero timeout for an expiry less than a millisecond away would spin.
    let millis = timeout.as_micros().div_ceil(1000) as libc::c_int;
    // SAFETY: `fds` is a valid array of pollfd for the whole call.
    if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        return Ok(false);
    }
    Ok(fds[2].revents & libc::POLLIN != 0)
}
