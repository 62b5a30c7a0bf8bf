//! Every change a run makes to the host, written down before it is made, so that the run
//! undoes exactly those on exit and `kubenat run --cleanup` undoes them after a crash.
//!
//! The journal is a text file per network namespace under /run/kubenat: a first line with
//! the run's pid, then one undo step per line (`sysctl KEY VALUE` or `ip ARGS…`), undone
//! last to first. Writing a step before its change means an undo may meet a change that
//! never happened; every step is harmless then (deleting a missing rule, re-adding an
//! existing one and restoring a value fail or do nothing), so undoing ignores failures.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use crate::{ip, sysctl};

const DIRECTORY: &str = "/run/kubenat";

/// One way back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undo {
    /// Set a sysctl back to its value.
    Sysctl { key: String, value: String },
    /// Run `ip` with these arguments.
    Ip(Vec<String>),
}

impl Undo {
    /// `ip` with `args`, as an undo step.
    pub fn ip(args: &[&str]) -> Undo {
        Undo::Ip(args.iter().map(|a| a.to_string()).collect())
    }

    fn line(&self) -> String {
        match self {
            Undo::Sysctl { key, value } => format!("sysctl {key} {value}"),
            Undo::Ip(args) => format!("ip {}", args.join(" ")),
        }
    }

    fn parse(line: &str) -> Option<Undo> {
        let mut words = line.split_whitespace();
        match words.next()? {
            "sysctl" => Some(Undo::Sysctl {
                key: words.next()?.to_string(),
                value: words.collect::<Vec<_>>().join(" "),
            }),
            "ip" => Some(Undo::Ip(words.map(str::to_string).collect())),
            _ => None,
        }
    }

    fn apply(&self) -> io::Result<()> {
        match self {
            // A device's setting whose device is gone (a pod's veth, deleted while kubenat
            // ran) has nothing left to restore.
            Undo::Sysctl { key, value } => match sysctl::write(key, value) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                done => done,
            },
            Undo::Ip(args) => {
                ip::ip(&args.iter().map(String::as_str).collect::<Vec<_>>()).map(drop)
            }
        }
    }
}

/// The open journal of a running run; undoes everything when restored or dropped.
pub struct Journal {
    path: PathBuf,
    file: File,
    steps: Vec<Undo>,
}

impl Journal {
    /// Starts this namespace's journal. Fails if one exists: another run is active here, or
    /// a crashed one left changes that `--cleanup` must undo first.
    pub fn create() -> io::Result<Journal> {
        let path = path()?;
        std::fs::create_dir_all(DIRECTORY)
            .map_err(|e| io::Error::new(e.kind(), format!("{DIRECTORY}: {e}")))?;
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = owner.lines().next().unwrap_or("?").to_string();
                let why = if pid.parse().is_ok_and(running_here) {
                    format!("kubenat run (pid {pid}) is running in this network namespace")
                } else {
                    format!(
                        "a kubenat run (pid {pid}) in this network namespace ended without \
                         restoring it: run `kubenat run --cleanup` first"
                    )
                };
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {why}", path.display()),
                ));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        writeln!(file, "{}", std::process::id())?;
        file.sync_data()?;
        Ok(Journal {
            path,
            file,
            steps: Vec::new(),
        })
    }

    /// Writes down `undo` (durably) before the change it undoes is made.
    pub fn record(&mut self, undo: Undo) -> io::Result<()> {
        writeln!(self.file, "{}", undo.line())?;
        self.file.sync_data()?;
        self.steps.push(undo);
        Ok(())
    }

    /// Undoes every recorded change, last first, and removes the journal. Returns the
    /// steps that failed, which after a complete run means something else changed them.
    pub fn restore(mut self) -> Vec<String> {
        self.undo_all()
    }

    fn undo_all(&mut self) -> Vec<String> {
        let failures = undo(std::mem::take(&mut self.steps));
        let _ = std::fs::remove_file(&self.path);
        failures
    }
}

impl Drop for Journal {
    /// An early return or a panic still puts the host back.
    fn drop(&mut self) {
        if !self.steps.is_empty() || self.path.exists() {
            for failure in self.undo_all() {
                eprintln!("kubenat: restoring: {failure}");
            }
        }
    }
}

/// Undoes what a run that ended without restoring left in this namespace's journal, and
/// removes the journal. Returns how many steps there were (0: nothing to clean).
pub fn recover() -> io::Result<usize> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    if let Some(pid) = text.lines().next().and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
        && running_here(pid)
    {
        return Err(io::Error::other(format!(
            "kubenat run (pid {pid}) is still running in this network namespace: stop it \
             with SIGTERM and it restores the host itself"
        )));
    }
    let steps: Vec<Undo> = text.lines().skip(1).filter_map(Undo::parse).collect();
    let count = steps.len();
    undo(steps);
    std::fs::remove_file(&path).or_else(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(count)
}

/// Applies `steps` last first; the failures, in words.
fn undo(steps: Vec<Undo>) -> Vec<String> {
    steps
        .iter()
        .rev()
        .filter_map(|step| step.apply().err().map(|e| e.to_string()))
        .collect()
}

/// The journal of the network namespace this process is in, named by the namespace's
/// cookie: unlike its inode, which a namespace made after this one is deleted may get, a
/// cookie is never reused until reboot (and /run is emptied at boot).
fn path() -> io::Result<PathBuf> {
    let namespace = match cookie() {
        Some(cookie) => format!("cookie{cookie}"),
        None => format!("inode{}", std::fs::metadata("/proc/self/ns/net")?.ino()),
    };
    Ok(PathBuf::from(format!(
        "{DIRECTORY}/live-netns-{namespace}.journal"
    )))
}

/// `SO_NETNS_COOKIE` (Linux 5.14) where the architecture uses the generic socket options.
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
fn cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    let mut cookie = 0u64;
    let mut length = std::mem::size_of::<u64>() as libc::socklen_t;
    use std::os::fd::AsRawFd as _;
    // SAFETY: writes at most `length` bytes into `cookie`, which outlives the call.
    let done = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut length,
        )
    };
    (done == 0).then_some(cookie)
}

#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
fn cookie() -> Option<u64> {
    None
}

/// Whether process `pid` exists and shares our network namespace (a pid reused by another
/// process elsewhere does not count).
fn running_here(pid: u32) -> bool {
    let ours = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino());
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_as_written() {
        for step in [
            Undo::Sysctl {
                key: "net/ipv4/ip_forward".into(),
                value: "0".into(),
            },
            Undo::ip(&["rule", "del", "pref", "3", "iif", "eth0", "lookup", "27501"]),
        ] {
            assert_eq!(Undo::parse(&step.line()), Some(step));
        }
        assert_eq!(Undo::parse("rm -rf /"), None);
        assert_eq!(Undo::parse(""), None);
    }
}
