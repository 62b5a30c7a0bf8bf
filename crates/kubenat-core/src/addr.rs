//! The two address families behind one generic code path.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address of one family, as conntrack and the rewrite path store it.
///
/// Sealed: implemented for [`Ipv4Addr`] and [`Ipv6Addr`] only, so its methods can change
/// without breaking anyone.
pub trait Addr: sealed::Sealed + Copy + Eq + Hash + Debug + Into<IpAddr> + Send + 'static {
    /// Bytes on the wire.
    const LEN: usize;
    /// The address if `ip` is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// The address stored at the start of `bytes` (at least [`Addr::LEN`] long).
    fn read(bytes: &[u8]) -> Self;
    /// Writes the address to the start of `bytes`.
    fn write(self, bytes: &mut [u8]);
    /// The address folded into 64 bits, for hashing.
    fn fold(self) -> u64;
}

mod sealed {
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The private supertrait that keeps [`Addr`](super::Addr) to the two families; its
    /// methods serve the crate's checksum updates only.
    pub trait Sealed {
        /// The address's 32-bit words summed: what it adds to a one's-complement sum
        /// (2^16 is 1 modulo 0xffff, so a 32-bit word counts as its two 16-bit halves).
        fn word_sum(self) -> u64;
        /// The complements of its 32-bit words summed: what removing it from a sum adds
        /// (the ~m of RFC 1624).
        fn complement_word_sum(self) -> u64;
    }

    impl Sealed for Ipv4Addr {
        #[inline(always)]
        fn word_sum(self) -> u64 {
            u64::from(self.to_bits())
        }

        #[inline(always)]
        fn complement_word_sum(self) -> u64 {
            u64::from(!self.to_bits())
        }
    }

    impl Sealed for Ipv6Addr {
        #[inline(always)]
        fn word_sum(self) -> u64 {
            quad_sum(self.to_bits())
        }

        #[inline(always)]
        fn complement_word_sum(self) -> u64 {
            quad_sum(!self.to_bits())
        }
    }

    #[inline(always)]
    fn quad_sum(bits: u128) -> u64 {
        (0..4).map(|k| u64::from((bits >> (32 * k)) as u32)).sum()
    }
}

impl Addr for Ipv4Addr {
    const LEN: usize = 4;

    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    #[inline]
    fn read(bytes: &[u8]) -> Self {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
    }

    #[inline]
    fn write(self, bytes: &mut [u8]) {
        bytes[..4].copy_from_slice(&self.octets());
    }

    #[inline]
    fn fold(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Addr for Ipv6Addr {
    const LEN: usize = 16;

    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    #[inline]
    fn read(bytes: &[u8]) -> Self {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&bytes[..16]);
        Ipv6Addr::from(octets)
    }

    #[inline]
    fn write(self, bytes: &mut [u8]) {
        bytes[..16].copy_from_slice(&self.octets());
    }

    #[inline]
    fn fold(self) -> u64 {
        let bits = self.to_bits();
        (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29)
    }
}
