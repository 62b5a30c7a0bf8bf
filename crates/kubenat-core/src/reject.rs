//! The reply a rejected packet's sender gets: ICMP (or ICMPv6) port unreachable, quoting as
//! much of the packet as Linux does, which is what kube-proxy's `reject` makes the kernel
//! send for TCP, UDP and SCTP alike.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Icmpv4Type, Icmpv6Type, IpHeaders};
use etherparse::{IpDscp, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, icmpv4, icmpv6};

use crate::addr::Addr;
use crate::wire::IpHeader;

/// Linux bounds an ICMPv4 error to 576 bytes (RFC 1812) and an ICMPv6 error to the IPv6
/// minimum MTU, 1280: a buffer this long always holds the reply.
pub const MAX_REPLY_LEN: usize = 1280;
const IPV4_ERROR_LIMIT: usize = 576;
const IPV6_ERROR_LIMIT: usize = 1280;
/// Linux sends ICMP errors with precedence "internetwork control".
const IPTOS_PREC_INTERNETCONTROL_DSCP: u8 = 0xc0 >> 2;
const DEFAULT_TTL: u8 = 64;

/// Why no reply could be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The rejected packet is not an IP packet with a readable header.
    NotIp,
    /// `out` is shorter than the reply.
    BufferTooSmall,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyError::NotIp => "the rejected packet has no readable IP header",
            ReplyError::BufferTooSmall => "the reply buffer is too small",
        })
    }
}

impl std::error::Error for ReplyError {}

/// Writes into `out` the ICMP port-unreachable reply to `rejected` (raw IP), sent from
/// `source` back to the rejected packet's source. Returns the reply's length.
pub fn write_port_unreachable(
    rejected: &[u8],
    source: IpAddr,
    out: &mut [u8],
) -> Result<usize, ReplyError> {
    let version = rejected.first().map(|b| b >> 4);
    let written = match (version, source) {
        (Some(4), IpAddr::V4(source)) if let Some(header) = fixed_header::<Ipv4Addr>(rejected) => {
            let quoted = quote(rejected, header.datagram_len(), IPV4_ERROR_LIMIT - 28);
            let mut ip = Ipv4Header::new(
                0,
                DEFAULT_TTL,
                IpNumber::ICMP,
                source.octets(),
                header.src().octets(),
            )
            .map_err(|_| ReplyError::NotIp)?;
            ip.dscp = IpDscp::try_new(IPTOS_PREC_INTERNETCONTROL_DSCP).unwrap_or(IpDscp::ZERO);
            PacketBuilder::ip(IpHeaders::Ipv4(ip, Default::default()))
                .icmpv4(Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::Port,
                ))
                .write_to_slice(out, quoted)
        }
        (Some(6), IpAddr::V6(source)) if let Some(header) = fixed_header::<Ipv6Addr>(rejected) => {
            let quoted = quote(rejected, header.datagram_len(), IPV6_ERROR_LIMIT - 48);
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: IpNumber::IPV6_ICMP,
                hop_limit: DEFAULT_TTL,
                source: source.octets(),
                destination: header.src().octets(),
            };
            PacketBuilder::ip(IpHeaders::Ipv6(ip, Default::default()))
                .icmpv6(Icmpv6Type::DestinationUnreachable(
                    icmpv6::DestUnreachableCode::Port,
                ))
                .write_to_slice(out, quoted)
        }
        _ => return Err(ReplyError::NotIp),
    };
    written.map_err(|_| ReplyError::BufferTooSmall)
}

/// The leading bytes of `packet` an error quotes: the datagram (not any capture padding
/// after it), cut to `room`.
fn quote(packet: &[u8], ip_length: usize, room: usize) -> &[u8] {
    &packet[..packet.len().min(ip_length).min(room)]
}

/// The rejected packet's fixed IP header, as far as the reply needs it (its version, checked
/// by the caller, and its length; not its options).
fn fixed_header<A: Addr>(rejected: &[u8]) -> Option<IpHeader<A, &[u8]>> {
    (rejected.len() >= IpHeader::<A, &[u8]>::FIXED_LEN).then(|| IpHeader::new_unchecked(rejected))
}
