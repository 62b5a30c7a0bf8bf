//! Internet checksums: incremental update (RFC 1624) for the rewrite path, and a plain
//! one's-complement sum for the rare packets the engine builds or rewrites whole.

/// Folds a 32-bit one's-complement accumulator into 16 bits.
#[inline]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Adds the 16-bit words of `bytes` (big-endian, odd tail padded with zero) to `sum`.
#[inline]
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Keep room for further additions: fold back into 17 bits.
    (sum & 0xffff) + (sum >> 16)
}

/// RFC 1624 eqn. 3: the checksum after the covered bytes `old` became `new`
/// (same length, even, at an even offset): HC' = ~(~HC + ~m + m').
#[inline]
pub fn update(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut sum = u32::from(!checksum);
    let mut olds = old.chunks_exact(2);
    let mut news = new.chunks_exact(2);
    for (o, n) in (&mut olds).zip(&mut news) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(sum)
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

    proptest! {
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
