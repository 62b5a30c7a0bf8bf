//! The transport header view: TCP, UDP and SCTP ports, ICMP's type and echo identifier,
//! and the checksum each keeps, over a whole segment or a header quoted in an ICMP error.

use std::marker::PhantomData;

use super::{ICMPV4, ICMPV6, Layer, SCTP, TCP, UDP, WireError, read_u16, write_u16};
use crate::addr::Addr;
use crate::checksum::{self, TupleChange};
use crate::meta::ChecksumStatus;

/// Bytes every quoted header of a port protocol keeps: the ports.
const PORTS_LEN: usize = 4;

/// How much of its segment a [`TransportHeader`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The whole segment, its header all there ([`TransportHeader::new_checked`]).
    Whole,
    /// A header quoted in an ICMP error ([`TransportHeader::new_quoted`]): cut anywhere
    /// after its ports, and not the whole packet.
    Quoted,
}

/// The transport header of protocol `protocol` at the start of `buffer`, inside an IP
/// packet of family `A` (which decides what a zero UDP checksum means).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TransportHeader<A, T> {
    buffer: T,
    protocol: u8,
    extent: Extent,
    family: PhantomData<A>,
}

impl<A: Addr, T: AsRef<[u8]>> TransportHeader<A, T> {
    /// A view that trusts `buffer` to hold what the constructor for `extent` checks;
    /// getters panic where it does not.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T, protocol: u8, extent: Extent) -> Self {
        TransportHeader {
            buffer,
            protocol,
            extent,
            family: PhantomData,
        }
    }

    /// A view of a whole segment (the transport bytes inside the datagram), once the
    /// protocol's header is all there: TCP's with its options, UDP's 8 bytes, SCTP's
    /// common header, an ICMP header of the family's ICMP. Other protocols need nothing.
    #[inline(always)]
    pub(crate) fn new_checked(buffer: T, protocol: u8) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        let fixed = match protocol {
            TCP => 20,
            UDP => 8,
            SCTP => 12,
            ICMPV4 if A::LEN == 4 => 8,
            ICMPV6 if A::LEN == 16 => 8,
            _ => return Ok(Self::new_unchecked(buffer, protocol, Extent::Whole)),
        };
        WireError::check(Layer::Transport, fixed, len)?;
        let header = Self::new_unchecked(buffer, protocol, Extent::Whole);
        if protocol == TCP {
            let header_len = usize::from(header.bytes()[12] >> 4) * 4;
            if header_len < fixed {
                return Err(WireError::HeaderLength {
                    layer: Layer::Transport,
                    len: header_len,
                });
            }
            WireError::check(Layer::Transport, header_len, len)?;
        }
        Ok(header)
    }

    /// A view of a TCP, UDP or SCTP header quoted in an ICMP error, cut anywhere after
    /// its ports: fields beyond the cut are neither read nor written.
    #[inline(always)]
    pub(crate) fn new_quoted(buffer: T, protocol: u8) -> Result<Self, WireError> {
        WireError::check(Layer::Transport, PORTS_LEN, buffer.as_ref().len())?;
        Ok(Self::new_unchecked(buffer, protocol, Extent::Quoted))
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Bytes of the segment (or of the quote).
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.bytes().len()
    }

    #[inline(always)]
    pub(crate) fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Whether the protocol has ports (TCP, UDP, SCTP): the first four bytes.
    #[inline(always)]
    fn has_ports(&self) -> bool {
        matches!(self.protocol, TCP | UDP | SCTP)
    }

    /// The source and destination port (read at once: one length check).
    #[inline(always)]
    pub(crate) fn ports(&self) -> (u16, u16) {
        let Some(&[a, b, c, d]) = self.bytes().first_chunk::<PORTS_LEN>() else {
            panic!("a {}-byte header has no ports", self.len());
        };
        (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))
    }

    /// The TCP flags byte (of a whole header).
    #[inline(always)]
    pub(crate) fn tcp_flags(&self) -> u8 {
        self.bytes()[13]
    }

    /// The type of the first SCTP chunk, or 0 when the packet has none.
    #[inline(always)]
    pub(crate) fn sctp_first_chunk(&self) -> u8 {
        self.bytes().get(12).copied().unwrap_or(0)
    }

    /// UDP's length field.
    #[inline(always)]
    pub(crate) fn udp_length(&self) -> u16 {
        read_u16(self.bytes(), 4)
    }

    #[inline(always)]
    pub(crate) fn icmp_type(&self) -> u8 {
        self.bytes()[0]
    }

    /// An ICMP echo's identifier, which plays the source port's part.
    #[inline(always)]
    pub(crate) fn echo_identifier(&self) -> u16 {
        read_u16(self.bytes(), 4)
    }

    /// Where the checksum the pseudo-header covers sits (TCP, UDP, ICMPv6).
    #[inline(always)]
    fn pseudo_checksum_at(&self) -> Option<usize> {
        match self.protocol {
            TCP => Some(16),
            UDP => Some(6),
            ICMPV6 => Some(2),
            _ => None,
        }
    }

    /// The checksum field the pseudo-header covers, where the protocol has one and the
    /// bytes hold it.
    #[inline(always)]
    pub(crate) fn pseudo_checksum(&self) -> Option<u16> {
        let at = self.pseudo_checksum_at()?;
        let field = self.bytes().get(at..at + 2)?;
        Some(u16::from_be_bytes([field[0], field[1]]))
    }

    /// Whether the segment's checksum is right, as the kernel checks it: `pseudo_header`
    /// is the sum of its pseudo-header. A zero UDP checksum over IPv4 means none was
    /// computed (RFC 768); protocols without a checksum pass. Inlined: out of line, the
    /// caller's views went through memory for the closure (9 instructions per new flow).
    #[inline(always)]
    pub(crate) fn checksum_is_valid(&self, pseudo_header: impl FnOnce() -> u32) -> bool {
        let segment = self.bytes();
        match self.protocol {
            UDP if A::LEN == 4 && self.pseudo_checksum() == Some(0) => true,
            TCP | UDP => checksum::is_valid(pseudo_header(), segment),
            ICMPV6 if A::LEN == 16 => checksum::is_valid(pseudo_header(), segment),
            ICMPV4 if A::LEN == 4 => checksum::is_valid(0, segment),
            SCTP => self.sctp_crc_is_valid(),
            _ => true,
        }
    }

    /// SCTP's CRC32c over the whole packet with its checksum field as zeros (RFC 9260
    /// appendix A: the value goes on the wire little-endian).
    fn sctp_crc_is_valid(&self) -> bool {
        let segment = self.bytes();
        let Some(field) = segment.get(8..12) else {
            return false;
        };
        let mut crc = crc32c::crc32c(&segment[..8]);
        crc = crc32c::crc32c_append(crc, &[0; 4]);
        crc = crc32c::crc32c_append(crc, &segment[12..]);
        crc.to_le_bytes() == field
    }
}

