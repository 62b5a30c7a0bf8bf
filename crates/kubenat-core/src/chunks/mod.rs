//! A persistent array: the shared snapshot's storage, so the next generation copies only
//! what a change touches.
//!
//! Items sit in leaves of a fixed size under a tree of 16-way branches. One handle, the
//! writer, owns every node; [`Chunks::snapshot`] hands out read-only handles that share
//! the tree as it is. A write edits the nodes made since the last snapshot in place, and
//! copies the leaf and the branches above it that a snapshot may still read, retiring the
//! old ones ([`retired`]): they are freed once no live snapshot can reach them.
//!
//! Nothing is counted per node: copying a branch is a copy of its 16 child pointers, not 16
//! locked increments of the children's reference counts on cold lines (and as many
//! decrements when the old generation goes), which took about a third of a one-Service
//! update's time at a million Services. Leaf items are still cloned when their leaf is
//! copied. A read walks the branches (a few loads, the top levels
//! hot in cache) to the leaf. Wide leaves of small `Copy` items keep the branches few and
//! the copy a short `memcpy`; narrow leaves suit items that are costly to clone. The leaf
//! size is part of the type, so a read masks its index into the leaf with a constant.

mod node;
mod retired;
mod spares;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use node::{BRANCH, BRANCH_BITS, Branch, EMPTY, Slot};
use retired::{Owner, Token};

use crate::flow_index::prefetch_all;

/// Who a handle is.
enum Role<T, const LEAF: usize> {
    /// Writes; owns every node, and frees the retired ones no snapshot reaches.
    Writer(Owner<T, LEAF>),
    /// A snapshot: reads, and keeps what it reaches alive while its token lives.
    Reader(Arc<Token<T, LEAF>>),
}

/// A growable array of `T` in leaves of `LEAF` items (a power of two), whose snapshots
/// share their unchanged parts.
pub(crate) struct Chunks<T, const LEAF: usize> {
    root: Slot,
    /// Branch levels above the leaves.
    depth: u32,
    len: usize,
    /// What unwritten items read as.
    fill: T,
    role: Role<T, LEAF>,
}

// SAFETY: the nodes hold `T`s and child pointers only. A writer changes nodes no snapshot
// reaches, through `&mut self`; snapshots only read, and the nodes they reach are freed
// only after their tokens are gone (`retired`), under the lock the writer and snapshots
// share, on whichever thread lets the last of them go (so `T: Send`).
unsafe impl<T: Send + Sync, const LEAF: usize> Send for Chunks<T, LEAF> {}
// SAFETY: as above; `&Chunks` only reads.
unsafe impl<T: Send + Sync, const LEAF: usize> Sync for Chunks<T, LEAF> {}

impl<T, const LEAF: usize> std::fmt::Debug for Chunks<T, LEAF> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("len", &self.len)
            .field("depth", &self.depth)
            .field("writer", &matches!(self.role, Role::Writer(_)))
            .finish()
    }
}

impl<T, const LEAF: usize> Drop for Chunks<T, LEAF> {
    fn drop(&mut self) {
        if let Role::Writer(owner) = &mut self.role {
            owner.hand_over(self.root, self.depth);
        }
    }
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

    /// An empty array (its writer); unwritten items read as `fill`.
    pub fn new(fill: T) -> Chunks<T, LEAF> {
        Chunks {
            root: EMPTY,
            depth: 0,
            len: 0,
            fill,
            role: Role::Writer(Owner::new()),
        }
    }

