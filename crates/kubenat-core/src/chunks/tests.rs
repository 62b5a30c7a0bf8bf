use std::ptr::NonNull;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::spares::SPARES;
use super::*;

/// Runs `check` with leaves of 1, 2, 4 or 8 items, as `leaf_bits` says.
macro_rules! with_leaf {
    ($leaf_bits:expr, $check:ident($($arg:expr),*)) => {
        match $leaf_bits {
            0 => $check::<1>($($arg),*),
            1 => $check::<2>($($arg),*),
            2 => $check::<4>($($arg),*),
            _ => $check::<8>($($arg),*),
        }
    };
}

fn behaves_like_a_vec<const LEAF: usize>(
    writes: &[(usize, u32)],
    snapshot_at: usize,
) -> Result<(), TestCaseError> {
    let mut chunks = Chunks::<u32, LEAF>::new(7);
    let mut model: Vec<u32> = Vec::new();
    let mut snapshot = None;
    for (n, &(index, value)) in writes.iter().enumerate() {
        if n == snapshot_at {
            snapshot = Some((chunks.snapshot(), model.clone()));
        }
        chunks.set(index, value);
        if model.len() <= index {
            model.resize(index + 1, 7);
        }
        model[index] = value;
        prop_assert_eq!(chunks.len(), model.len());
    }
    prop_assert_eq!(chunks.iter().copied().collect::<Vec<_>>(), model.clone());
    prop_assert_eq!(*chunks.get(model.len() + 5), 7);
    if let Some((old, seen)) = snapshot {
        prop_assert_eq!(old.iter().copied().collect::<Vec<_>>(), seen);
    }
    Ok(())
}

fn built_is_written<const LEAF: usize>(
    items: &[u32],
    writes: &[(usize, u32)],
) -> Result<(), TestCaseError> {
    let mut built = Chunks::<u32, LEAF>::from_items(7, items.iter().copied());
    let mut written = Chunks::<u32, LEAF>::new(7);
    for (index, &item) in items.iter().enumerate() {
        written.set(index, item);
    }
    prop_assert_eq!(built.iter().copied().collect::<Vec<_>>(), items.to_vec());
    prop_assert_eq!(built.depth, written.depth);
    prop_assert_eq!(built.bytes(), written.bytes());
    let snapshot = built.snapshot();
    for &(index, value) in writes {
        built.set(index, value);
        written.set(index, value);
    }
    prop_assert_eq!(built.len(), written.len());
    prop_assert_eq!(built.depth, written.depth);
    prop_assert_eq!(built.bytes(), written.bytes());
    prop_assert_eq!(
        built.iter().copied().collect::<Vec<_>>(),
        written.iter().copied().collect::<Vec<_>>()
    );
    prop_assert_eq!(snapshot.iter().copied().collect::<Vec<_>>(), items.to_vec());
    Ok(())
}

proptest! {
    /// Any sequence of writes reads back like a Vec, and a clone taken midway keeps
    /// what it saw whatever is written after.
    #[test]
    fn behaves_like_a_vec_and_clones_are_snapshots(
        writes in proptest::collection::vec((0usize..700, any::<u32>()), 0..300),
        leaf_bits in 0u32..4,
        snapshot_at in 0usize..300,
    ) {
        with_leaf!(leaf_bits, behaves_like_a_vec(&writes, snapshot_at))?;
    }

    /// An array built from items reads like the Vec of them, has the shape and size of
    /// one written item by item, and takes later writes and clones alike.
    #[test]
    fn built_from_items_is_the_array_written_in_order(
        items in proptest::collection::vec(any::<u32>(), 0..700),
        writes in proptest::collection::vec((0usize..900, any::<u32>()), 0..50),
        leaf_bits in 0u32..4,
    ) {
        with_leaf!(leaf_bits, built_is_written(&items, &writes))?;
    }
}