impl<A: Addr, T: AsRef<[u8]> + AsMut<[u8]>> TransportHeader<A, T> {
    /// Writes the ports (protocols with ports only) and brings the checksum up to date
    /// with them and with the pseudo-header's `addresses` change, as `status` keeps it:
    /// a `Partial` field holds the pseudo-header sum still to be completed, which only
    /// the addresses change, and SCTP's CRC is left to whoever completes it.
    #[inline(always)]
    pub(crate) fn set_ports(
        &mut self,
        src_port: u16,
        dst_port: u16,
        addresses: u16,
        status: ChecksumStatus,
    ) {
        let ports = match self.buffer.as_ref().first_chunk::<PORTS_LEN>() {
            Some(&[a, b, c, d]) if self.has_ports() => {
                let old = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
                TupleChange::of_ports(old, (src_port, dst_port))
            }
            _ => 0,
        };
        self.write_ports(src_port, dst_port, TupleChange { addresses, ports }, status);
    }

    /// [`TransportHeader::set_ports`] where `change` is known to be what the new ports
    /// and the pseudo-header's new addresses do to the checksum.
    #[inline(always)]
    pub(crate) fn write_ports(
        &mut self,
        src_port: u16,
        dst_port: u16,
        change: TupleChange,
        status: ChecksumStatus,
    ) {
        let mut sum = u32::from(change.addresses);
        if self.has_ports()
            && let Some(ports) = self.buffer.as_mut().get_mut(..PORTS_LEN)
        {
            let new = (u32::from(src_port) << 16) | u32::from(dst_port);
            ports.copy_from_slice(&new.to_be_bytes());
            if status != ChecksumStatus::Partial {
                sum += u32::from(change.ports);
            }
        }
        self.patch_pseudo_checksum(sum, status);
        if self.protocol == SCTP
            && self.extent == Extent::Whole
            && status != ChecksumStatus::Partial
        {
            self.fill_sctp_crc();
        }
    }

    /// Applies `change` to the checksum the pseudo-header covers, where the bytes hold it.
    #[inline(always)]
    fn patch_pseudo_checksum(&mut self, change: u32, status: ChecksumStatus) {
        let (Some(at), Some(old)) = (self.pseudo_checksum_at(), self.pseudo_checksum()) else {
            return;
        };
        let udp = self.protocol == UDP;
        let new = if status == ChecksumStatus::Partial {
            // The field holds the sum itself, not its complement (the kernel's
            // `inet_proto_csum_replace4` with CHECKSUM_PARTIAL).
            !checksum::apply_difference(!old, change)
        } else if udp && A::LEN == 4 && old == 0 {
            // A zero UDP checksum over IPv4 means "none" and stays so.
            return;
        } else {
            match checksum::apply_difference(old, change) {
                // UDP sends a computed zero as all ones: zero means "none".
                0 if udp => 0xffff,
                sum => sum,
            }
        };
        write_u16(self.buffer.as_mut(), at, new);
    }

    /// Recomputes SCTP's CRC32c over the whole packet.
    fn fill_sctp_crc(&mut self) {
        let sctp = self.buffer.as_mut();
        sctp[8..12].fill(0);
        let crc = crc32c::crc32c(sctp);
        sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    }

    /// Recomputes an ICMP message's checksum whole (after its quote changed): over the
    /// message after `pseudo_header` (ICMPv6's; 0 for ICMPv4, which has none).
    pub(crate) fn fill_icmp_checksum(&mut self, pseudo_header: u32) {
        let message = self.buffer.as_mut();
        message[2..4].fill(0);
        let sum = checksum::compute(pseudo_header, message);
        write_u16(message, 2, sum);
    }
}
