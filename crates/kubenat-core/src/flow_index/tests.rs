use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16),
    Remove(u16),
}

fn ops(len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => any::<u16>().prop_map(Op::Insert),
            1 => any::<u16>().prop_map(Op::Remove),
        ],
        0..len,
    )
}

/// A key's hash; `crowd` > 0 puts a third or more of the keys' signatures, and with
/// them their home buckets, into one quarter of the table, so home buckets overflow.
fn hash(k: u16, crowd: u64) -> u64 {
    let h = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    if crowd == 0 {
        h
    } else {
        ((u64::from(k) % (crowd * 3)) << 62) | (h >> 2)
    }
}

proptest! {
    /// The vector lane compare finds exactly the lanes the one-by-one compare finds, with
    /// signatures repeated across lanes, empty lanes, and an overflow count equal to the
    /// signature sought (which must never read as a lane).
    #[test]
    fn lanes_signed_agrees_with_one_by_one(
        signatures in proptest::array::uniform7(0u32..4),
        overflow in 0u32..4,
        sig in 0u32..4,
    ) {
        let bucket = Bucket { signatures, overflow, ..EMPTY_BUCKET };
        prop_assert_eq!(bucket.lanes_signed(sig), bucket.lanes_signed_one_by_one(sig));
    }

    /// The fixed index, half full at capacity, agrees with a HashMap model under any
    /// sequence of inserts and removes, including hashes crowded into few buckets.
    #[test]
    fn behaves_like_a_map(ops in ops(400), crowd in 0u64..4) {
        let mut index = FlowIndex::new(300);
        let mut model: HashMap<u16, u32> = HashMap::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(k) if !model.contains_key(&k) && model.len() < 300 => {
                    prop_assert!(index.insert(hash(k, crowd), n as u32));
                    model.insert(k, n as u32);
                }
                Op::Remove(k) => {
                    let expected = model.remove(&k);
                    let removed = expected.is_some_and(|v| index.remove(hash(k, crowd), v));
                    prop_assert_eq!(removed, expected.is_some());
                }
                _ => {}
            }
            for (&k, &v) in &model {
                prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
            }
        }
    }

    /// The growing index agrees with a HashMap model while it grows from its first
    /// kilobyte through several doublings (lookups reading both tables mid-move), and
    /// stops growing at its cap.
    #[test]
    fn grows_like_a_map(ops in ops(3000), crowd in 0u64..4, cap in 1usize..2000) {
        let mut index = GrowingIndex::new(cap);
        let mut model: HashMap<u16, u32> = HashMap::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(k) if !model.contains_key(&k) && model.len() < cap => {
                    prop_assert!(index.insert(hash(k, crowd), n as u32));
                    model.insert(k, n as u32);
                    prop_assert_eq!(index.find(hash(k, crowd), |x| x == n as u32), Some(n as u32));
                }
                Op::Remove(k) => {
                    let expected = model.remove(&k);
                    let removed = expected.is_some_and(|v| index.remove(hash(k, crowd), v));
                    prop_assert_eq!(removed, expected.is_some());
                    prop_assert_eq!(index.find(hash(k, crowd), |_| true).filter(|_| expected.is_some()), None);
                }
                _ => {}
            }
            prop_assert_eq!(index.keys, model.len());
            if n % 64 == 0 {
                for (&k, &v) in &model {
                    prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
                }
            }
        }
        for (&k, &v) in &model {
            prop_assert_eq!(index.find(hash(k, crowd), |x| x == v), Some(v));
        }
        // Never more than twice what the cap needs at half load (a move in progress).
        let full = FlowIndex::new(cap).bytes();
        prop_assert!(index.bytes() <= 2 * full + 16 * 64, "{} > {}", index.bytes(), full);
    }
}

/// A key hashed to home bucket 0 in every table size.
const SAME: u64 = 1 << 32;