#[test]
fn a_write_copies_one_path_and_shares_the_rest() {
    let mut chunks = Chunks::<u64, 4>::new(0);
    for i in 0..1024 {
        chunks.set(i as usize, i);
    }
    let before = chunks.snapshot();
    chunks.set(500, 1);
    // The root was copied; of its 16 subtrees only the written one was.
    let children = |array: &Chunks<u64, 4>| {
        let root = array.root.node.expect("1024 items need branches");
        // SAFETY: the root of a tree with branches, alive while `array` is.
        unsafe { *root.cast::<Branch>().as_ref() }
    };
    assert_ne!(before.root.node, chunks.root.node);
    let shared = children(&before)
        .nodes
        .iter()
        .zip(children(&chunks).nodes.iter())
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(shared, 15);
    assert_eq!(*before.get(500), 500);
    assert_eq!(*chunks.get(500), 1);
}

/// What a random history does to an array of counted items.
#[derive(Clone, Debug)]
enum Step {
    Write(usize, u32),
    Snapshot,
    /// Drops the snapshot at this position (modulo how many are alive).
    Release(usize),
    /// Writes to the snapshot at this position, which becomes a writer of its own.
    WriteSnapshot(usize, usize, u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..300, any::<u32>()).prop_map(|(i, v)| Step::Write(i, v)),
        2 => Just(Step::Snapshot),
        2 => any::<usize>().prop_map(Step::Release),
        1 => (any::<usize>(), 0usize..300, any::<u32>())
            .prop_map(|(k, i, v)| Step::WriteSnapshot(k, i, v)),
    ]
}

type Counted<const LEAF: usize> = Chunks<Option<Arc<u32>>, LEAF>;

fn values<const LEAF: usize>(array: &Counted<LEAF>) -> Vec<Option<u32>> {
    array.iter().map(|v| v.as_deref().copied()).collect()
}

/// Every handle reads what it saw, and once all are gone every item was dropped exactly
/// once: its reference count is back to the one `made` holds.
fn frees_every_item_once<const LEAF: usize>(
    steps: &[Step],
    writer_goes_at: usize,
) -> Result<(), TestCaseError> {
    let mut made = Vec::new();
    let mut item = |value: u32| {
        let item = Arc::new(value);
        made.push(item.clone());
        Some(item)
    };
    let mut writer = Some((Counted::<LEAF>::new(None), Vec::new()));
    let mut snapshots: Vec<(Counted<LEAF>, Vec<Option<u32>>)> = Vec::new();
    let write = |(array, model): &mut (Counted<LEAF>, Vec<Option<u32>>), i, value| {
        array.set(i, value);
        if model.len() <= i {
            model.resize(i + 1, None);
        }
        model[i] = array.get(i).as_deref().copied();
    };
    for (n, step) in steps.iter().enumerate() {
        if n == writer_goes_at {
            writer = None;
        }
        match (step, &mut writer) {
            (Step::Write(i, v), Some(writer)) => write(writer, *i, item(*v)),
            (Step::Snapshot, Some((array, model))) => {
                snapshots.push((array.snapshot(), model.clone()))
            }
            (Step::Release(k), _) if !snapshots.is_empty() => {
                snapshots.swap_remove(k % snapshots.len());
            }
            (Step::WriteSnapshot(k, i, v), _) if !snapshots.is_empty() => {
                let k = k % snapshots.len();
                write(&mut snapshots[k], *i, item(*v));
            }
            _ => {}
        }
        for (array, model) in writer.iter().chain(&snapshots) {
            prop_assert_eq!(&values(array), model);
        }
    }
    drop(writer);
    drop(snapshots);
    for item in &made {
        prop_assert_eq!(Arc::strong_count(item), 1);
    }
    Ok(())
}

proptest! {
    /// Snapshots taken, written and dropped in any order, the writer going first or
    /// last: each handle keeps what it saw, and nothing is freed twice or kept.
    #[test]
    fn snapshots_keep_what_they_saw_and_every_item_is_freed_once(
        steps in proptest::collection::vec(step(), 0..200),
        leaf_bits in 0u32..4,
        writer_goes_at in 0usize..250,
    ) {
        with_leaf!(leaf_bits, frees_every_item_once(&steps, writer_goes_at))?;
    }
}

