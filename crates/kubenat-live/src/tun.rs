//! A layer-3 TUN device: raw IP packets in and out of the kernel's routing, one per read or
//! write, each behind a virtio-net header (`IFF_VNET_HDR`). With the checksum and TSO
//! offloads on, the kernel hands over packets as its stack holds them: a TCP super-packet
//! of up to 64 KiB (GSO) is one read, not forty, and a checksum still to be completed
//! (CHECKSUM_PARTIAL) stays so; the header says which, and goes back with the packet.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt as _;

use kubenat_core::ChecksumStatus;

/// `TUNSETIFF` from `<linux/if_tun.h>`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// Checksum offload, and TSO for IPv4, IPv6 and ECN (`TUN_F_*`).
const OFFLOADS: libc::c_uint = 0x01 | 0x02 | 0x04 | 0x08;
/// The virtio-net header as a TUN writes it by default: `struct virtio_net_hdr`.
pub const VNET_HEADER_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is partial (CHECKSUM_PARTIAL).
const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified (CHECKSUM_UNNECESSARY).
const DATA_VALID: u8 = 2;

/// What a packet's virtio-net header says of its transport checksum.
pub fn checksum_status(header: &[u8]) -> ChecksumStatus {
    match header.first().copied().unwrap_or(0) {
        flags if flags & NEEDS_CSUM != 0 => ChecksumStatus::Partial,
        flags if flags & DATA_VALID != 0 => ChecksumStatus::Verified,
        _ => ChecksumStatus::Unverified,
    }
}

/// An open TUN device. It exists while this is open: the kernel removes a TUN that is not
/// persistent when its last descriptor closes, with every route through it, so a crashed
/// run leaves no device behind.
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates the TUN device `name` (at most 15 bytes), non-blocking.
    pub fn create(name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("device name {name:?} is not 1 to 15 bytes"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut request) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("TUNSETIFF {name}: {e}")));
        }
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD as _, OFFLOADS) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("TUNSETOFFLOAD {name}: {e}"),
            ));
        }
        Ok(Tun {
            file,
            name: name.to_string(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet into `buffer`: its virtio-net header ([`VNET_HEADER_LEN`] bytes),
    /// then the IP packet; returns the length of both. `WouldBlock` when none is queued.
    pub fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buffer)
    }

    /// Hands one packet to the kernel behind its virtio-net `header`, as if it had arrived
    /// on the device: one `writev`, no copy.
    pub fn send(&self, header: &[u8; VNET_HEADER_LEN], packet: &[u8]) -> io::Result<()> {
        let parts = iovecs(header, packet);
        // SAFETY: both iovecs point into live buffers of their length; writev only reads.
        if unsafe { libc::writev(self.file.as_raw_fd(), parts.as_ptr(), 2) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The two parts of one packet written to the TUN: its virtio-net header, then the packet.
pub fn iovecs(header: &[u8; VNET_HEADER_LEN], packet: &[u8]) -> [libc::iovec; 2] {
    [
        libc::iovec {
            iov_base: header.as_ptr() as *mut libc::c_void,
            iov_len: header.len(),
        },
        libc::iovec {
            iov_base: packet.as_ptr() as *mut libc::c_void,
            iov_len: packet.len(),
        },
    ]
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
