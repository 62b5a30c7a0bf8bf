//! Internet checksums: incremental update (RFC 1624) for the rewrite path, and a plain
//! one's-complement sum for the rare packets the engine builds or rewrites whole.

/// Folds a 32-bit one's-complement accumulator into 16 bits.
#[inline]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Whether an IPv4 header's checksum is right. A header without options (20 bytes, nearly
/// every one) is summed as two 64-bit words and a 32-bit one, in the machine's byte order:
/// every arriving packet pays this. A one's-complement sum of byte-swapped words is the
/// byte-swapped sum, and a valid header sums to all ones either way.
#[inline]
pub fn ipv4_header_is_valid(header: &[u8]) -> bool {
    let Ok(h) = <&[u8; 20]>::try_from(header) else {
        return is_valid(0, header);
    };
    let [a, b, c] = [&h[0..8], &h[8..16], &h[16..20]];
    let a = u64::from_ne_bytes(a.try_into().expect("8 bytes"));
    let b = u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let c = u64::from(u32::from_ne_bytes(c.try_into().expect("4 bytes")));
    // One's-complement addition: each carry out comes back in at the bottom.
    let (sum, carry) = a.overflowing_add(b);
    let (sum, carry_again) = (sum + u64::from(carry)).overflowing_add(c);
    let sum = sum + u64::from(carry_again);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    fold(sum as u32) == 0xffff
}

/// A one's-complement sum (such as [`pseudo_header_sum`]'s) folded to 16 bits, not
/// complemented: what a partial checksum field holds (CHECKSUM_PARTIAL).
pub fn fold_sum(sum: u32) -> u16 {
    fold(sum)
}

/// Adds the 16-bit words of `bytes` (big-endian, odd tail padded with zero) to `sum`;
/// the result fits in 17 bits. Sums 32-bit words into a 64-bit accumulator, which folds
/// to the same one's-complement sum (2^16 is 1 modulo 0xffff) in half the additions:
/// verifying a whole packet's checksum walks every byte of it.
#[inline]
fn add_words(sum: u32, bytes: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut quads = bytes.chunks_exact(4);
    for quad in &mut quads {
        acc += u64::from(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]));
    }
    let mut pairs = quads.remainder().chunks_exact(2);
    for pair in &mut pairs {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = acc as u32;
    // Keep room for further additions: fold back into 17 bits.
    (acc & 0xffff) + (acc >> 16)
}

/// RFC 1624 eqn. 3: the checksum after the covered bytes `old` became `new`
/// (same length, even, at an even offset): HC' = ~(~HC + ~m + m').
#[inline]
pub fn update(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    apply_difference(checksum, difference(old, new))
}

/// The ~m + m' part of RFC 1624 eqn. 3 for covered bytes `old` that became `new`, unfolded:
/// computed once, it updates every checksum that covers those bytes (the IPv4 header's and
/// the transport's pseudo-header) with [`apply_difference`]. Sums of up to 64 bytes fit.
#[inline]
pub(crate) fn difference(old: &[u8], new: &[u8]) -> u32 {
    debug_assert_eq!(old.len(), new.len());
    let mut sum = 0;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    sum
}

/// The ~m + m' of RFC 1624 for covered 32-bit words whose complements (`removed`) and new
/// values (`added`) the caller summed in 64 bits, folded so that [`apply_difference`]
/// takes it. A sum of 32-bit words folds to the same one's-complement sum as their 16-bit
/// halves; up to 2^32 words fit.
#[inline(always)]
pub(crate) fn word_difference(removed: u64, added: u64) -> u32 {
    let sum = removed + added;
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = sum as u32;
    (sum & 0xffff) + (sum >> 16)
}

/// What rewriting a packet's addresses and ports does to the checksums covering them: RFC
/// 1624's ~m + m' folded to 16 bits, for the addresses (which the IPv4 header and the
/// transport pseudo-header share) and for the ports. A tracked connection keeps one per
/// direction, computed once, so an established packet's rewrite reads none of the old
/// values back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TupleChange {
    pub(crate) addresses: u16,
    pub(crate) ports: u16,
}

impl TupleChange {
    /// The addresses' part, from the complements of the old 32-bit words summed
    /// (`removed`) and the new words summed (`added`).
    #[inline(always)]
    pub(crate) fn of_addresses(removed: u64, added: u64) -> u16 {
        fold(word_difference(removed, added))
    }

