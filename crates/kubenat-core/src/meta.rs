//! What travels with one packet from hook to hook, owned by the caller: the kernel keeps
//! it in the packet's `sk_buff` (`skb->ct`, `skb->ip_summed`), so no state is left in the
//! engine between calls.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet;

/// How far a packet's transport checksum can be trusted, as the kernel's `ip_summed`
/// says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChecksumStatus {
    /// Nothing vouches for it (`CHECKSUM_NONE`): PREROUTING verifies the TCP, UDP, SCTP
    /// or ICMP checksum, as conntrack does with `nf_conntrack_checksum` on, and a packet
    /// whose checksum is wrong is dropped as invalid before it can create a connection.
    #[default]
    Unverified,
    /// The NIC (or whoever hands the packet over) verified it (`CHECKSUM_UNNECESSARY`):
    /// not verified again.
    Verified,
    /// The checksum is still to be computed (`CHECKSUM_PARTIAL`, as on a veth or a TUN
    /// with offloads on): the field holds the pseudo-header sum, not the checksum. It is
    /// not verified, and rewrites update that sum for the addresses only, as the kernel's
    /// `inet_proto_csum_replace*` do (the ports are summed with the data later).
    Partial,
}

/// The connection the arriving hook gave the packet, for POSTROUTING.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Connection {
    /// The packet has not been through PREROUTING or OUTPUT with this metadata:
    /// POSTROUTING finds its connection by its tuple.
    #[default]
    Unknown,
    /// The arriving hook left nothing to masquerade (untracked, invalid, a reply, or a
    /// connection not marked for masquerade).
    NotMasqueraded,
    /// The conntrack entry `index` of the packet's family, marked for masquerade.
    Masqueraded { v6: bool, index: u32 },
}

impl Connection {
    /// The conntrack entry `index` of family `A`, marked for masquerade.
    pub(crate) fn masqueraded<A: crate::addr::Addr>(index: u32) -> Self {
        Connection::Masqueraded {
            v6: A::LEN == 16,
            index,
        }
    }
}

/// Per-packet metadata: one per packet, reset ([`PacketMeta::default`] or
/// [`PacketMeta::new`]) for each new one, and passed to every hook that packet goes
/// through, so POSTROUTING knows the connection PREROUTING gave it even when two
/// connections leave DNAT with the same tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    checksum: ChecksumStatus,
    pub(crate) connection: Connection,
}

impl PacketMeta {
    /// Metadata for a packet arriving with this checksum status.
    pub const fn new(checksum: ChecksumStatus) -> Self {
        PacketMeta {
            checksum,
            connection: Connection::Unknown,
        }
    }

    /// Metadata for a packet read from a capture (raw IP): `Partial` when its TCP or UDP
    /// checksum field holds just the pseudo-header sum, as captures taken on the sending
    /// host or on a veth with offloads show checksums the NIC was to complete; else
    /// `Unverified`.
    pub fn from_capture(packet: &[u8]) -> Self {
        let partial = match packet.first().map(|b| b >> 4) {
            Some(4) => packet::holds_pseudo_header_sum::<Ipv4Addr>(packet),
            Some(6) => packet::holds_pseudo_header_sum::<Ipv6Addr>(packet),
            _ => false,
        };
        PacketMeta::new(match partial {
            true => ChecksumStatus::Partial,
            false => ChecksumStatus::Unverified,
        })
    }

    /// How far the packet's transport checksum can be trusted.
    pub const fn checksum(&self) -> ChecksumStatus {
        self.checksum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_small() {
        assert!(size_of::<PacketMeta>() <= 12, "{}", size_of::<PacketMeta>());
    }
}
