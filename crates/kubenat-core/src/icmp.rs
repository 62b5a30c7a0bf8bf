//! ICMP errors about translated connections: netfilter treats them as RELATED and rewrites
//! the quoted header back to what its receiver sent (or received), and the outer header to
//! reach the right host, with every checksum fixed.

use etherparse::LaxIpSlice;

use crate::addr::Addr;
use crate::checksum;
use crate::conntrack::{Conntrack, Direction, Entry, Tuple};
use crate::meta::ChecksumStatus;
use crate::packet::{self, ICMPV4, ICMPV6, Parsed, SCTP, TCP, UDP};
use crate::time::Instant;
use crate::verdict::DropReason;

/// The quoted packet inside an ICMP error.
struct Quoted<A> {
    tuple: Tuple<A>,
    /// Offset of the quoted transport header from the start of the quoted IP header.
    l4_offset: usize,
    /// Quoted transport bytes present.
    l4_available: usize,
}

fn parse_quoted<A: Addr>(quoted: &[u8]) -> Result<Option<Quoted<A>>, DropReason> {
    let (ip, _) = LaxIpSlice::from_slice(quoted).map_err(|_| DropReason::MalformedIcmpError)?;
    let (Some(src), Some(dst)) = (
        A::from_ip(ip.source_addr()),
        A::from_ip(ip.destination_addr()),
    ) else {
        return Err(DropReason::MalformedIcmpError);
    };
    let payload = ip.payload();
    let protocol = payload.ip_number.0;
    if !matches!(protocol, TCP | UDP | SCTP) {
        return Ok(None);
    }
    let l4 = payload.payload;
    if l4.len() < 4 {
        return Err(DropReason::MalformedIcmpError);
    }
    Ok(Some(Quoted {
        tuple: Tuple {
            src,
            dst,
            sport: u16::from_be_bytes([l4[0], l4[1]]),
            dport: u16::from_be_bytes([l4[2], l4[3]]),
            protocol,
        },
        l4_offset: l4.as_ptr() as usize - quoted.as_ptr() as usize,
        l4_available: l4.len(),
    }))
}

/// The rewrite of an ICMP error related to `entry`, travelling in `direction`.
/// Returns the new quoted tuple and the new outer (source, destination).
fn related_rewrite<A: Addr>(
    entry: &Entry<A>,
    direction: Direction,
    outer: &Tuple<A>,
) -> (Tuple<A>, A, A) {
    let (o, r) = (&entry.original, &entry.reply);
    match direction {
        // From the endpoint's side: the quote is what left towards the endpoint; make it
        // what the client sent, and send the error to the client (from the service address
        // when the connection was DNATed, as Linux does).
        Direction::Reply => {
            let src = if entry.dnat() { o.dst } else { outer.src };
            (*o, src, o.src)
        }
        // From the client's side: the quote is a reply the client received; make it what
        // the endpoint sent, and send the error to the endpoint.
        Direction::Original => {
            let src = if entry.masquerade { r.dst } else { outer.src };
            (*r, src, r.src)
        }
    }
}

/// Translates an ICMP error whose quoted packet belongs to a tracked connection.
/// `Ok(None)`: not related to any tracked connection, leave it as it is.
pub(crate) fn translate_error<A: Addr>(
    conntrack: &Conntrack<A>,
    packet: &mut [u8],
    outer: &Parsed<A>,
    now: Instant,
) -> Result<Option<(Direction, Tuple<A>)>, DropReason> {
    let icmp_at = outer.l4_offset;
    let icmp_end = icmp_at + outer.l4_len;
    let quoted_at = icmp_at + 8;
    let Some(quoted) = parse_quoted::<A>(&packet[quoted_at..icmp_end])? else {
        return Ok(None);
    };
    let Some((index, direction)) = conntrack.lookup_live(&quoted.tuple.reversed(), now) else {
        return Ok(None);
    };
    let entry = conntrack.entry(index);
    if !entry.dnat() && !entry.masquerade {
        // A connection no rule NATed (tracked so masquerade never reuses its tuple): its
        // errors need no translation and leave as they came (Linux translates errors of
        // NATed connections only).
        return Ok(None);
    }
    let (new_quoted, new_src, new_dst) = related_rewrite(entry, direction, &outer.tuple);
    let new_outer = Tuple {
        src: new_src,
        dst: new_dst,
        ..outer.tuple
    };
    packet::rewrite(
        &mut packet[quoted_at..icmp_end],
        quoted.l4_offset,
        quoted.l4_available,
        &quoted.tuple,
        &new_quoted,
        false,
        ChecksumStatus::default(),
    );
    let complete = ChecksumStatus::default();
    packet::rewrite(
        packet,
        icmp_at,
        0,
        &outer.tuple,
        &new_outer,
        false,
        complete,
    );
    // The quote changed inside the ICMP payload: recompute the ICMP checksum whole.
    packet[icmp_at + 2..icmp_at + 4].fill(0);
    let initial = if outer.tuple.protocol == ICMPV6 {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        new_outer.src.write(&mut src);
        new_outer.dst.write(&mut dst);
        checksum::pseudo_header_sum(&src, &dst, ICMPV6, outer.l4_len as u32)
    } else {
        debug_assert_eq!(outer.tuple.protocol, ICMPV4);
        0
    };
    let sum = checksum::compute(initial, &packet[icmp_at..icmp_end]);
    packet[icmp_at + 2..icmp_at + 4].copy_from_slice(&sum.to_be_bytes());
    Ok(Some((direction, new_outer)))
}
