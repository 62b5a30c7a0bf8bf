//! The checksums the kernel checks on the way in: the IPv4 header's in `ip_rcv`, before
//! any netfilter hook, and the transport's in conntrack at PREROUTING
//! (`nf_conntrack_checksum`), unless the packet's `ip_summed` says not to.

use super::{Fragment, ICMPV4, ICMPV6, Parsed, SCTP, TCP, UDP, read_u16};
use crate::addr::Addr;
use crate::checksum;
use crate::meta::ChecksumStatus;
use crate::verdict::DropReason;

/// Checks an arriving packet's checksums as the kernel does; `Err` names the drop.
/// Fragments are not checked: the kernel checks the reassembled datagram, and the engine
/// never reassembles.
#[inline]
pub(crate) fn verify_arriving<A: Addr>(
    packet: &[u8],
    parsed: &Parsed<A>,
    status: ChecksumStatus,
) -> Result<(), DropReason> {
    if A::LEN == 4 {
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        if !checksum::ipv4_header_is_valid(&packet[..header_len]) {
            return Err(DropReason::IpHeaderChecksum);
        }
    }
    if status != ChecksumStatus::Unverified || parsed.fragment != Fragment::Whole {
        return Ok(());
    }
    let segment = &packet[parsed.l4_offset..parsed.l4_offset + parsed.l4_len];
    let valid = match parsed.tuple.protocol {
        // A zero UDP checksum over IPv4 means "none was computed" (RFC 768).
        UDP if A::LEN == 4 && segment.len() >= 8 && read_u16(segment, 6) == 0 => true,
        TCP | UDP => checksum::is_valid(pseudo_header_sum(parsed), segment),
        ICMPV6 if A::LEN == 16 => checksum::is_valid(pseudo_header_sum(parsed), segment),
        ICMPV4 if A::LEN == 4 => checksum::is_valid(0, segment),
        SCTP => sctp_crc_valid(segment),
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(DropReason::TransportChecksum)
    }
}

/// Whether the packet's TCP or UDP checksum field holds only its pseudo-header sum (and
/// is not a valid checksum): a checksum left for the NIC to complete (CHECKSUM_PARTIAL), as a capture taken on the
/// sending host (or a veth with offloads on) shows it.
pub(crate) fn holds_pseudo_header_sum<A: Addr>(packet: &[u8]) -> bool {
    let Ok(parsed) = super::parse::<A>(packet) else {
        return false;
    };
    let at = match parsed.tuple.protocol {
        TCP => 16,
        UDP => 6,
        _ => return false,
    };
    if parsed.fragment != Fragment::Whole || parsed.l4_len < at + 2 {
        return false;
    }
    let pseudo = pseudo_header_sum(&parsed);
    let segment = &packet[parsed.l4_offset..parsed.l4_offset + parsed.l4_len];
    // A complete checksum that happens to equal the pseudo-header sum is still complete.
    read_u16(segment, at) == checksum::fold_sum(pseudo) && !checksum::is_valid(pseudo, segment)
}

/// The pseudo-header sum of the packet's transport segment.
fn pseudo_header_sum<A: Addr>(parsed: &Parsed<A>) -> u32 {
    let (mut source, mut destination) = ([0u8; 16], [0u8; 16]);
    parsed.tuple.src.write(&mut source);
    parsed.tuple.dst.write(&mut destination);
    checksum::pseudo_header_sum(
        &source[..A::LEN],
        &destination[..A::LEN],
        parsed.tuple.protocol,
        parsed.l4_len as u32,
    )
}

/// SCTP's CRC32c over the whole packet with its checksum field as zeros (RFC 9260
/// appendix A: the value goes on the wire little-endian).
fn sctp_crc_valid(segment: &[u8]) -> bool {
    let Some(field) = segment.get(8..12) else {
        return false;
    };
    let mut crc = crc32c::crc32c(&segment[..8]);
    crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc = crc32c::crc32c_append(crc, &segment[12..]);
    crc.to_le_bytes() == field
}
