//! Reading a packet's IP and transport headers once: a fixed-offset fast path for plain
//! IPv4 TCP/UDP, etherparse for everything else, and a quick unvalidated peek for prefetching.

use std::ops::Range;

use etherparse::IpSlice;
use etherparse::err::{Layer, ip::HeadersError, ip::SliceError};

use super::{Fragment, Parsed, Transport};
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::verdict::DropReason;
use crate::wire::{Datagram, ICMPV4, ICMPV6, IpHeader, SCTP, TCP, TransportHeader, UDP};

fn ip_error(error: &SliceError) -> DropReason {
    match error {
        SliceError::Len(len) if matches!(len.layer, Layer::Ipv6ExtHeader) => {
            DropReason::MalformedExtensionHeader
        }
        SliceError::IpHeaders(HeadersError::Ipv4Ext(_) | HeadersError::Ipv6Ext(_)) => {
            DropReason::MalformedExtensionHeader
        }
        _ => DropReason::MalformedIpHeader,
    }
}

/// Offset of `inner` inside `outer` (both borrowed from one buffer): where etherparse found
/// a header.
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

fn is_icmp_error(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        ICMPV4 => matches!(icmp_type, 3 | 4 | 5 | 11 | 12),
        _ => matches!(icmp_type, 1..=4),
    }
}

fn is_echo_request(protocol: u8, icmp_type: u8) -> bool {
    (protocol == ICMPV4 && icmp_type == 8) || (protocol == ICMPV6 && icmp_type == 128)
}

/// Reads the IP and transport headers of `packet` (raw IP, family `A`): the views over it
/// and the facts the engine needs.
#[inline]
pub(crate) fn parse<A: Addr, T: AsRef<[u8]>>(
    packet: T,
) -> Result<(Datagram<A, T>, Parsed<A>), DropReason> {
    let bytes = packet.as_ref();
    let (parsed, transport) = match plain_ipv4::<A>(bytes) {
        Some(read) => read,
        None => parse_headers(bytes)?,
    };
    let datagram = Datagram::new_unchecked(packet, parsed.tuple.protocol, transport);
    Ok((datagram, parsed))
}

/// [`parse`] of the common case only ([`plain_ipv4`]): `None` for anything else.
#[inline(always)]
pub(crate) fn parse_plain<A: Addr, T: AsRef<[u8]>>(
    packet: T,
) -> Option<(Datagram<A, T>, Parsed<A>)> {
    let (parsed, transport) = plain_ipv4::<A>(packet.as_ref())?;
    let datagram = Datagram::new_unchecked(packet, parsed.tuple.protocol, transport);
    Some((datagram, parsed))
}

/// The common case read through the views alone: an IPv4 packet without options, not a
/// fragment, carrying a well-formed TCP or UDP header. `None` for anything else, which
/// [`parse_headers`] (etherparse) reads instead; where both apply they agree (tested).
/// Also returns where the transport segment lies.
#[inline(always)]
fn plain_ipv4<A: Addr>(packet: &[u8]) -> Option<(Parsed<A>, Range<usize>)> {
    if A::LEN != 4 {
        return None;
    }
    let ip = IpHeader::<A, _>::new_checked(packet).ok()?;
    let header_len = IpHeader::<A, &[u8]>::FIXED_LEN;
    if ip.header_len() != header_len || ip.is_ipv4_fragment() {
        return None;
    }
    let total = ip.datagram_len();
    let segment = packet.get(header_len..total)?;
    let l4 = match ip.protocol() {
        protocol @ (TCP | UDP) => TransportHeader::<A, _>::new_checked(segment, protocol).ok()?,
        _ => return None,
    };
    if l4.protocol() == UDP && !udp_length_fits(&l4) {
        return None;
    }
    let parsed = with_ports(ip.src(), ip.dst(), &l4, Fragment::Whole, 0);
    Some((parsed, header_len..total))
}

/// Whether UDP's length field covers its header and stays inside the segment.
#[inline]
fn udp_length_fits<A: Addr>(udp: &TransportHeader<A, &[u8]>) -> bool {
    (8..=udp.len()).contains(&usize::from(udp.udp_length()))
}

/// The facts of a TCP, UDP or SCTP packet whose header `l4` holds.
#[inline(always)]
fn with_ports<A: Addr>(
    src: A,
    dst: A,
    l4: &TransportHeader<A, &[u8]>,
    fragment: Fragment,
    fragment_id: u32,
) -> Parsed<A> {
    let protocol = l4.protocol();
    let (sport, dport) = l4.ports();
    Parsed {
        tuple: Tuple {
            src,
            dst,
            sport,
            dport,
            protocol,
        },
        transport: Transport::Ports,
        fragment,
        fragment_id,
        tcp_flags: if protocol == TCP { l4.tcp_flags() } else { 0 },
        sctp_chunk: if protocol == SCTP {
            l4.sctp_first_chunk()
        } else {
            0
        },
    }
}

