//! A persistent array: the shared snapshot's storage, so the next generation copies only
//! what a change touches.
//!
//! Items sit in leaves of a fixed size under a tree of 16-way branches, every node behind
//! an `Arc`. Cloning the array clones one pointer; writing an item copies its leaf and the
//! branches above it when another snapshot still shares them (`Arc::make_mut`), and edits
//! them in place when none does. A read walks the branches (a few loads, the top levels
//! hot in cache) to the leaf. Wide leaves of small `Copy` items keep the branches few and
//! the copy a short `memcpy`; narrow leaves suit items that are costly to clone.

use std::sync::Arc;

/// log2 of the branch width.
const BRANCH_BITS: u32 = 4;
const BRANCH: usize = 1 << BRANCH_BITS;

#[derive(Clone, Debug)]
enum Node<T> {
    /// Never written: every item below reads as the fill value.
    Empty,
    /// A fixed-size array: the child index needs no bounds check.
    Branch(Arc<[Node<T>; BRANCH]>),
    Leaf(Arc<[T]>),
}

/// A growable array of `T` whose clones share their unchanged parts.
#[derive(Clone, Debug)]
pub(crate) struct Chunks<T> {
    root: Node<T>,
    /// Branch levels above the leaves.
    depth: u32,
    /// log2 of the leaf size.
    leaf_bits: u32,
    len: usize,
    /// What unwritten items read as.
    fill: T,
}

impl<T: Clone> Chunks<T> {
    /// An empty array with leaves of `1 << leaf_bits` items; unwritten items read as `fill`.
    pub fn new(leaf_bits: u32, fill: T) -> Chunks<T> {
        Chunks {
            root: Node::Empty,
            depth: 0,
            leaf_bits,
            len: 0,
            fill,
        }
    }

    /// `items` at indexes 0, 1, ... in order, with leaves of `1 << leaf_bits` items: the
    /// array as many [`Chunks::set`]s would make it, built leaf by leaf and the branches
    /// bottom up rather than one walk from the root per item (a full build's way in).
    pub fn from_items(leaf_bits: u32, fill: T, items: impl IntoIterator<Item = T>) -> Chunks<T> {
        let leaf_size = 1usize << leaf_bits;
        let mut nodes = Vec::new();
        let mut leaf = Vec::with_capacity(leaf_size);
        let mut len = 0;
        for item in items {
            leaf.push(item);
            len += 1;
            if leaf.len() == leaf_size {
                nodes.push(Node::Leaf(leaf.drain(..).collect()));
            }
        }
        if !leaf.is_empty() {
            // The last leaf's unwritten items read as fill, as in one `set` made.
            leaf.resize(leaf_size, fill.clone());
            nodes.push(Node::Leaf(leaf.into()));
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
            leaf_bits,
            len,
            fill,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Items the current tree holds before it needs another level.
    fn capacity(&self) -> usize {
        1 << (self.leaf_bits + BRANCH_BITS * self.depth)
    }

    /// Item `index` (the fill value past the end).
    #[inline]
    pub fn get(&self, index: usize) -> &T {
        if index >= self.len {
            return &self.fill;
        }
        let mut node = &self.root;
        let mut shift = self.leaf_bits + BRANCH_BITS * self.depth;
        loop {
            match node {
                Node::Branch(children) => {
                    shift -= BRANCH_BITS;
                    node = &children[(index >> shift) & (BRANCH - 1)];
                }
                Node::Leaf(items) => return &items[index & ((1 << self.leaf_bits) - 1)],
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
        let leaf_size = 1usize << self.leaf_bits;
        let mut node = &mut self.root;
        let mut shift = self.leaf_bits + BRANCH_BITS * self.depth;
        loop {
            if let Node::Empty = node {
                *node = if shift == self.leaf_bits {
                    Node::Leaf(vec![self.fill.clone(); leaf_size].into())
                } else {
                    Node::Branch(Arc::new(std::array::from_fn(|_| Node::Empty)))
                };
            }
            match node {
                Node::Branch(children) => {
                    shift -= BRANCH_BITS;
                    node = &mut Arc::make_mut(children)[(index >> shift) & (BRANCH - 1)];
                }
                Node::Leaf(items) => return &mut Arc::make_mut(items)[index & (leaf_size - 1)],
                Node::Empty => unreachable!("filled above"),
            }
        }
    }

    /// Writes item `index`, growing the array to hold it (items between read as fill).
    pub fn set(&mut self, index: usize, value: T) {
        if index >= self.len {
            while index >= self.capacity() {
                let old = std::mem::replace(&mut self.root, Node::Empty);
                let mut children: [Node<T>; BRANCH] = std::array::from_fn(|_| Node::Empty);
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
        fn node_bytes<T>(node: &Node<T>) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of writes reads back like a Vec, and a clone taken midway keeps
        /// what it saw whatever is written after.
        #[test]
        fn behaves_like_a_vec_and_clones_are_snapshots(
            writes in proptest::collection::vec((0usize..700, any::<u32>()), 0..300),
            leaf_bits in 0u32..4,
            snapshot_at in 0usize..300,
        ) {
            let mut chunks = Chunks::new(leaf_bits, 7u32);
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
        }
    }

    proptest! {
        /// An array built from items reads like the Vec of them, has the shape and size of
        /// one written item by item, and takes later writes and clones alike.
        #[test]
        fn built_from_items_is_the_array_written_in_order(
            items in proptest::collection::vec(any::<u32>(), 0..700),
            writes in proptest::collection::vec((0usize..900, any::<u32>()), 0..50),
            leaf_bits in 0u32..4,
        ) {
            let mut built = Chunks::from_items(leaf_bits, 7u32, items.iter().copied());
            let mut written = Chunks::new(leaf_bits, 7u32);
            for (index, &item) in items.iter().enumerate() {
                written.set(index, item);
            }
            prop_assert_eq!(built.iter().copied().collect::<Vec<_>>(), items.clone());
            prop_assert_eq!(built.depth, written.depth);
            prop_assert_eq!(built.bytes(), written.bytes());
            let snapshot = built.clone();
            for &(index, value) in &writes {
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
            prop_assert_eq!(snapshot.iter().copied().collect::<Vec<_>>(), items);
        }
    }

    #[test]
    fn a_write_copies_one_path_and_shares_the_rest() {
        let mut chunks = Chunks::new(2, 0u64);
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
