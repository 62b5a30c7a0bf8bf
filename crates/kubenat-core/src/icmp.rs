//! ICMP errors about translated connections: netfilter treats them as RELATED and rewrites
//! the quoted header back to what its receiver sent (or received), and the outer header to
//! reach the right host, with every checksum fixed.

use etherparse::LaxIpSlice;

use crate::addr::Addr;
use crate::conntrack::{Conntrack, Direction, Entry, Tuple};
use crate::meta::ChecksumStatus;
use crate::packet::{self, Parsed};
use crate::time::Instant;
use crate::verdict::DropReason;
use crate::wire::{Datagram, ICMPV6, SCTP, TCP, UDP};

/// Bytes of the ICMP header before the quoted packet.
const ICMP_HEADER_LEN: usize = 8;

/// A TCP, UDP or SCTP packet quoted inside an ICMP error: its views and its tuple.
type Quoted<'a, A> = (Datagram<A, &'a mut [u8]>, Tuple<A>);

/// The packet quoted inside an ICMP error; `Ok(None)` for protocols other than TCP, UDP
/// and SCTP.
fn parse_quoted<A: Addr>(quoted: &mut [u8]) -> Result<Option<Quoted<'_, A>>, DropReason> {
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
    // The quoted transport bytes: up to the quoted datagram's end or the quote's.
    let l4 = payload.payload;
    let start = packet::offset_in(quoted, l4);
    let segment = start..start + l4.len();
    let datagram = Datagram::new_quoted(quoted, protocol, segment)
        .map_err(|_| DropReason::MalformedIcmpError)?;
    let (sport, dport) = datagram.transport().ports();
    let tuple = Tuple {
        src,
        dst,
        sport,
        dport,
        protocol,
    };
    Ok(Some((datagram, tuple)))
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
    packet: &mut Datagram<A, &mut [u8]>,
    outer: &Parsed<A>,
    now: Instant,
) -> Result<Option<(Direction, Tuple<A>)>, DropReason> {
    let message = packet.segment_mut();
    let Some((mut quoted, quoted_tuple)) = parse_quoted::<A>(&mut message[ICMP_HEADER_LEN..])?
    else {
        return Ok(None);
    };
    let Some((index, direction)) = conntrack.lookup_live(&quoted_tuple.reversed(), now) else {
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
    quoted.translate(&new_quoted, ChecksumStatus::default());
    packet.set_addresses(new_src, new_dst);
    // The quote changed inside the ICMP payload: recompute the ICMP checksum whole.
    let pseudo_header = match outer.tuple.protocol {
        ICMPV6 => packet.pseudo_header_sum(),
        _ => 0,
    };
    packet.transport_mut().fill_icmp_checksum(pseudo_header);
    let new_outer = Tuple {
        src: new_src,
        dst: new_dst,
        ..outer.tuple
    };
    Ok(Some((direction, new_outer)))
}
