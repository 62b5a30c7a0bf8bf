//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), as Katran and Cilium use it.
//!
//! Each endpoint fills the lookup table following its own permutation of the slots, taking
//! turns, so every endpoint owns nearly `size / n` slots and removing one endpoint moves
//! only the flows that were on it (and a few others).

use std::net::SocketAddr;

use ahash::RandomState;

use crate::categorize::Endpoints;

/// The smallest prime at or above `n` (at least 2): Maglev's table size must be prime so
/// every endpoint's skip is coprime with it and its permutation visits every slot.
pub fn table_size(n: u32) -> u32 {
    let is_prime = |k: u32| k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| k % d != 0);
    (n.max(2)..=u32::MAX)
        .find(|&k| is_prime(k))
        .unwrap_or(4_294_967_291)
}

/// Builds a Maglev table of [`table_size`]`(size)` slots over `endpoints`; each slot holds
/// an index into `endpoints`. Empty when there is no endpoint.
pub fn build_table(endpoints: Endpoints<'_>, size: u32, seed: u64) -> Box<[u32]> {
    if endpoints.is_empty() {
        return Box::default();
    }
    let size = table_size(size);
    let m = u64::from(size);
    let offset_hash = RandomState::with_seeds(seed, 0x6d61_676c, 0x6576_3031, 1);
    let skip_hash = RandomState::with_seeds(seed, 0x736b_6970, 0x6576_3032, 2);
    let mut permutation: Vec<(u64, u64)> = endpoints
        .iter()
        .map(|e: SocketAddr| {
            let offset = offset_hash.hash_one(e) % m;
            let skip = skip_hash.hash_one(e) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    const EMPTY: u32 = u32::MAX;
    let mut table = vec![EMPTY; size as usize].into_boxed_slice();
    let mut next = vec![0u64; endpoints.len()];
    let mut filled = 0u64;
    'fill: loop {
        for (i, (offset, skip)) in permutation.iter_mut().enumerate() {
            let mut slot = (*offset + next[i] * *skip) % m;
            while table[slot as usize] != EMPTY {
                next[i] += 1;
                slot = (*offset + next[i] * *skip) % m;
            }
            table[slot as usize] = i as u32;
            next[i] += 1;
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::categorize::EndpointList;

    fn endpoints(n: usize) -> EndpointList {
        EndpointList::new(
            (0..n).map(|i| SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8], 80))),
        )
    }

    #[test]
    fn every_endpoint_gets_a_near_equal_share() {
        let eps = endpoints(7);
        let table = build_table(eps.view(), 65_537, 1);
        let mut counts = [0usize; 7];
        for &slot in table.iter() {
            counts[slot as usize] += 1;
        }
        let ideal = 65_537 / 7;
        for c in counts {
            assert!(c.abs_diff(ideal) <= ideal / 50, "{counts:?}");
        }
    }

    #[test]
    fn removing_one_endpoint_moves_few_other_slots() {
        let eps = endpoints(10);
        let before = build_table(eps.view(), 65_537, 1);
        let after = build_table(endpoints(9).view(), 65_537, 1);
        let moved_elsewhere = before
            .iter()
            .zip(after.iter())
            .filter(|&(&b, &a)| b != 9 && a != b)
            .count();
        // Maglev bounds disruption; a naive modulo hash would move ~90% of slots.
        assert!(moved_elsewhere < 65_537 / 10, "{moved_elsewhere}");
    }

    #[test]
    fn sizes_are_rounded_up_to_a_prime() {
        assert_eq!(table_size(0), 2);
        assert_eq!(table_size(4), 5);
        assert_eq!(table_size(65_536), 65_537);
        assert_eq!(table_size(65_537), 65_537);
        // A composite size would let a permutation cycle over full slots forever.
        assert_eq!(build_table(endpoints(3).view(), 4, 1).len(), 5);
    }

    #[test]
    fn no_endpoints_gives_an_empty_table() {
        assert!(build_table(Endpoints::default(), 65_537, 1).is_empty());
    }
}