/// An index whose home bucket 0 and every bucket within reach after it are full of
/// [`SAME`] keys (values 0..224), grown until it starts moving its old table by keys
/// homed far from bucket 0; gives every key stored, in order.
fn crowded_and_moving() -> (GrowingIndex, Vec<(u64, u32)>) {
    // Spread over the middle half of the signatures: homes far from bucket 0.
    let far = |k: u32| u64::from(0x4000_0000 + (k.wrapping_mul(0x9e37_79b9) >> 1)) << 32;
    let mut index = GrowingIndex::new(1 << 20);
    index.reserve(400);
    let mut stored: Vec<(u64, u32)> = Vec::new();
    for value in 0..224 {
        assert!(index.insert(SAME, value));
        stored.push((SAME, value));
    }
    let mut value = 1000;
    while !index.moving() {
        assert!(index.insert(far(value), value));
        stored.push((far(value), value));
        value += 1;
    }
    (index, stored)
}

#[test]
fn a_key_at_the_end_of_its_reach_is_found_until_its_bucket_is_moved() {
    // The last of the crowded keys sits 31 buckets after its home: a lookup may skip the
    // old table only once that bucket is moved, whatever moved before it.
    let (mut index, _) = crowded_and_moving();
    while index.moving() {
        index.move_buckets(1);
        for v in 0..224 {
            assert_eq!(index.find(SAME, |x| x == v), Some(v), "value {v}");
        }
    }
}

#[test]
fn a_move_that_finds_no_room_keeps_the_key() {
    // Once growth switches tables, more keys of the crowded home fill the new table's
    // neighbourhood before the old keys are moved, so some moves find no room.
    let (mut index, mut stored) = crowded_and_moving();
    for value in 2000..2050 {
        if index.insert(SAME, value) {
            stored.push((SAME, value));
        }
    }
    assert!(
        !index.spilled.is_empty(),
        "the last moves found the neighbourhood full"
    );
    assert_eq!(index.keys, stored.len());
    for &(hash, v) in &stored {
        assert_eq!(index.find(hash, |x| x == v), Some(v), "value {v}");
    }
    for &(hash, v) in &stored {
        assert!(index.remove(hash, v), "value {v}");
        assert_eq!(index.find(hash, |x| x == v), None);
    }
    assert_eq!(index.keys, 0);
}

#[test]
fn a_reserved_index_takes_its_keys_without_growing() {
    let mut index = GrowingIndex::new(10_000);
    index.insert(hash(1, 0), 1);
    index.reserve(5_000);
    let bytes = index.bytes();
    assert!(bytes >= FlowIndex::new(5_000).bytes(), "{bytes}");
    for k in 2..5_000u16 {
        assert!(index.insert(hash(k, 0), u32::from(k)));
    }
    assert_eq!(index.bytes(), bytes);
    assert!((1..5_000u16).all(|k| index.find(hash(k, 0), |v| v == u32::from(k)).is_some()));
}

#[test]
fn tiny_indexes_wrap_within_their_buckets() {
    // 2 buckets: probing past a full home bucket must wrap, not run off the end.
    let mut index = FlowIndex::new(4);
    let crowded = |k: u64| k << 40; // every key's home is bucket 0
    for k in 0..14 {
        assert!(index.insert(crowded(k), k as u32), "key {k}");
    }
    assert!(!index.insert(crowded(99), 99), "both buckets are full");
    for k in 0..14 {
        assert_eq!(index.find(crowded(k), |v| v == k as u32), Some(k as u32));
    }
    assert_eq!(index.find(crowded(99), |_| true).filter(|&v| v == 99), None);
}

#[test]
fn a_bucket_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Bucket>(), 64);
    assert_eq!(std::mem::align_of::<Bucket>(), 64);
}

/// Gives `index` the empty table of `buckets` a helper would fault in, and checks it is
/// taken.
fn supply_fresh(index: &mut GrowingIndex, buckets: usize) {
    let Ok(table) = fresh_table(buckets).downcast::<FlowIndex>() else {
        panic!("a table")
    };
    assert!(index.supply(*table).is_ok());
}

