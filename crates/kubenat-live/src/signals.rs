//! SIGINT, SIGTERM, SIGHUP and SIGUSR1 as a readable descriptor (signalfd), so the packet loop waits
//! for packets and signals in one `poll` and no handler runs in the middle of a batch.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd, RawFd};

/// What a signal asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGINT or SIGTERM: restore the host and exit.
    Stop,
    /// SIGHUP: re-read the cluster and apply what changed.
    Reload,
    /// SIGUSR1: print the counters.
    Stats,
}

/// The blocked signals and the descriptor that delivers them.
pub struct Signals {
    fd: OwnedFd,
}

const HANDLED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1];

impl Signals {
    /// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread and every thread it starts
    /// afterwards, and opens the descriptor they arrive on. Call it first, before any
    /// other thread exists, or a signal may reach one that still has the default action
    /// (which ends the process without restoring the host).
    pub fn block() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data, set up by sigemptyset before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t for each call.
        unsafe {
            libc::sigemptyset(&mut set);
            for signal in HANDLED {
                libc::sigaddset(&mut set, signal);
            }
        }
        // SAFETY: `set` is initialized; the old mask is not wanted.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if blocked != 0 {
            return Err(io::Error::from_raw_os_error(blocked));
        }
        // A signal set to be ignored is discarded, blocked or not, and a shell starts
        // background commands with SIGINT ignored: take the default action back (harmless
        // while blocked) so that signalfd sees the signal.
        for signal in HANDLED {
            // SAFETY: SIG_DFL is a valid disposition for these signals.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialized.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a descriptor we now own.
        Ok(Signals {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The next pending request, if a signal came.
    pub fn take(&self) -> io::Result<Option<Request>> {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let read = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if read < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        Ok(match info.ssi_signo as libc::c_int {
            libc::SIGHUP => Some(Request::Reload),
            libc::SIGUSR1 => Some(Request::Stats),
            _ => Some(Request::Stop),
        })
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
