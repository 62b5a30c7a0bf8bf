//! The checksums the kernel checks on the way in: the IPv4 header's in `ip_rcv`, before
//! any netfilter hook, and the transport's in conntrack at PREROUTING
//! (`nf_conntrack_checksum`), unless the packet's `ip_summed` says not to.

use super::{Fragment, Parsed};
use crate::addr::Addr;
use crate::checksum;
use crate::meta::ChecksumStatus;
use crate::verdict::{DropReason, Hook};
use crate::wire::{Datagram, TCP, UDP};

/// Checks an arriving packet's checksums as the kernel does; `Err` names the drop.
/// Fragments are not checked: the kernel checks the reassembled datagram, and the engine
/// never reassembles. Inlined: called out of line, its views and the parsed tuple went
/// through memory: 35 instructions per established packet.
#[inline(always)]
pub(crate) fn verify_arriving<A: Addr, T: AsRef<[u8]>>(
    datagram: &Datagram<A, T>,
    parsed: &Parsed<A>,
    status: ChecksumStatus,
) -> Result<(), DropReason> {
    if !datagram.ip().checksum_is_valid() {
        return Err(DropReason::IpHeaderChecksum);
    }
    if status != ChecksumStatus::Unverified
        || parsed.fragment != Fragment::Whole
        || datagram.transport_checksum_is_valid()
    {
        Ok(())
    } else {
        Err(DropReason::TransportChecksum)
    }
}

/// A packet read in place: its views, and the facts the engine needs.
pub(crate) type Read<'a, A> = (Datagram<A, &'a mut [u8]>, Parsed<A>);

/// What both of a batch's short paths start with: a plain IPv4 TCP or UDP packet
/// ([`super::parse_plain`]) arriving at `hook`, its checksums checked there as
/// [`verify_arriving`] checks them. `None` for any other packet, or one to drop.
#[inline(always)]
pub(crate) fn parse_plain_arriving<A: Addr>(
    hook: Hook,
    packet: &mut [u8],
    status: ChecksumStatus,
) -> Option<Read<'_, A>> {
    let (packet, parsed) = super::parse_plain::<A, _>(packet)?;
    if hook == Hook::Prerouting && verify_arriving(&packet, &parsed, status).is_err() {
        return None;
    }
    Some((packet, parsed))
}

/// Whether the packet's TCP or UDP checksum field holds only its pseudo-header sum (and
/// is not a valid checksum): a checksum left for the NIC to complete (CHECKSUM_PARTIAL),
/// as a capture taken on the sending host (or a veth with offloads on) shows it.
pub(crate) fn holds_pseudo_header_sum<A: Addr>(packet: &[u8]) -> bool {
    let Ok((datagram, parsed)) = super::parse::<A, _>(packet) else {
        return false;
    };
    if !matches!(parsed.tuple.protocol, TCP | UDP) || parsed.fragment != Fragment::Whole {
        return false;
    }
    let transport = datagram.transport();
    let pseudo = datagram.pseudo_header_sum();
    // A complete checksum that happens to equal the pseudo-header sum is still complete.
    transport.pseudo_checksum() == Some(checksum::fold_sum(pseudo))
        && !transport.checksum_is_valid(|| pseudo)
}