/// Offloaded, an index asks for its next table as soon as it is an eighth full and, until
/// the table comes, waits to grow (up to three eighths full) rather than clear one of its
/// own; the table supplied, the next insert grows into it.
#[test]
fn an_offloaded_index_waits_for_its_next_table() {
    let mut index = GrowingIndex::new(1 << 20);
    index.offload(0);
    let waits_up_to = growing::FIRST_LANES / 8 * 3;
    let mut asked = None;
    for k in 0..waits_up_to as u16 {
        assert!(index.insert(hash(k, 0), u32::from(k)));
        asked = asked.or_else(|| index.wanted());
        assert!(!index.clearing_its_own() && !index.moving(), "key {k}");
    }
    let buckets = asked.expect("the next table is asked for");
    supply_fresh(&mut index, buckets);
    assert!(index.insert(hash(999, 0), 999));
    assert!(
        index.moving() && !index.clearing_its_own(),
        "grown into the table supplied"
    );
    for k in (0..waits_up_to as u16).chain([999]) {
        assert_eq!(
            index.find(hash(k, 0), |v| v == u32::from(k)),
            Some(u32::from(k))
        );
    }
}

/// Offloaded with room for a first set of keys, an index asks for that table at once and
/// switches to it when it comes: those keys then go in without a table of its own, and it
/// asks for the next growth's only once they are half in.
#[test]
fn an_offloaded_index_asks_at_once_for_room_for_its_first_keys() {
    let first = 4_096;
    let mut index = GrowingIndex::new(1 << 20);
    index.offload(first);
    let buckets = index.wanted().expect("asked at once, before any key");
    assert_eq!(buckets, (4 * first).div_ceil(LANES));
    assert_eq!(index.wanted(), None, "asked once");
    supply_fresh(&mut index, buckets);
    assert_eq!(index.buckets(), buckets, "switched to it at once");
    let mut next_asked_at = None;
    for k in 0..first as u16 {
        assert!(index.insert(hash(k, 0), u32::from(k)));
        assert!(!index.clearing_its_own(), "key {k}");
        if next_asked_at.is_none() && index.wanted().is_some() {
            next_asked_at = Some(usize::from(k) + 1);
        }
    }
    assert_eq!(index.own_tables(), 0);
    assert_eq!(next_asked_at, Some(first / 2));
    for k in 0..first as u16 {
        assert_eq!(
            index.find(hash(k, 0), |v| v == u32::from(k)),
            Some(u32::from(k))
        );
    }
}

/// A first table near the cap, or past it, is the cap's: asked once, and never a growth
/// after (as for a growth, no small last step).
#[test]
fn an_offloaded_index_of_few_keys_asks_for_its_whole_table_first() {
    // (max keys, first keys): the first table would be 16,384 lanes
    for (cap, first) in [(300, 4_096), (4_096, 4_096), (8_191, 4_096)] {
        let mut index = GrowingIndex::new(cap);
        index.offload(first);
        let buckets = index.wanted().expect("asked at once");
        assert_eq!(buckets, (2 * cap).div_ceil(LANES), "cap {cap}");
        supply_fresh(&mut index, buckets);
        for k in 0..cap as u16 {
            assert!(index.insert(hash(k, 0), u32::from(k)));
            assert_eq!(index.wanted(), None, "cap {cap}, key {k}");
        }
        assert_eq!(
            (index.buckets(), index.own_tables()),
            (buckets, 0),
            "cap {cap}"
        );
    }
}

/// Every growth at least doubles the table: the last one goes to the cap at once rather
/// than to twice the size and then a few percent more (which would move every key again).
#[test]
fn growth_to_the_cap_skips_a_small_last_step() {
    // The cap's 1,126 buckets are 10 % past 1,024, a doubling's size.
    let cap = 1_126 * LANES / 2;
    let mut index = GrowingIndex::new(cap);
    let mut sizes = vec![index.buckets()];
    for k in 0..cap as u32 {
        assert!(index.insert(u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15), k));
        if *sizes.last().unwrap() != index.buckets() {
            sizes.push(index.buckets());
        }
    }
    assert_eq!(sizes.last(), Some(&1_126), "{sizes:?}");
    assert!(sizes.windows(2).all(|w| w[1] >= 2 * w[0]), "{sizes:?}");
}