    /// The change that undoes this one. Complementing negates in one's complement;
    /// a zero becomes 0xffff, the form [`TupleChange::of_addresses`] and
    /// [`TupleChange::of_ports`] give, so a checksum comes out the same either way.
    #[inline(always)]
    pub(crate) fn undone(self) -> TupleChange {
        let negated = |part: u16| match !part {
            0 => 0xffff,
            negated => negated,
        };
        TupleChange {
            addresses: negated(self.addresses),
            ports: negated(self.ports),
        }
    }

    /// The ports' part, from the (source, destination) pair before and after.
    #[inline(always)]
    pub(crate) fn of_ports(old: (u16, u16), new: (u16, u16)) -> u16 {
        let word = |(src, dst): (u16, u16)| (u32::from(src) << 16) | u32::from(dst);
        fold(word_difference(u64::from(!word(old)), u64::from(word(new))))
    }
}

/// The checksum after its covered bytes changed by `difference` (from [`difference`], or
/// the sum of several).
#[inline]
pub(crate) fn apply_difference(checksum: u16, difference: u32) -> u16 {
    !fold(u32::from(!checksum) + difference)
}

/// The checksum after one 16-bit word changed from `old` to `new`.
#[inline]
pub fn update_word(checksum: u16, old: u16, new: u16) -> u16 {
    update(checksum, &old.to_be_bytes(), &new.to_be_bytes())
}

/// The Internet checksum of `bytes` preceded by the words already summed in `initial`.
pub fn compute(initial: u32, bytes: &[u8]) -> u16 {
    !fold(add_words(initial, bytes))
}

/// Whether `bytes`, checksum field included, sum to a valid Internet checksum (an IPv4
/// header, an ICMPv4 message, or a transport segment after its pseudo-header sum).
pub fn is_valid(initial: u32, bytes: &[u8]) -> bool {
    compute(initial, bytes) == 0
}

/// The one's-complement sum of a TCP/UDP/ICMPv6 pseudo-header (RFC 768, RFC 8200 §8.1),
/// to pass to [`compute`] as `initial`.
pub fn pseudo_header_sum(source: &[u8], destination: &[u8], protocol: u8, length: u32) -> u32 {
    let mut sum = add_words(0, source);
    sum = add_words(sum, destination);
    sum += u32::from(protocol);
    sum += length >> 16;
    sum += length & 0xffff;
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The 16-bit words one by one: what [`add_words`] must agree with.
    fn add_words_naive(mut sum: u32, bytes: &[u8]) -> u32 {
        for pair in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while sum > 0x1_ffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum
    }

    proptest! {
        /// The 20-byte fast path agrees with the general sum, on headers with a right
        /// checksum (set here, then maybe spoiled by one flipped bit) and random ones.
        #[test]
        fn ipv4_header_fast_path_agrees(
            mut header in any::<[u8; 20]>(),
            set in any::<bool>(),
            flip in proptest::option::of((0..20usize, 0..8u8)),
        ) {
            if set {
                header[10..12].fill(0);
                let checksum = compute(0, &header);
                header[10..12].copy_from_slice(&checksum.to_be_bytes());
                prop_assert!(ipv4_header_is_valid(&header));
            }
            if let Some((byte, bit)) = flip {
                header[byte] ^= 1 << bit;
            }
            prop_assert_eq!(ipv4_header_is_valid(&header), is_valid(0, &header));
        }

        /// Summing 32-bit words folds to the sum of the 16-bit words.
        #[test]
        fn word_sums_agree(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            initial in 0u32..0x1_ffff,
        ) {
            prop_assert_eq!(fold(add_words(initial, &data)), fold(add_words_naive(initial, &data)));
        }

        /// Incremental update equals recomputation, for any data and any rewrite.
        #[test]
        fn update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..64),
            at in 0usize..32,
            new in any::<[u8; 4]>(),
        ) {
            if data.len() % 2 == 1 { data.push(0); }
            let at = (at * 2) % data.len();
            let end = (at + 4).min(data.len());
            let before = compute(0, &data);
            let old = data[at..end].to_vec();
            data[at..end].copy_from_slice(&new[..end - at]);
            let incremental = update(before, &old, &data[at..end]);
            let full = compute(0, &data);
            // 0x0000 and 0xffff are the same value in one's complement.
            prop_assert!(incremental == full || (incremental ^ full) == 0xffff && (full == 0 || full == 0xffff));
        }
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The example header from RFC 1071-era textbooks (checksum field zeroed): 0xb861.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(compute(0, &header), 0xb861);
    }
}
