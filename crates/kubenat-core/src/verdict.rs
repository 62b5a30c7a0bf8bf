//! What the engine decided about a packet, and why.

use std::fmt;
use std::net::SocketAddr;

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

/// What a translated packet looked like before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The packet's 5-tuple as it arrived.
    pub before: Flow,
    /// The packet's 5-tuple as it leaves (for an ICMP error, its outer header).
    pub after: Flow,
    /// The packet was an ICMP error about a tracked connection; its quoted header was
    /// translated too.
    pub icmp_error: bool,
}

/// The engine's decision for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Untouched: pass it on.
    Accept,
    /// Rewritten in place: pass it on.
    Translated(Translation),
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
