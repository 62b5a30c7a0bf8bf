//! Word from the kernel when the namespace's devices change: a netlink socket in the link
//! group (`RTMGRP_LINK`), polled beside the TUN. Pods come and go on a node after kubenat
//! starts, each with a new veth, and their packets must be steered too.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking netlink socket that becomes readable when a device is added, removed or
/// changed.
pub struct LinkWatch {
    socket: OwnedFd,
}

impl LinkWatch {
    pub fn open() -> io::Result<LinkWatch> {
        // SAFETY: plain system calls; the descriptor is owned from here on, and the address
        // is a zeroed sockaddr_nl of the size given.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let socket = OwnedFd::from_raw_fd(fd);
            let mut address: libc::sockaddr_nl = std::mem::zeroed();
            address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            address.nl_groups = libc::RTMGRP_LINK as u32;
            let bound = libc::bind(
                fd,
                (&address as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            if bound < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(LinkWatch { socket })
        }
    }

    /// Reads every message waiting, so that the socket is quiet until the next change. What
    /// they say is not needed: whoever polled it lists the devices again.
    pub fn drain(&self) {
        let mut buffer = [0u8; 8192];
        loop {
            // SAFETY: the buffer is valid for its whole length during the call.
            let read = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            if read > 0 {
                continue;
            }
            // Nothing more (EAGAIN), or ENOBUFS: messages were lost, which the new listing
            // covers too.
            if read == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

impl AsRawFd for LinkWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
