//! Reading a packet's IP and transport headers once: a fixed-offset fast path for plain
//! IPv4 TCP/UDP, etherparse for everything else, and a quick unvalidated peek for prefetching.

use etherparse::err::{Layer, ip::HeadersError, ip::SliceError};
use etherparse::{IpSlice, TcpHeaderSlice, UdpHeaderSlice};

use super::{Fragment, ICMPV4, ICMPV6, Parsed, SCTP, TCP, Transport, UDP, read_u16};
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::verdict::DropReason;

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

/// Offset of `inner` inside `outer` (both borrowed from one buffer).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
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

/// Reads the IP and transport headers of `packet` (raw IP, family `A`).
#[inline]
pub(crate) fn parse<A: Addr>(packet: &[u8]) -> Result<Parsed<A>, DropReason> {
    match plain_ipv4::<A>(packet) {
        Some(parsed) => Ok(parsed),
        None => parse_headers(packet),
    }
}

/// The common case read at fixed offsets: an IPv4 packet without options, not a fragment,
/// carrying a well-formed TCP or UDP header. `None` for anything else, which
/// [`parse_headers`] (etherparse) reads instead; where both apply they agree (tested).
#[inline]
fn plain_ipv4<A: Addr>(packet: &[u8]) -> Option<Parsed<A>> {
    if A::LEN != 4 || packet.len() < 28 || packet[0] != 0x45 {
        return None;
    }
    let total = usize::from(read_u16(packet, 2));
    // More-fragments flag or a fragment offset: the general path handles fragments.
    let fragment_bits = read_u16(packet, 6) & 0x3fff;
    if total < 28 || total > packet.len() || fragment_bits != 0 {
        return None;
    }
    let protocol = packet[9];
    let l4 = &packet[20..total];
    let (sport, dport) = (read_u16(l4, 0), read_u16(l4, 2));
    let tcp_flags = match protocol {
        TCP => {
            let header_len = usize::from(*l4.get(12)? >> 4) * 4;
            if header_len < 20 || header_len > l4.len() {
                return None;
            }
            l4[13]
        }
        UDP => {
            let length = usize::from(read_u16(l4, 4));
            if !(8..=l4.len()).contains(&length) {
                return None;
            }
            0
        }
        _ => return None,
    };
    Some(Parsed {
        tuple: Tuple {
            src: A::read(&packet[12..]),
            dst: A::read(&packet[16..]),
            sport,
            dport,
            protocol,
        },
        l4_offset: 20,
        l4_len: l4.len(),
        transport: Transport::Ports,
        fragment: Fragment::Whole,
        fragment_id: 0,
        tcp_flags,
        sctp_chunk: 0,
    })
}

/// Reads the IP and transport headers of `packet` with etherparse, whatever they hold.
fn parse_headers<A: Addr>(packet: &[u8]) -> Result<Parsed<A>, DropReason> {
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
        l4_offset,
        l4_len: l4.len(),
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
        return Ok(parsed);
    }
    let truncated_header = |fragment| match fragment {
        Fragment::First => DropReason::Fragment,
        _ => DropReason::MalformedTransportHeader,
    };
    match protocol {
        TCP => {
            let tcp = TcpHeaderSlice::from_slice(l4).map_err(|_| truncated_header(fragment))?;
            parsed.tuple.sport = tcp.source_port();
            parsed.tuple.dport = tcp.destination_port();
            parsed.tcp_flags = l4[13];
            parsed.transport = Transport::Ports;
        }
        UDP => {
            let udp = UdpHeaderSlice::from_slice(l4).map_err(|_| truncated_header(fragment))?;
            let length = usize::from(udp.length());
            if fragment == Fragment::Whole && !(8..=l4.len()).contains(&length) {
                return Err(DropReason::MalformedTransportHeader);
            }
            parsed.tuple.sport = udp.source_port();
            parsed.tuple.dport = udp.destination_port();
            parsed.transport = Transport::Ports;
        }
        SCTP => {
            // The CRC32c covers the whole packet: a fragment cannot be re-checksummed.
            if fragment != Fragment::Whole {
                return Err(DropReason::Fragment);
            }
            if l4.len() < 12 {
                return Err(DropReason::MalformedTransportHeader);
            }
            parsed.tuple.sport = u16::from_be_bytes([l4[0], l4[1]]);
            parsed.tuple.dport = u16::from_be_bytes([l4[2], l4[3]]);
            parsed.sctp_chunk = l4.get(12).copied().unwrap_or(0);
            parsed.transport = Transport::Ports;
        }
        ICMPV4 | ICMPV6 if A::LEN == if protocol == ICMPV4 { 4 } else { 16 } => {
            if l4.len() < 8 {
                return Err(DropReason::MalformedTransportHeader);
            }
            let icmp_type = l4[0];
            if is_echo_request(protocol, icmp_type) {
                parsed.tuple.sport = u16::from_be_bytes([l4[4], l4[5]]);
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
    Ok(parsed)
}

/// The tuple of a TCP/UDP/SCTP packet from a quick look at fixed offsets (IPv4 with any
/// IHL, IPv6 without extension headers), without validation: for prefetching only.
#[inline]
pub(crate) fn peek_tuple<A: Addr>(packet: &[u8]) -> Option<Tuple<A>> {
    let (protocol, l4, src, dst) = if A::LEN == 4 {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        (*packet.get(9)?, ihl, 12, 16)
    } else {
        (*packet.get(6)?, 40, 8, 24)
    };
    if !matches!(protocol, TCP | UDP | SCTP) || packet.len() < l4 + 4 || packet.len() < dst + A::LEN
    {
        return None;
    }
    Some(Tuple {
        src: A::read(&packet[src..]),
        dst: A::read(&packet[dst..]),
        sport: read_u16(packet, l4),
        dport: read_u16(packet, l4 + 2),
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
