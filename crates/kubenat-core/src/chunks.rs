//! A persistent array: the shared snapshot's storage, so the next generation copies only
//! what a change touches.
//!
//! Items sit in leaves of a fixed size under a tree of 16-way branches, every node behind
//! an `Arc`. Cloning the array clones one pointer; writing an item copies its leaf and the
//! branches above it when another snapshot still shares them (`Arc::make_mut`), and edits
//! them in place when none does. A read walks the branches (a few loads, the top levels
//! hot in cache) to the leaf. Wide leaves of small `Copy` items keep the branches few and
//! the copy a short `memcpy`; narrow leaves suit items that are costly to clone. The leaf
//! size is part of the type: a leaf is a fixed-size array behind a thin pointer, so a
//! node is two words and a read masks its index into the leaf with a constant.

use std::sync::Arc;

/// log2 of the branch width.
const BRANCH_BITS: u32 = 4;
const BRANCH: usize = 1 << BRANCH_BITS;

#[derive(Clone, Debug)]
enum Node<T, const LEAF: usize> {
    /// Never written: every item below reads as the fill value.
    Empty,
    /// A fixed-size array: the child index needs no bounds check.
    Branch(Arc<[Node<T, LEAF>; BRANCH]>),
    Leaf(Arc<[T; LEAF]>),
}

/// A growable array of `T` in leaves of `LEAF` items (a power of two), whose clones share
/// their unchanged parts.
#[derive(Clone, Debug)]
pub(crate) struct Chunks<T, const LEAF: usize> {
    root: Node<T, LEAF>,
    /// Branch levels above the leaves.
    depth: u32,
    len: usize,
    /// What unwritten items read as.
    fill: T,
}

impl<T: Clone, const LEAF: usize> Chunks<T, LEAF> {
    /// log2 of the leaf size.
    const LEAF_BITS: u32 = {
        assert!(
            LEAF.is_power_of_two(),
            "leaves hold a power of two of items"
        );
        LEAF.trailing_zeros()
    };

    /// An empty array; unwritten items read as `fill`.
    pub fn new(fill: T) -> Chunks<T, LEAF> {
        Chunks {
            root: Node::Empty,
            depth: 0,
            len: 0,
            fill,
        }
    }

    /// `items` at indexes 0, 1, ... in order: the array as many [`Chunks::set`]s would
    /// make it, built leaf by leaf and the branches bottom up rather than one walk from
    /// the root per item (a full build's way in).
    pub fn from_items(fill: T, items: impl IntoIterator<Item = T>) -> Chunks<T, LEAF> {
        let mut nodes = Vec::new();
        let mut leaf = Vec::with_capacity(LEAF);
        let mut len = 0;
        let full = |leaf: &mut Vec<T>| Node::Leaf(Self::leaf(leaf.drain(..).collect()));
        for item in items {
            leaf.push(item);
            len += 1;
            if leaf.len() == LEAF {
                nodes.push(full(&mut leaf));
            }
        }
        if !leaf.is_empty() {
            // The last leaf's unwritten items read as fill, as in one `set` made.
            leaf.resize(LEAF, fill.clone());
            nodes.push(full(&mut leaf));
        }
        let mut depth = 0;
        while nodes.len() > 1 {
            let mut level = nodes.into_iter();
            nodes = Vec::with_capacity(level.len().div_ceil(BRANCH));
            while level.len() > 0 {
                let children = std::array::from_fn(|_| level.next().unwrap_or(Node::Empty));
                nodes.push(Node::Branch(Arc::new(children)));
            }
            depth += 1;
        }
        Chunks {
            root: nodes.pop().unwrap_or(Node::Empty),
            depth,
            len,
            fill,
        }
    }

