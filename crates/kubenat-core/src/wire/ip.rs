//! The IP header view: one code path for IPv4 and IPv6, the families differing only in
//! where their fields sit.

use std::marker::PhantomData;

use super::{Layer, WireError, read_u16, write_u16};
use crate::addr::Addr;
use crate::checksum::{self, TupleChange};

/// An IPv4 or IPv6 header (family `A`) at the start of `buffer`. Reads the fixed header
/// only: IPv4 options and IPv6 extension headers are skipped by [`IpHeader::header_len`]
/// and left to whoever parses them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpHeader<A, T> {
    buffer: T,
    family: PhantomData<A>,
}

impl<A: Addr, T: AsRef<[u8]>> IpHeader<A, T> {
    /// Bytes of the fixed header: IPv4's without options, IPv6's without extensions.
    pub(crate) const FIXED_LEN: usize = if A::LEN == 4 { 20 } else { 40 };
    const VERSION: u8 = if A::LEN == 4 { 4 } else { 6 };
    /// The source address, followed by the destination address.
    const ADDRESSES: usize = if A::LEN == 4 { 12 } else { 8 };
    const PROTOCOL: usize = if A::LEN == 4 { 9 } else { 6 };
    const IPV4_FRAGMENT: usize = 6;
    const IPV4_CHECKSUM: usize = 10;

    /// A view that trusts `buffer` to hold a header [`IpHeader::new_checked`] accepts;
    /// getters panic where it does not.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        IpHeader {
            buffer,
            family: PhantomData,
        }
    }

    /// A view of the header at the start of `buffer`, once its version and lengths say
    /// the whole header is there. The datagram length is not checked against the buffer:
    /// a packet quoted in an ICMP error is cut short.
    #[inline(always)]
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        // Nearly every IPv4 header has no options: one test lets it through.
        if A::LEN == 4 && bytes.len() >= Self::FIXED_LEN && bytes[0] == 0x45 {
            return Ok(Self::new_unchecked(buffer));
        }
        WireError::check(Layer::Ip, Self::FIXED_LEN, bytes.len())?;
        let found = bytes[0] >> 4;
        if found != Self::VERSION {
            return Err(WireError::Version { found });
        }
        let header = Self::new_unchecked(buffer);
        let len = header.header_len();
        if len < Self::FIXED_LEN {
            return Err(WireError::HeaderLength {
                layer: Layer::Ip,
                len,
            });
        }
        WireError::check(Layer::Ip, len, header.buffer.as_ref().len())?;
        Ok(header)
    }

    /// The fixed header's bytes; a view from `new_unchecked` over a short buffer panics.
    #[inline(always)]
    fn fixed(&self) -> &[u8] {
        &self.buffer.as_ref()[..Self::FIXED_LEN]
    }

    /// Bytes of the header: IPv4's with its options (IHL), IPv6's fixed 40.
    #[inline(always)]
    pub(crate) fn header_len(&self) -> usize {
        if A::LEN == 4 {
            usize::from(self.fixed()[0] & 0x0f) * 4
        } else {
            Self::FIXED_LEN
        }
    }

    /// Bytes of the datagram, headers included, as its length field says.
    #[inline(always)]
    pub(crate) fn datagram_len(&self) -> usize {
        if A::LEN == 4 {
            usize::from(read_u16(self.fixed(), 2))
        } else {
            Self::FIXED_LEN + usize::from(read_u16(self.fixed(), 4))
        }
    }

    /// IPv4's protocol, or the next header after IPv6's fixed header.
    #[inline(always)]
    pub(crate) fn protocol(&self) -> u8 {
        self.fixed()[Self::PROTOCOL]
    }

    /// The source and destination address bytes, in that order (as the pseudo-header
    /// sums them).
    #[inline(always)]
    pub(crate) fn addresses(&self) -> &[u8] {
        &self.fixed()[Self::ADDRESSES..Self::ADDRESSES + 2 * A::LEN]
    }

    #[inline(always)]
    pub(crate) fn src(&self) -> A {
        A::read(&self.fixed()[Self::ADDRESSES..])
    }

    #[inline(always)]
    pub(crate) fn dst(&self) -> A {
        A::read(&self.fixed()[Self::ADDRESSES + A::LEN..])
    }

    /// Whether an IPv4 header marks a fragment (more fragments, or an offset). IPv6 says
    /// so in an extension header this view does not read: `false`.
    #[inline(always)]
    pub(crate) fn is_ipv4_fragment(&self) -> bool {
        A::LEN == 4 && read_u16(self.fixed(), Self::IPV4_FRAGMENT) & 0x3fff != 0
    }

    /// Whether the IPv4 header checksum is right; IPv6 has none.
    #[inline(always)]
    pub(crate) fn checksum_is_valid(&self) -> bool {
        A::LEN != 4 || checksum::ipv4_header_is_valid(&self.buffer.as_ref()[..self.header_len()])
    }
}

impl<A: Addr, T: AsRef<[u8]> + AsMut<[u8]>> IpHeader<A, T> {
    /// Writes the addresses, patching the IPv4 header checksum; returns the change for
    /// the transport checksum ([`TransportHeader::set_ports`](super::TransportHeader)).
    #[inline(always)]
    pub(crate) fn set_addresses(&mut self, src: A, dst: A) -> u16 {
        let removed = self.src().complement_word_sum() + self.dst().complement_word_sum();
        let change = TupleChange::of_addresses(removed, src.word_sum() + dst.word_sum());
        self.write_addresses(src, dst, change);
        change
    }

    /// Writes the addresses where `change` is known to be what they do to the checksums
    /// ([`TupleChange::addresses`]), patching the IPv4 header checksum.
    #[inline(always)]
    pub(crate) fn write_addresses(&mut self, src: A, dst: A, change: u16) {
        let at = Self::ADDRESSES;
        let header = &mut self.buffer.as_mut()[..Self::FIXED_LEN];
        src.write(&mut header[at..]);
        dst.write(&mut header[at + A::LEN..]);
        if A::LEN == 4 {
            let old = read_u16(header, Self::IPV4_CHECKSUM);
            let sum = checksum::apply_difference(old, u32::from(change));
            write_u16(header, Self::IPV4_CHECKSUM, sum);
        }
    }
}
