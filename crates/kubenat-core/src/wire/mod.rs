//! Views over a packet buffer, the smoltcp way: [`IpHeader`] and [`TransportHeader`] borrow
//! (or own) the bytes, `new_checked` validates their lengths once, getters read fields at
//! the offsets that live here only, and setters write in place, keeping every checksum
//! right (RFC 1624 incremental updates; SCTP's CRC32c recomputed). A [`Datagram`] pairs the
//! two for one packet. What the fields mean for the engine is `packet::Parsed`'s job.
//!
//! Accessors are `#[inline(always)]`: every packet reads several, and left to the inliner
//! they cost about 25 instructions per packet in calls and repeated length checks
//! (callgrind on `kubenat bench`).

mod datagram;
mod ip;
mod transport;

pub(crate) use datagram::Datagram;
pub(crate) use ip::IpHeader;
pub(crate) use transport::TransportHeader;

pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const SCTP: u8 = 132;
pub(crate) const ICMPV4: u8 = 1;
pub(crate) const ICMPV6: u8 = 58;

/// TCP flag bits the conntrack state machine reads.
pub(crate) mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// The header a [`WireError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layer {
    Ip,
    Transport,
}

/// Why a buffer cannot be viewed as a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The buffer holds `len` bytes where `layer`'s header needs `needed`.
    Truncated {
        layer: Layer,
        needed: usize,
        len: usize,
    },
    /// The IP version field says `found`, not the family viewed.
    Version { found: u8 },
    /// A header length field (IPv4 IHL, TCP data offset) says `len` bytes, under the
    /// fixed header's.
    HeaderLength { layer: Layer, len: usize },
}

impl WireError {
    /// `Ok` when `len` bytes hold the `needed` of `layer`.
    #[inline(always)]
    fn check(layer: Layer, needed: usize, len: usize) -> Result<(), WireError> {
        if len < needed {
            return Err(WireError::Truncated { layer, needed, len });
        }
        Ok(())
    }
}

#[inline(always)]
fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

#[inline(always)]
fn write_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests;