#[test]
fn an_idle_snapshot_keeps_only_the_nodes_it_reaches() {
    let mut array = Chunks::<u32, 4>::from_items(0, 0..4096);
    let idle = array.snapshot();
    let mut latest = array.snapshot();
    // The nodes of the first tree a write replaced: leaves of 4 items, branches over 64,
    // 1,024 and 4,096.
    let mut replaced = std::collections::HashSet::new();
    let mut rng = 12345u64;
    for round in 0..2000 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let index = (rng >> 33) as usize % 4096;
        array.set(index, round);
        for span in [4, 64, 1024, 4096] {
            replaced.insert((span, index / span));
        }
        // The engines move to the next snapshot; the idle one does not.
        latest = array.snapshot();
    }
    // Of the nodes replaced since, only those of the first tree are kept.
    assert_eq!(array.pinned(), replaced.len());
    drop(idle);
    drop(latest);
    assert_eq!(array.pinned(), 0);
}

#[test]
fn a_snapshot_frees_what_only_it_kept_as_it_goes() {
    let mut array = Counted::<4>::new(None);
    let first = Arc::new(1);
    array.set(0, Some(first.clone()));
    let snapshot = array.snapshot();
    array.set(0, Some(Arc::new(2)));
    let newer = array.snapshot();
    // The replaced leaf, and the item in it, wait for the snapshot that reads them.
    assert_eq!(Arc::strong_count(&first), 2);
    assert_eq!(array.pinned(), 1);
    drop(snapshot);
    assert_eq!(Arc::strong_count(&first), 1);
    assert_eq!(array.pinned(), 0);
    // A writer that goes first leaves its tree to the snapshot.
    drop(array);
    assert_eq!(*newer.get(0).as_deref().expect("written"), 2);
}

/// The nodes on the way from the root to item `index`'s leaf.
fn path<const LEAF: usize>(array: &Chunks<u32, LEAF>, index: usize) -> Vec<NonNull<u8>> {
    let mut nodes = Vec::new();
    let mut slot = array.root;
    let mut shift = Chunks::<u32, LEAF>::LEAF_BITS + BRANCH_BITS * array.depth;
    while let Some(node) = slot.node {
        nodes.push(node);
        if nodes.len() > array.depth as usize {
            break;
        }
        shift -= BRANCH_BITS;
        // SAFETY: above the leaf level every node is a branch, alive while `array` is.
        slot = unsafe { node.cast::<Branch>().as_ref() }.slot((index >> shift) & (BRANCH - 1));
    }
    nodes
}

#[test]
fn freed_nodes_are_the_memory_of_the_next_copies() {
    let mut array = Chunks::<u32, 4>::from_items(0, 0..4096);
    let first = array.snapshot();
    let first_path = path(&first, 0);
    // 1,024 leaves under two levels of branches and the root.
    assert_eq!(first_path.len(), 4);
    array.set(0, 1);
    let second = array.snapshot();
    drop(first);
    // The first tree's path is freed, kept for the writer, which takes it at its next
    // snapshot.
    assert_eq!(array.spares(), (0, 4));
    array.set(1, 2);
    let third = array.snapshot();
    assert_eq!(array.spares(), (4, 0));
    array.set(2, 3);
    let mut reused = path(&array, 2);
    let mut freed = first_path;
    reused.sort();
    freed.sort();
    assert_eq!(reused, freed);
    assert_eq!(array.spares(), (0, 0));
    assert_eq!([*second.get(0), *second.get(1)], [1, 1]);
    assert_eq!([*third.get(1), *third.get(2)], [2, 2]);
    assert_eq!([*array.get(0), *array.get(1), *array.get(2)], [1, 2, 3]);
}

#[test]
fn a_burst_of_freed_nodes_keeps_a_bounded_few() {
    let mut array = Chunks::<u32, 4>::from_items(0, 0..4096);
    let snapshots: Vec<_> = (0..100)
        .map(|round| {
            array.set(round * 40, 1);
            array.snapshot()
        })
        .collect();
    drop(snapshots);
    let (writer, freed) = array.spares();
    assert!(
        writer <= 2 * SPARES && freed <= 2 * SPARES,
        "{writer} and {freed} kept"
    );
    assert!(freed > 0);
}
