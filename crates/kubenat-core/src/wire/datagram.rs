//! One packet's two views: its IP header and, where its extensions end, its transport
//! header.

use std::marker::PhantomData;
use std::ops::Range;

use super::transport::Extent;
use super::{IpHeader, Layer, TransportHeader, WireError};
use crate::addr::Addr;
use crate::checksum::{self, TupleChange};
use crate::conntrack::Tuple;
use crate::meta::ChecksumStatus;

/// An IP packet of family `A` in `buffer`, its transport header of `protocol` starting its
/// segment at `transport_at`, which ends at `transport_end` (the datagram's end, or the
/// buffer's for a quote cut short).
#[derive(Debug)]
pub(crate) struct Datagram<A, T> {
    buffer: T,
    protocol: u8,
    transport_at: usize,
    transport_end: usize,
    extent: Extent,
    family: PhantomData<A>,
}

impl<A: Addr, T: AsRef<[u8]>> Datagram<A, T> {
    /// A packet whose IP header [`IpHeader::new_checked`] accepted, followed by
    /// extensions up to its transport `segment`, which holds a header of `protocol` that
    /// [`TransportHeader::new_checked`] accepted (or, in a fragment after the first, no
    /// header: only its addresses are then rewritten). Getters panic where it does not.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T, protocol: u8, segment: Range<usize>) -> Self {
        Datagram {
            buffer,
            protocol,
            transport_at: segment.start,
            transport_end: segment.end,
            extent: Extent::Whole,
            family: PhantomData,
        }
    }

    /// The packet quoted in an ICMP error: an IP header, then (after its extensions) a
    /// TCP, UDP or SCTP header of `protocol` in `segment`, cut anywhere after its ports.
    pub(crate) fn new_quoted(
        buffer: T,
        protocol: u8,
        segment: Range<usize>,
    ) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let header_len = IpHeader::<A, _>::new_checked(bytes)?.header_len();
        if segment.start < header_len {
            return Err(WireError::HeaderLength {
                layer: Layer::Ip,
                len: segment.start,
            });
        }
        let Some(quote) = bytes.get(segment.clone()) else {
            let (needed, len) = (segment.end, bytes.len());
            return Err(WireError::Truncated {
                layer: Layer::Transport,
                needed,
                len,
            });
        };
        TransportHeader::<A, _>::new_quoted(quote, protocol)?;
        Ok(Datagram {
            extent: Extent::Quoted,
            ..Self::new_unchecked(buffer, protocol, segment)
        })
    }

    #[inline(always)]
    pub(crate) fn ip(&self) -> IpHeader<A, &[u8]> {
        // The whole buffer: the view reads its header only, and a slice would cost a check.
        IpHeader::new_unchecked(self.buffer.as_ref())
    }

    #[inline(always)]
    pub(crate) fn transport(&self) -> TransportHeader<A, &[u8]> {
        let segment = &self.buffer.as_ref()[self.transport_at..self.transport_end];
        TransportHeader::new_unchecked(segment, self.protocol, self.extent)
    }

    /// The transport segment's bytes.
    #[inline(always)]
    pub(crate) fn transport_len(&self) -> usize {
        self.transport_end - self.transport_at
    }

    /// The one's-complement sum of the transport segment's pseudo-header.
    #[inline(always)]
    pub(crate) fn pseudo_header_sum(&self) -> u32 {
        let ip = self.ip();
        let (src, dst) = ip.addresses().split_at(A::LEN);
        checksum::pseudo_header_sum(src, dst, self.protocol, self.transport_len() as u32)
    }

    /// Whether the transport checksum is right (see
    /// [`TransportHeader::checksum_is_valid`]).
    #[inline(always)]
    pub(crate) fn transport_checksum_is_valid(&self) -> bool {
        self.transport()
            .checksum_is_valid(|| self.pseudo_header_sum())
    }
}

impl<A: Addr, T: AsRef<[u8]> + AsMut<[u8]>> Datagram<A, T> {
    #[inline(always)]
    fn ip_mut(&mut self) -> IpHeader<A, &mut [u8]> {
        IpHeader::new_unchecked(self.buffer.as_mut())
    }

    #[inline(always)]
    pub(crate) fn transport_mut(&mut self) -> TransportHeader<A, &mut [u8]> {
        let segment = &mut self.buffer.as_mut()[self.transport_at..self.transport_end];
        TransportHeader::new_unchecked(segment, self.protocol, self.extent)
    }

    /// The segment's bytes, for what lies inside it (the quote in an ICMP error).
    #[inline(always)]
    pub(crate) fn segment_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[self.transport_at..self.transport_end]
    }

    /// Rewrites the addresses and ports to `to`'s, keeping every checksum right as
    /// `status` keeps it (see [`TransportHeader::set_ports`]).
    #[inline(always)]
    pub(crate) fn translate(&mut self, to: &Tuple<A>, status: ChecksumStatus) {
        let addresses = self.ip_mut().set_addresses(to.src, to.dst);
        self.transport_mut()
            .set_ports(to.sport, to.dport, addresses, status);
    }

    /// [`Datagram::translate`] where `change` is known to be what the rewrite from the
    /// packet's tuple to `to` does to its checksums (a tracked connection's).
    #[inline(always)]
    pub(crate) fn translate_by(
        &mut self,
        to: &Tuple<A>,
        change: TupleChange,
        status: ChecksumStatus,
    ) {
        self.ip_mut()
            .write_addresses(to.src, to.dst, change.addresses);
        self.transport_mut()
            .write_ports(to.sport, to.dport, change, status);
    }

    /// Rewrites the addresses only: a fragment after the first carries no transport
    /// header, and an ICMP error's checksum is recomputed whole after its quote changed.
    #[inline(always)]
    pub(crate) fn set_addresses(&mut self, src: A, dst: A) {
        self.ip_mut().set_addresses(src, dst);
    }
}
