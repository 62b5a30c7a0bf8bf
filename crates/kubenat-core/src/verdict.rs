//! What the engine decided about a packet, and why.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where in the node's netfilter pipeline a packet is handed to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// A packet arriving at the node (from a pod or from the network): DNAT, conntrack,
    /// reverse NAT of replies.
    Prerouting,
    /// A packet the node itself sends: the same as arriving, with the node as source.
    Output,
    /// A packet leaving the node: source NAT (masquerade) of connections marked for it.
    Postrouting,
}

/// The 5-tuple of a packet as seen before or after translation (ports are ICMP echo ids
/// for ICMP, zero for protocols without ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// Source address and port.
    pub source: SocketAddr,
    /// Destination address and port.
    pub destination: SocketAddr,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = crate::model::Protocol::from_ip_number(self.protocol)
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| format!("proto {}", self.protocol));
        write!(f, "{proto} {} -> {}", self.source, self.destination)
    }
}

impl Flow {
    /// The 5-tuple of the raw IP packet `packet` (IPv4 or IPv6), as the engine reads it;
    /// `None` when it cannot be parsed. Copy a packet and read both to see what a
    /// translation changed; a trace reports it too ([`TraceStep::Rewritten`](crate::TraceStep)).
    pub fn of_packet(packet: &[u8]) -> Option<Flow> {
        match packet.first()? >> 4 {
            4 => crate::packet::parse::<Ipv4Addr, _>(packet)
                .ok()
                .map(|(_, p)| p.tuple.flow()),
            6 => crate::packet::parse::<Ipv6Addr, _>(packet)
                .ok()
                .map(|(_, p)| p.tuple.flow()),
            _ => None,
        }
    }
}

/// What a translation rewrote, in two bytes with the verdict: the packet holds the result.
/// The tuples before and after come through a trace
/// ([`TraceStep::Rewritten`](crate::TraceStep)) or [`Flow::of_packet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rewrite {
    bits: u8,
}

impl Rewrite {
    const DESTINATION: u8 = 1;
    const SOURCE: u8 = 2;
    const ICMP_ERROR: u8 = 4;

    /// A rewrite of the destination, the source, both or (neither) none.
    #[inline(always)]
    pub(crate) fn of_sides(destination: bool, source: bool) -> Rewrite {
        Rewrite {
            bits: u8::from(destination) * Rewrite::DESTINATION + u8::from(source) * Rewrite::SOURCE,
        }
    }

    /// Whether nothing was rewritten.
    #[inline(always)]
    pub(crate) fn is_none(self) -> bool {
        self.bits == 0
    }

    /// The same, for an ICMP error whose quoted packet was translated too.
    pub(crate) fn of_icmp_error(self) -> Rewrite {
        Rewrite {
            bits: self.bits | Rewrite::ICMP_ERROR,
        }
    }

    /// Everything either rewrite changed (one packet through two hooks).
    pub(crate) fn and(self, other: Rewrite) -> Rewrite {
        Rewrite {
            bits: self.bits | other.bits,
        }
    }

    /// The destination address or port was rewritten: DNAT, or a reply's source NAT undone.
    pub const fn destination(self) -> bool {
        self.bits & Rewrite::DESTINATION != 0
    }

    /// The source address or port was rewritten: masquerade, or a reply's DNAT undone.
    pub const fn source(self) -> bool {
        self.bits & Rewrite::SOURCE != 0
    }

    /// The packet was an ICMP error about a tracked connection; its quoted header was
    /// translated too (the flags describe its outer header).
    pub const fn icmp_error(self) -> bool {
        self.bits & Rewrite::ICMP_ERROR != 0
    }
}

/// The engine's decision for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Untouched: pass it on.
    Accept,
    /// Rewritten in place: pass it on.
    Translated(Rewrite),
    /// Discard it silently.
    Drop(DropReason),
    /// Discard it and send the sender the reply
    /// [`Engine::write_reject_reply`](crate::Engine::write_reject_reply) builds (ICMP port
    /// unreachable, as kube-proxy's `reject` does).
    Reject(RejectReason),
}

macro_rules! reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every reason, in counter order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Stable kebab-case name, used in counters, traces and JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

reasons! {
    /// Why a packet was dropped. Stable: counters and the CLI's JSON use these names.
    DropReason {
        /// Too short for the IP header it claims, or not IPv4/IPv6 at all.
        MalformedIpHeader => "malformed-ip-header",
        /// IPv6 extension header chain cut short or malformed.
        MalformedExtensionHeader => "malformed-extension-header",
        /// TCP/UDP/SCTP header cut short or with an impossible length.
        MalformedTransportHeader => "malformed-transport-header",
        /// An IPv4 header whose checksum is wrong, arriving: the kernel drops it on
        /// receive, before any netfilter hook (`ip_rcv`, counted as InCsumErrors).
        IpHeaderChecksum => "ip-header-checksum",
        /// A TCP, UDP, SCTP or ICMP packet arriving with a wrong checksum that nothing
        /// verified before ([`ChecksumStatus::Unverified`](crate::ChecksumStatus)):
        /// conntrack calls it INVALID (`nf_conntrack_checksum`), so it is never NATed and
        /// kube-proxy's rules drop it; it creates no connection and takes no turn.
        TransportChecksum => "transport-checksum",
        /// An ICMP error whose quoted packet cannot be parsed.
        MalformedIcmpError => "malformed-icmp-error",
        /// A fragment the engine cannot place: a later fragment whose first fragment was
        /// never seen (or expired), a first fragment too short for its ports, or any SCTP or
        /// ICMP-error fragment. netfilter reassembles; a per-packet engine never guesses.
        Fragment => "fragment",
        /// New flow while the conntrack table is full.
        ConntrackFull => "conntrack-full",
        /// Source outside the Service's loadBalancerSourceRanges.
        SourceRangeDenied => "source-range-denied",
        /// externalTrafficPolicy Local and no endpoint on this node (external source).
        NoLocalEndpoints => "no-local-endpoints",
        /// internalTrafficPolicy Local and no endpoint on this node.
        NoLocalInternalEndpoints => "no-local-internal-endpoints",
        /// nftables mode: an address in the service CIDRs that no Service owns.
        UnallocatedServiceIp => "unallocated-service-ip",
        /// Masquerade found no free source port towards this endpoint.
        MasqueradePortsExhausted => "masquerade-ports-exhausted",
        /// Masquerade needed but the node has no address of the packet's family.
        NoMasqueradeAddress => "no-masquerade-address",
        /// The translated connection's reply tuple belongs to another live connection.
        TupleClash => "tuple-clash",
    }
}

reasons! {
    /// Why a packet was rejected (answered with ICMP port unreachable).
    RejectReason {
        /// The Service has no usable endpoint anywhere.
        NoEndpoints => "no-endpoints",
        /// nftables mode: a cluster IP on a port (or protocol) the Service does not have.
        PortNotServed => "port-not-served",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_two_bytes() {
        assert!(size_of::<Verdict>() <= 16, "{}", size_of::<Verdict>());
        assert_eq!(size_of::<Verdict>(), 2);
    }
}
