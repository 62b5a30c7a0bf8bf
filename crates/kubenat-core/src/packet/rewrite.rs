//! Rewriting a packet's addresses and ports in place, keeping every checksum valid
//! (incremental updates, RFC 1624; SCTP's CRC32c recomputed).

use super::{ICMPV6, SCTP, TCP, UDP, read_u16, write_u16};
use crate::addr::Addr;
use crate::checksum;
use crate::conntrack::Tuple;
use crate::meta::ChecksumStatus;

/// Byte offsets of the source and destination address in an IP header of family `A`.
fn address_offsets<A: Addr>() -> (usize, usize) {
    if A::LEN == 4 { (12, 16) } else { (8, 24) }
}

/// Offset of the transport checksum inside its header, for checksums the pseudo-header
/// covers (TCP, UDP, ICMPv6).
fn pseudo_checksum_offset(protocol: u8) -> Option<usize> {
    match protocol {
        TCP => Some(16),
        UDP => Some(6),
        ICMPV6 => Some(2),
        _ => None,
    }
}

/// Rewrites the addresses and ports of the IP packet at the start of `packet` from `from`
/// to `to`, keeping every checksum valid. `l4_offset`/`l4_available` locate the transport
/// header and how many of its bytes are present (a quoted header in an ICMP error may be
/// cut after the ports). Ports are rewritten only for port protocols. A `Partial`
/// transport checksum holds the pseudo-header sum still to be completed: only the
/// addresses change it, and SCTP's CRC is left to whoever completes it.
pub(crate) fn rewrite<A: Addr>(
    packet: &mut [u8],
    l4_offset: usize,
    l4_available: usize,
    from: &Tuple<A>,
    to: &Tuple<A>,
    whole_sctp: bool,
    status: ChecksumStatus,
) {
    let partial = status == ChecksumStatus::Partial;
    let (src_at, dst_at) = address_offsets::<A>();
    let mut old_addrs = [0u8; 32];
    let mut new_addrs = [0u8; 32];
    let n = A::LEN;
    from.src.write(&mut old_addrs[..n]);
    from.dst.write(&mut old_addrs[n..2 * n]);
    to.src.write(&mut new_addrs[..n]);
    to.dst.write(&mut new_addrs[n..2 * n]);
    let (old_addrs, new_addrs) = (&old_addrs[..2 * n], &new_addrs[..2 * n]);
    to.src.write(&mut packet[src_at..]);
    to.dst.write(&mut packet[dst_at..]);
    if A::LEN == 4 {
        let sum = checksum::update(read_u16(packet, 10), old_addrs, new_addrs);
        write_u16(packet, 10, sum);
    }
    let protocol = from.protocol;
    let has_ports = matches!(protocol, TCP | UDP | SCTP);
    if has_ports && l4_available >= 4 {
        write_u16(packet, l4_offset, to.sport);
        write_u16(packet, l4_offset + 2, to.dport);
    }
    if let Some(at) = pseudo_checksum_offset(protocol)
        && l4_available >= at + 2
    {
        let at = l4_offset + at;
        let old = read_u16(packet, at);
        if partial {
            // The field holds the sum itself, not its complement (the kernel's
            // `inet_proto_csum_replace4` with CHECKSUM_PARTIAL).
            write_u16(packet, at, !checksum::update(!old, old_addrs, new_addrs));
        } else if !(protocol == UDP && A::LEN == 4 && old == 0) {
            // A zero UDP checksum over IPv4 means "none" and stays so.
            let mut sum = checksum::update(old, old_addrs, new_addrs);
            if has_ports {
                sum = checksum::update(sum, &port_words(from), &port_words(to));
            }
            if protocol == UDP && sum == 0 {
                sum = 0xffff;
            }
            write_u16(packet, at, sum);
        }
    }
    if protocol == SCTP && whole_sctp && !partial && l4_available >= 12 {
        let sctp = &mut packet[l4_offset..l4_offset + l4_available];
        sctp[8..12].fill(0);
        let crc = crc32c::crc32c(sctp);
        // SCTP's CRC32c goes on the wire little-endian (RFC 9260 appendix A).
        sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The source and destination port as the four bytes they occupy on the wire.
fn port_words<A>(tuple: &Tuple<A>) -> [u8; 4] {
    let [a, b] = tuple.sport.to_be_bytes();
    let [c, d] = tuple.dport.to_be_bytes();
    [a, b, c, d]
}
