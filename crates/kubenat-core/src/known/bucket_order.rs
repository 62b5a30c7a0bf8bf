//! A full build's order of inserts into a hash table: by the bucket each key's hash starts
//! at, so each insert touches memory next to the last one's.

/// `entries` ordered by the top (at most 16) bits of the bucket their hash starts at,
/// `hash & mask`: a counting sort in two passes, about a tenth of a comparison sort's
/// work, and order enough for consecutive inserts to touch neighbouring memory (a group
/// spans a few dozen buckets at a million names).
pub(super) fn by_bucket(entries: &[(u64, u32)], mask: u64) -> Vec<(u64, u32)> {
    let bits = u64::BITS - mask.leading_zeros();
    let group_bits = bits.min(16);
    let shift = bits - group_bits;
    let group = |hash: u64| ((hash & mask) >> shift) as usize;
    let mut next = vec![0u32; (1 << group_bits) + 1];
    for &(hash, _) in entries {
        next[group(hash) + 1] += 1;
    }
    for g in 1..next.len() {
        next[g] += next[g - 1];
    }
    let mut sorted = vec![(0, 0); entries.len()];
    for &entry in entries {
        let at = &mut next[group(entry.0)];
        sorted[*at as usize] = entry;
        *at += 1;
    }
    sorted
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The entries come out all there, each once, in the order of their bucket's
        /// group, for tables of one bucket to millions.
        #[test]
        fn every_entry_in_bucket_order(
            hashes in proptest::collection::vec(any::<u64>(), 0..400),
            mask_bits in 0u32..24,
        ) {
            let mask = (1u64 << mask_bits) - 1;
            let entries: Vec<(u64, u32)> =
                hashes.iter().enumerate().map(|(slot, &hash)| (hash, slot as u32)).collect();
            let sorted = by_bucket(&entries, mask);
            let mut slots: Vec<u32> = sorted.iter().map(|&(_, slot)| slot).collect();
            slots.sort_unstable();
            prop_assert_eq!(slots, (0..entries.len() as u32).collect::<Vec<_>>());
            prop_assert!(sorted.iter().all(|&(hash, slot)| entries[slot as usize].0 == hash));
            // Groups of at most 16 bits: below that, exactly the bucket order.
            let shift = mask_bits.saturating_sub(16);
            let groups: Vec<u64> = sorted.iter().map(|&(hash, _)| (hash & mask) >> shift).collect();
            prop_assert!(groups.windows(2).all(|pair| pair[0] <= pair[1]));
        }
    }
}
