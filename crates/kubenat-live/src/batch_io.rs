//! The TUN's reads and writes a batch at a time. A TUN has no `recvmmsg`: `read` and
//! `writev` take one packet each, two system calls per forwarded packet. An io_uring takes
//! a batch of them in one `io_uring_enter`: the reads (on the non-blocking descriptor, so
//! those past the queued packets end at once with `EAGAIN`) and then the writes. Where the
//! kernel refuses io_uring (an old kernel, a seccomp filter, `kernel.io_uring_disabled`),
//! the same calls go one by one.

use std::io;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, types};

use crate::tun::{self, Tun, VNET_HEADER_LEN};

/// The most operations one submission carries: a batch of reads, or of writes.
const RING_ENTRIES: u32 = 128;
/// Writes one submission carries (a batch's).
const WRITES: usize = 64;
/// Reads offered when the last batch read few packets: enough for a burst's start, few
/// enough that an idle queue costs little.
const FIRST_READS: usize = 8;

/// How the loop moves packets through the TUN.
pub enum BatchIo {
    /// An io_uring: a batch of reads, then a batch of writes, one system call each.
    Ring {
        /// Boxed: a ring's handle is a few hundred bytes, the other way none.
        ring: Box<IoUring>,
        /// Packets the last batch read: the next offers twice as many reads.
        last_read: usize,
    },
    /// One `read` and one `writev` per packet.
    Calls,
}

impl BatchIo {
    /// An io_uring when the kernel allows one, else one call per packet; `KUBENAT_IO_URING=0`
    /// asks for the calls (to compare the two, or where io_uring is unwanted).
    pub fn new() -> BatchIo {
        let wanted = std::env::var_os("KUBENAT_IO_URING").is_none_or(|v| v != "0");
        match wanted.then(|| IoUring::new(RING_ENTRIES)) {
            Some(Ok(ring)) => BatchIo::Ring {
                ring: Box::new(ring),
                last_read: 0,
            },
            _ => BatchIo::Calls,
        }
    }

    /// Reads queued packets (each behind its virtio-net header) into `buffers`; sets
    /// `lengths[i]` to what buffer `i` holds (0: nothing) and returns how many buffers,
    /// from the first, were offered a read. `Ok(0)` when none is queued.
    pub fn read(
        &mut self,
        tun: &Tun,
        buffers: &mut [Vec<u8>],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let limit = buffers.len().min(lengths.len());
        match self {
            BatchIo::Ring { ring, last_read } => {
                let offered = (*last_read * 2).clamp(FIRST_READS, limit);
                let fd = types::Fd(tun.as_raw_fd());
                for (i, buffer) in buffers.iter_mut().enumerate().take(offered) {
                    // RWF_NOWAIT: a read past the queued packets ends with EAGAIN instead
                    // of waiting for one (io_uring would otherwise poll for it, O_NONBLOCK
                    // or not, and the loop would sleep there, deaf to signals).
                    let read = opcode::Read::new(fd, buffer.as_mut_ptr(), buffer.len() as u32)
                        .rw_flags(libc::RWF_NOWAIT)
                        .build()
                        .user_data(i as u64);
                    // SAFETY: the buffer outlives the read: `complete` waits for every
                    // operation submitted before this returns, and nothing else touches
                    // the buffers meanwhile.
                    unsafe { push(ring, &read)? };
                }
                let mut read = 0;
                let mut failure = None;
                complete(ring, offered, |i, result| match result {
                    Ok(length) => {
                        lengths[i] = length;
                        read += usize::from(length > 0);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => lengths[i] = 0,
                    Err(e) => failure = Some(e),
                })?;
                *last_read = read;
                match failure {
                    Some(e) => Err(e),
                    None if read == 0 => Ok(0),
                    None => Ok(offered),
                }
            }
            BatchIo::Calls => {
                let mut count = 0;
                while count < limit {
                    match tun.recv(&mut buffers[count]) {
                        Ok(length) => {
                            lengths[count] = length;
                            count += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(count)
            }
        }
    }

    /// Hands `packets` (header, packet) to the kernel; returns how many it refused.
    pub fn write(&mut self, tun: &Tun, packets: &[(&[u8; VNET_HEADER_LEN], &[u8])]) -> u64 {
        let ring = match self {
            BatchIo::Ring { ring, .. } => ring,
            BatchIo::Calls => {
                let refused = packets.iter().filter(|(h, p)| tun.send(h, p).is_err());
                return refused.count() as u64;
            }
        };
        let fd = types::Fd(tun.as_raw_fd());
        let mut refused = 0;
        for chunk in packets.chunks(WRITES) {
            refused += write_chunk(ring, fd, chunk);
        }
        refused
    }
}

/// Writes at most [`WRITES`] packets in one submission; returns how many were refused.
fn write_chunk(
    ring: &mut IoUring,
    fd: types::Fd,
    packets: &[(&[u8; VNET_HEADER_LEN], &[u8])],
) -> u64 {
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut parts = [[empty; 2]; WRITES];
    for (pair, (header, packet)) in parts.iter_mut().zip(packets) {
        *pair = tun::iovecs(header, packet);
    }
    let parts = &parts[..packets.len().min(WRITES)];
    let mut refused = 0;
    for (i, pair) in parts.iter().enumerate() {
        // Never waits either: a write the TUN cannot take now is refused, as a full queue
        // drops.
        let write = opcode::Writev::new(fd, pair.as_ptr(), 2)
            .rw_flags(libc::RWF_NOWAIT)
            .build()
            .user_data(i as u64);
        // SAFETY: the iovecs and the bytes they name outlive the write: `complete` waits
        // for every operation submitted before this returns.
        if unsafe { push(ring, &write) }.is_err() {
            refused += 1;
        }
    }
    let submitted = parts.len() - refused as usize;
    if complete(ring, submitted, |_, result| {
        refused += u64::from(result.is_err())
    })
    .is_err()
    {
        refused = parts.len() as u64;
    }
    refused
}

/// Queues one operation.
///
/// # Safety
/// Whatever `entry` points to must stay valid until its completion is reaped.
unsafe fn push(ring: &mut IoUring, entry: &io_uring::squeue::Entry) -> io::Result<()> {
    // SAFETY: the caller keeps the operation's memory alive (above).
    unsafe { ring.submission().push(entry) }
        .map_err(|_| io::Error::other("io_uring submission queue full"))
}

/// Submits what is queued and reaps `count` completions, handing each operation's index and
/// result (bytes, or the error) to `each`.
fn complete(
    ring: &mut IoUring,
    count: usize,
    mut each: impl FnMut(usize, io::Result<usize>),
) -> io::Result<()> {
    let mut reaped = 0;
    while reaped < count {
        match ring.submit_and_wait(count - reaped) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for cqe in ring.completion() {
            let result = match cqe.result() {
                bytes if bytes >= 0 => Ok(bytes as usize),
                errno => Err(io::Error::from_raw_os_error(-errno)),
            };
            each(cqe.user_data() as usize, result);
            reaped += 1;
        }
    }
    Ok(())
}