    /// A leaf of exactly `LEAF` items.
    fn leaf(items: Arc<[T]>) -> Arc<[T; LEAF]> {
        items
            .try_into()
            .unwrap_or_else(|_| unreachable!("a leaf of {LEAF} items"))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Items the current tree holds before it needs another level.
    fn capacity(&self) -> usize {
        1 << (Self::LEAF_BITS + BRANCH_BITS * self.depth)
    }

    /// Item `index` (the fill value past the end).
    #[inline]
    pub fn get(&self, index: usize) -> &T {
        if index >= self.len {
            return &self.fill;
        }
        let mut node = &self.root;
        let mut shift = Self::LEAF_BITS + BRANCH_BITS * self.depth;
        loop {
            match node {
                Node::Branch(children) => {
                    shift -= BRANCH_BITS;
                    node = &children[(index >> shift) & (BRANCH - 1)];
                }
                Node::Leaf(items) => return &items[index & (LEAF - 1)],
                Node::Empty => return &self.fill,
            }
        }
    }

    /// Item `index`, writable: its leaf and branches are copied first if another clone
    /// shares them. Panics past the end.
    pub fn get_mut(&mut self, index: usize) -> &mut T {
        assert!(
            index < self.len,
            "index {index} past the end ({})",
            self.len
        );
        let mut node = &mut self.root;
        let mut shift = Self::LEAF_BITS + BRANCH_BITS * self.depth;
        loop {
            if let Node::Empty = node {
                *node = if shift == Self::LEAF_BITS {
                    Node::Leaf(Arc::new(std::array::from_fn(|_| self.fill.clone())))
                } else {
                    Node::Branch(Arc::new(std::array::from_fn(|_| Node::Empty)))
                };
            }
            match node {
                Node::Branch(children) => {
                    if Arc::strong_count(children) > 1 {
                        prefetch_counts(children);
                    }
                    shift -= BRANCH_BITS;
                    node = &mut Arc::make_mut(children)[(index >> shift) & (BRANCH - 1)];
                }
                Node::Leaf(items) => return &mut Arc::make_mut(items)[index & (LEAF - 1)],
                Node::Empty => unreachable!("filled above"),
            }
        }
    }

    /// Writes item `index`, growing the array to hold it (items between read as fill).
    pub fn set(&mut self, index: usize, value: T) {
        if index >= self.len {
            while index >= self.capacity() {
                let old = std::mem::replace(&mut self.root, Node::Empty);
                let mut children: [Node<T, LEAF>; BRANCH] = std::array::from_fn(|_| Node::Empty);
                children[0] = old;
                self.root = Node::Branch(Arc::new(children));
                self.depth += 1;
            }
            self.len = index + 1;
        }
        *self.get_mut(index) = value;
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).map(|i| self.get(i))
    }

    /// Bytes of the leaves and branches this array reaches (shared ones included).
    pub fn bytes(&self) -> usize {
        fn node_bytes<T, const LEAF: usize>(node: &Node<T, LEAF>) -> usize {
            match node {
                Node::Empty => 0,
                Node::Branch(children) => {
                    std::mem::size_of_val(&**children)
                        + children.iter().map(node_bytes).sum::<usize>()
                }
                Node::Leaf(items) => std::mem::size_of_val(&**items),
            }
        }
        node_bytes(&self.root)
    }
}

/// Starts loading the reference counts of a shared branch's children, which copying it
/// increments: one locked increment after another on cold lines waits for each line in
/// turn, loads started together overlap. A hint: the counts sit just before each child's
/// items in its `Arc` allocation.
fn prefetch_counts<T, const LEAF: usize>(children: &[Node<T, LEAF>; BRANCH]) {
    fn counts_of<X>(arc: &Arc<X>) -> *const u8 {
        let header = 16usize.next_multiple_of(std::mem::align_of::<X>());
        Arc::as_ptr(arc).cast::<u8>().wrapping_sub(header)
    }
    for child in children {
        let counts = match child {
            Node::Branch(arc) => counts_of(arc),
            Node::Leaf(arc) => counts_of(arc),
            Node::Empty => continue,
        };
        crate::flow_index::prefetch_write(counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

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
                snapshot = Some((chunks.clone(), model.clone()));
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
        let snapshot = built.clone();
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
        let before = chunks.clone();
        chunks.set(500, 1);
        let (Node::Branch(old), Node::Branch(new)) = (&before.root, &chunks.root) else {
            panic!("1024 items need branches");
        };
        // The root was copied; of its 16 subtrees only the written one was.
        let shared = old
            .iter()
            .zip(new.iter())
            .filter(|(a, b)| match (a, b) {
                (Node::Branch(a), Node::Branch(b)) => Arc::ptr_eq(a, b),
                _ => false,
            })
            .count();
        assert_eq!(shared, 15);
        assert_eq!(*before.get(500), 500);
        assert_eq!(*chunks.get(500), 1);
    }
}