    /// `items` at indexes 0, 1, ... in order: the array as many [`Chunks::set`]s would
    /// make it, built leaf by leaf and the branches bottom up rather than one walk from
    /// the root per item (a full build's way in).
    pub fn from_items(fill: T, items: impl IntoIterator<Item = T>) -> Chunks<T, LEAF> {
        let mut nodes = Vec::new();
        let mut leaf = Vec::with_capacity(LEAF);
        let mut len = 0;
        let full = |leaf: &mut Vec<T>| Slot {
            node: Some(retired::new_node(Self::leaf(leaf.drain(..).collect()))),
            made: 0,
        };
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
                let children = Branch::from_slots(|_| level.next().unwrap_or(EMPTY));
                nodes.push(Slot {
                    node: Some(retired::new_node(Box::new(children))),
                    made: 0,
                });
            }
            depth += 1;
        }
        Chunks {
            root: nodes.pop().unwrap_or(EMPTY),
            depth,
            len,
            fill,
            role: Role::Writer(Owner::new()),
        }
    }

    /// A leaf of exactly `LEAF` items.
    fn leaf(items: Box<[T]>) -> Box<[T; LEAF]> {
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
        match self.leaf_of(index, |_| ()) {
            Some(leaf) => &leaf[index & (LEAF - 1)],
            None => &self.fill,
        }
    }

    /// Starts loading what a write to item `index` reads: the branches on its path (a
    /// write copies each whole when a snapshot shares it) and its leaf. Only the walk's
    /// own loads are waited for, so a caller with other work to do before the write does
    /// it while the rest arrives.
    pub fn prefetch_path(&self, index: usize) {
        if let Some(leaf) = self.leaf_of(index, prefetch_all) {
            prefetch_all(leaf);
        }
    }

    /// The leaf holding item `index` (`None` past the end or where nothing was written),
    /// each branch on the way shown to `on_branch`.
    #[inline(always)]
    fn leaf_of(&self, index: usize, mut on_branch: impl FnMut(&Branch)) -> Option<&[T; LEAF]> {
        if index >= self.len {
            return None;
        }
        let mut node = self.root.node;
        let mut shift = Self::LEAF_BITS + BRANCH_BITS * self.depth;
        for _ in 0..self.depth {
            // SAFETY: above the leaf level every node is a branch, alive while `self` is.
            let branch = unsafe { node?.cast::<Branch>().as_ref() };
            on_branch(branch);
            shift -= BRANCH_BITS;
            node = branch.nodes[(index >> shift) & (BRANCH - 1)];
        }
        // SAFETY: at the leaf level every node is a leaf, alive while `self` is.
        node.map(|leaf| unsafe { leaf.cast::<[T; LEAF]>().as_ref() })
    }

    /// Item `index`, writable: its leaf and branches are copied first if a snapshot may
    /// read them. Panics past the end.
    pub fn get_mut(&mut self, index: usize) -> &mut T {
        assert!(
            index < self.len,
            "index {index} past the end ({})",
            self.len
        );
        if let Role::Reader(_) = self.role {
            self.become_writer();
        }
        let Role::Writer(owner) = &mut self.role else {
            unreachable!("a writer now");
        };
        let mut slot = self.root.as_mut();
        let mut shift = Self::LEAF_BITS + BRANCH_BITS * self.depth;
        for _ in 0..self.depth {
            let branch = owner.writable_branch(slot);
            shift -= BRANCH_BITS;
            slot = branch.slot_mut((index >> shift) & (BRANCH - 1));
        }
        &mut owner.writable_leaf(slot, &self.fill)[index & (LEAF - 1)]
    }

    /// Writes item `index`, growing the array to hold it (items between read as fill).
    pub fn set(&mut self, index: usize, value: T) {
        if index >= self.len {
            if let Role::Reader(_) = self.role {
                self.become_writer();
            }
            let Role::Writer(owner) = &self.role else {
                unreachable!("a writer now");
            };
            while index >= self.capacity() {
                let mut children = Branch::EMPTY;
                children.set(0, self.root);
                self.root = Slot {
                    node: Some(retired::new_node(Box::new(children))),
                    made: owner.version(),
                };
                self.depth += 1;
            }
            self.len = index + 1;
        }
        *self.get_mut(index) = value;
    }

    /// A snapshot written to: it becomes the writer of a copy of its own.
    #[cold]
    fn become_writer(&mut self) {
        *self = Chunks::from_items(self.fill.clone(), self.iter().cloned());
    }

    /// A read-only handle on the array as it is now, sharing every node: later writes
    /// copy what they touch. The writer frees first what no snapshot reaches any more.
    pub fn snapshot(&mut self) -> Chunks<T, LEAF> {
        let token = match &mut self.role {
            Role::Writer(owner) => owner.pin(),
            Role::Reader(token) => token.clone(),
        };
        Chunks {
            root: self.root,
            depth: self.depth,
            len: self.len,
            fill: self.fill.clone(),
            role: Role::Reader(token),
        }
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).map(|i| self.get(i))
    }

    /// Bytes of the leaves and branches this array reaches (shared ones included).
    pub fn bytes(&self) -> usize {
        fn node_bytes<T, const LEAF: usize>(slot: Slot, depth: u32) -> usize {
            match slot.node {
                None => 0,
                Some(_) if depth == 0 => std::mem::size_of::<[T; LEAF]>(),
                Some(branch) => {
                    // SAFETY: above the leaf level every node is a branch, alive while the
                    // array that reaches it is.
                    let branch = unsafe { branch.cast::<Branch>().as_ref() };
                    (0..BRANCH)
                        .map(|i| node_bytes::<T, LEAF>(branch.slot(i), depth - 1))
                        .sum::<usize>()
                        .saturating_add(std::mem::size_of::<Branch>())
                }
            }
        }
        node_bytes::<T, LEAF>(self.root, self.depth)
    }
}

#[cfg(test)]
impl<T, const LEAF: usize> Chunks<T, LEAF> {
    /// Replaced nodes the writer keeps for snapshots that may be alive.
    fn pinned(&self) -> usize {
        match &self.role {
            Role::Writer(owner) => owner.pinned(),
            Role::Reader(_) => 0,
        }
    }

    /// Freed nodes kept: the writer's, and those freed since its last snapshot.
    fn spares(&self) -> (usize, usize) {
        match &self.role {
            Role::Writer(owner) => owner.spares(),
            Role::Reader(_) => (0, 0),
        }
    }
}
