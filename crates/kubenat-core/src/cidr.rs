//! CIDR membership as the engine asks it (pod sources, NodePort addresses, Service CIDRs,
//! load-balancer source ranges): one mask and one compare.
//!
//! `IpNet::contains` computes the network's first and last addresses from its prefix length
//! on every call (about forty instructions for IPv4); a new connection asks for each
//! cluster CIDR, to tell pod sources from outside ones.

use std::net::IpAddr;

use crate::model::IpNet;

/// Whether `ip` is inside `net`; an address of the other family never is.
#[inline]
pub(crate) fn contains(net: &IpNet, ip: IpAddr) -> bool {
    same_family_contains(net, ip) == Some(true)
}

/// Whether `ip` is inside `net`, or `None` when they are of different families.
#[inline]
pub(crate) fn same_family_contains(net: &IpNet, ip: IpAddr) -> Option<bool> {
    match (net, ip) {
        (IpNet::V4(net), IpAddr::V4(ip)) => {
            // Shifted in 64 bits, a /0 shifts all 32 mask bits out: no bit is compared.
            let mask = (u64::MAX << (32 - u32::from(net.prefix_len()))) as u32;
            Some((ip.to_bits() ^ net.addr().to_bits()) & mask == 0)
        }
        (IpNet::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(net.prefix_len()))
                .unwrap_or(0);
            Some((ip.to_bits() ^ net.addr().to_bits()) & mask == 0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// An address near `base`: the same high bits more often than chance, so that both
    /// answers come up for every prefix length.
    fn near<const BITS: u32>(base: u128, flip: u8) -> u128 {
        let flip = u32::from(flip) % (BITS + 1);
        match flip {
            0 => base,
            bit => base ^ (1u128 << (BITS - bit)),
        }
    }

    proptest! {
        /// The same answer as `ipnet`'s `contains`, for both families, every prefix length
        /// (host bits set in the network's address included), and mixed families.
        #[test]
        fn agrees_with_ipnet(
            net in any::<u128>(),
            len in 0u8..=128,
            flip in any::<u8>(),
            v6_net in any::<bool>(),
            v6_ip in any::<bool>(),
        ) {
            let net = match v6_net {
                false => IpNet::new(Ipv4Addr::from_bits(net as u32).into(), len % 33),
                true => IpNet::new(Ipv6Addr::from_bits(net).into(), len),
            }
            .expect("a valid prefix length");
            let base = match net.addr() {
                IpAddr::V4(a) => u128::from(a.to_bits()),
                IpAddr::V6(a) => a.to_bits(),
            };
            let ip: IpAddr = match v6_ip {
                false => Ipv4Addr::from_bits(near::<32>(base, flip) as u32).into(),
                true => Ipv6Addr::from_bits(near::<128>(base, flip)).into(),
            };
            prop_assert_eq!(contains(&net, ip), net.contains(&ip), "{} {}", net, ip);
        }
    }
}
