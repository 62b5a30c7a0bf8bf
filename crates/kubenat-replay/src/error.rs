//! Why a replay could not run or finish.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a replay could not run or finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// A file could not be opened, created, read or written.
    Io { file: PathBuf, source: io::Error },
    /// Not a pcap or pcapng file.
    NotACapture { file: PathBuf },
    /// A pcap/pcapng file whose structure cannot be read: at `record` (a pcap packet record
    /// or a pcapng block after the first section header, counting from 1; 0 for the file
    /// header).
    Malformed {
        file: PathBuf,
        record: u64,
        detail: String,
    },
    /// A link type replay does not handle.
    UnsupportedLinkType { file: PathBuf, link_type: u32 },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io { file, source } => write!(f, "{}: {source}", file.display()),
            ReplayError::NotACapture { file } => write!(
                f,
                "{}: not a pcap or pcapng capture (unknown magic number)",
                file.display()
            ),
            ReplayError::Malformed {
                file,
                record: 0,
                detail,
            } => write!(f, "{}: unreadable capture header: {detail}", file.display()),
            ReplayError::Malformed {
                file,
                record,
                detail,
            } => write!(
                f,
                "{}: unreadable capture at record {record}: {detail} (the records before it \
                 were replayed and written)",
                file.display()
            ),
            ReplayError::UnsupportedLinkType { file, link_type } => write!(
                f,
                "{}: link type {link_type} is not supported (Ethernet 1, raw IP 101/228/229, \
                 Linux cooked SLL 113 and SLL2 276 are)",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