/// Reads the IP and transport headers of `packet` with etherparse, whatever they hold;
/// also returns where the transport segment lies.
fn parse_headers<A: Addr>(packet: &[u8]) -> Result<(Parsed<A>, Range<usize>), DropReason> {
    let ip = IpSlice::from_slice(packet).map_err(|e| ip_error(&e))?;
    let (Some(src), Some(dst)) = (
        A::from_ip(ip.source_addr()),
        A::from_ip(ip.destination_addr()),
    ) else {
        return Err(DropReason::MalformedIpHeader);
    };
    let payload = ip.payload();
    let protocol = payload.ip_number.0;
    let l4 = payload.payload;
    let l4_offset = offset_in(packet, l4);
    let segment = l4_offset..l4_offset + l4.len();
    let (fragment, fragment_id) = match fragment_of(&ip) {
        None => (Fragment::Whole, 0),
        Some((0, id)) => (Fragment::First, id),
        Some((_, id)) => (Fragment::Later, id),
    };
    let mut parsed = Parsed {
        tuple: Tuple {
            src,
            dst,
            sport: 0,
            dport: 0,
            protocol,
        },
        transport: Transport::Other,
        fragment,
        fragment_id,
        tcp_flags: 0,
        sctp_chunk: 0,
    };
    if fragment == Fragment::Later {
        // No transport header here: the ports come from the first fragment.
        match protocol {
            TCP | UDP => parsed.transport = Transport::Ports,
            SCTP => return Err(DropReason::Fragment),
            _ => {}
        }
        return Ok((parsed, segment));
    }
    if protocol == SCTP && fragment != Fragment::Whole {
        // The CRC32c covers the whole packet: a fragment cannot be re-checksummed.
        return Err(DropReason::Fragment);
    }
    let header = TransportHeader::<A, _>::new_checked(l4, protocol).map_err(|_| {
        match (protocol, fragment) {
            // The header continues in the next fragment.
            (TCP | UDP, Fragment::First) => DropReason::Fragment,
            _ => DropReason::MalformedTransportHeader,
        }
    })?;
    match protocol {
        TCP | UDP | SCTP => {
            if protocol == UDP && fragment == Fragment::Whole && !udp_length_fits(&header) {
                return Err(DropReason::MalformedTransportHeader);
            }
            parsed = with_ports(src, dst, &header, fragment, fragment_id);
        }
        ICMPV4 | ICMPV6 if A::LEN == if protocol == ICMPV4 { 4 } else { 16 } => {
            let icmp_type = header.icmp_type();
            if is_echo_request(protocol, icmp_type) {
                parsed.tuple.sport = header.echo_identifier();
                parsed.transport = Transport::EchoRequest;
            } else if is_icmp_error(protocol, icmp_type) {
                if fragment != Fragment::Whole {
                    return Err(DropReason::Fragment);
                }
                parsed.transport = Transport::IcmpError;
            }
        }
        _ => {}
    }
    Ok((parsed, segment))
}

/// The tuple of a TCP/UDP/SCTP packet from a quick look through the views (IPv4 with any
/// options, IPv6 without extension headers), without validating the rest: for
/// prefetching only.
#[inline]
pub(crate) fn peek_tuple<A: Addr>(packet: &[u8]) -> Option<Tuple<A>> {
    if packet.len() < IpHeader::<A, &[u8]>::FIXED_LEN {
        return None;
    }
    // A hint needs no validation: the fixed header is there, and the ports are looked for.
    let ip = IpHeader::<A, _>::new_unchecked(packet);
    let protocol = ip.protocol();
    if !matches!(protocol, TCP | UDP | SCTP) {
        return None;
    }
    let l4 = TransportHeader::<A, _>::new_quoted(packet.get(ip.header_len()..)?, protocol).ok()?;
    let (sport, dport) = l4.ports();
    Some(Tuple {
        src: ip.src(),
        dst: ip.dst(),
        sport,
        dport,
        protocol,
    })
}

/// (fragment offset, identification) when the packet is a fragment.
fn fragment_of(ip: &IpSlice<'_>) -> Option<(u16, u32)> {
    match ip {
        IpSlice::Ipv4(v4) => {
            let h = v4.header();
            (h.more_fragments() || h.fragments_offset().value() != 0)
                .then(|| (h.fragments_offset().value(), u32::from(h.identification())))
        }
        IpSlice::Ipv6(v6) => v6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|ext| match ext {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => {
                    let h = f.to_header();
                    h.is_fragmenting_payload()
                        .then(|| (h.fragment_offset.value(), h.identification))
                }
                _ => None,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn tcp_or_udp(udp: bool, payload: &[u8]) -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 96, 0, 10], 64);
        let mut out = Vec::new();
        if udp {
            builder.udp(5353, 53).write(&mut out, payload).unwrap();
        } else {
            builder
                .tcp(40000, 80, 7, 1000)
                .syn()
                .write(&mut out, payload)
                .unwrap();
        }
        out
    }

    proptest! {
        // Cheap cases; enough of them that single header fields get hit.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whenever the fixed-offset reading of a plain IPv4 packet applies, etherparse
        /// reads the same facts from it: over TCP and UDP packets with any bytes of their
        /// headers overwritten, and any length cut or padding.
        #[test]
        fn the_plain_ipv4_reading_agrees_with_etherparse(
            udp: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..24),
            edits in proptest::collection::vec((0usize..48, any::<u8>()), 0..4),
            cut in 0usize..80,
            padding in 0usize..4,
        ) {
            let mut packet = tcp_or_udp(udp, &payload);
            for (at, value) in edits {
                if let Some(byte) = packet.get_mut(at) {
                    *byte = value;
                }
            }
            packet.truncate(cut.max(1));
            packet.extend(std::iter::repeat_n(0, padding));
            if let Some(fast) = plain_ipv4::<Ipv4Addr>(&packet) {
                prop_assert_eq!(Ok(fast), parse_headers::<Ipv4Addr>(&packet));
            }
        }
    }

    #[test]
    fn plain_ipv4_packets_take_the_fixed_offset_reading() {
        for udp in [false, true] {
            let packet = tcp_or_udp(udp, b"payload");
            assert!(plain_ipv4::<Ipv4Addr>(&packet).is_some());
        }
    }
}
