//! Who frees a node no snapshot reaches, with nothing counted per node.
//!
//! The writer numbers its versions: a snapshot is taken under the current one, and the
//! writes after it happen under the next. A node made under version `m` and replaced under
//! `v` can be read only by the snapshots taken under `m..v`. Each snapshot leaves a pin,
//! shared by the writer and the snapshot's clones: its tag and the retired nodes it keeps.
//! At the next snapshot, a node replaced since goes to the newest pin if that pin may
//! reach it, or is freed. When the last clone of a snapshot goes, its pin goes, on that
//! thread and at once: its nodes move to the newest older pin that may reach them, or are
//! freed. So a snapshot an idle engine keeps for long keeps only what it reaches, and the
//! snapshots published after it are freed as they go, as with reference counts; only
//! the pin list is locked, once a snapshot taken and once one gone.
//!
//! If the writer goes first, its tree is left to the pins, and freed with the last of them.
//! Freed nodes' memory is kept for the writer's next copies ([`Spares`]).

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::node::{BRANCH, Branch, Slot, SlotMut};
use super::spares::{Spares, deallocate, drop_items};

/// A node of the tree behind a thin pointer (its kind follows from its level).
pub(super) fn new_node<X>(node: Box<X>) -> NonNull<u8> {
    NonNull::from(Box::leak(node)).cast()
}

/// A replaced node, and the version that made it.
struct Retired {
    node: NonNull<u8>,
    leaf: bool,
    made: u64,
}

impl Retired {
    /// Frees the node into `spares`; a leaf drops its items (it holds clones of its own), a
    /// branch does not free its children (the tree or other retired nodes own them).
    ///
    /// # Safety
    /// Nothing reaches the node any more, and it is freed once.
    unsafe fn free<T, const LEAF: usize>(&self, spares: &mut Spares<T, LEAF>) {
        // SAFETY: the caller's promise.
        unsafe {
            drop_items::<T, LEAF>(self.node, self.leaf);
            spares.keep(self.node, self.leaf);
        }
    }
}

/// Frees every node under `root`, `depth` branch levels above the leaves.
///
/// # Safety
/// Nothing else reaches the tree's nodes or frees them.
unsafe fn free_tree<T, const LEAF: usize>(root: Slot, depth: u32) {
    let Some(node) = root.node else {
        return;
    };
    let leaf = depth == 0;
    if !leaf {
        // SAFETY: a branch above the leaves, owned by the caller.
        let children = unsafe { *node.cast::<Branch>().as_ref() };
        for i in 0..BRANCH {
            // SAFETY: the children are the caller's too.
            unsafe { free_tree::<T, LEAF>(children.slot(i), depth - 1) };
        }
    }
    // SAFETY: the caller's promise.
    unsafe {
        drop_items::<T, LEAF>(node, leaf);
        deallocate::<T, LEAF>(node, leaf);
    }
}

/// The retired nodes a live snapshot may reach.
struct Pin {
    /// The version the snapshot was taken under.
    tag: u64,
    nodes: RetiredList,
}

/// How many retired nodes a block of a [`RetiredList`] holds before the next is begun.
const BLOCK: usize = 512;

/// Retired nodes in blocks: the list of a snapshot kept for long (an idle engine's) grows
/// by a few nodes an update, copied into its last block, and never copies what it holds,
/// where one vector's doubling copied tens of kilobytes inside one update. The first
/// block is held inline: most lists never need a second.
#[derive(Default)]
struct RetiredList {
    first: Vec<Retired>,
    more: Vec<Vec<Retired>>,
}

impl RetiredList {
    /// Adds the nodes of `block`: moved into the last block when they fit, or the block
    /// itself kept. Gives back an emptied block.
    fn append(&mut self, mut block: Vec<Retired>) -> Option<Vec<Retired>> {
        let last = self.more.last_mut().unwrap_or(&mut self.first);
        if last.is_empty() {
            Some(std::mem::replace(last, block))
        } else if last.len() + block.len() <= BLOCK {
            last.append(&mut block);
            Some(block)
        } else {
            self.more.push(block);
            None
        }
    }

    fn into_blocks(self) -> impl Iterator<Item = Vec<Retired>> {
        std::iter::once(self.first).chain(self.more)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.first.len() + self.more.iter().map(Vec::len).sum::<usize>()
    }
}

/// What the writer and its snapshots share.
struct Pins<T, const LEAF: usize> {
    /// Oldest first: their tags rise, every one below the writer's version.
    pins: Vec<Pin>,
    /// The tree of a writer that went first, freed with the last pin.
    remains: Option<(Slot, u32)>,
    /// Freed nodes, taken by the writer at its next snapshot.
    spares: Spares<T, LEAF>,
    /// An emptied block, for the writer's next retired nodes.
    spare_block: Vec<Retired>,
}

impl<T, const LEAF: usize> Pins<T, LEAF> {
    /// The nodes replaced since the newest pin go to that pin if it may reach them, or are
    /// freed; `retiring` is left empty. (Freed under the lock: a snapshot's last clone may
    /// be freeing too, rarely.)
    fn place(&mut self, retiring: &mut Vec<Retired>) {
        let block = std::mem::take(retiring);
        let newest = self.pins.len().checked_sub(1);
        // SAFETY: no pin newer than the newest; the writer no longer reaches the nodes.
        if let Some(emptied) = unsafe { self.settle(block, newest) } {
            self.recycle(emptied);
        }
        *retiring = std::mem::take(&mut self.spare_block);
    }

    /// The snapshot `tag` is gone: its nodes go to the newest older pin that may still
    /// reach them, or are freed, and so is the tree of a writer that went first once no
    /// pin is left.
    fn release(&mut self, tag: u64) {
        let Ok(at) = self.pins.binary_search_by_key(&tag, |pin| pin.tag) else {
            return;
        };
        let nodes = self.pins.remove(at).nodes;
        for block in nodes.into_blocks() {
            // SAFETY: the pins after the gone one were taken after its nodes were replaced.
            if let Some(emptied) = unsafe { self.settle(block, at.checked_sub(1)) } {
                self.recycle(emptied);
            }
        }
        if self.pins.is_empty()
            && let Some((root, depth)) = self.remains.take()
        {
            // SAFETY: the tree of a writer that went first; its last snapshot is gone.
            unsafe { free_tree::<T, LEAF>(root, depth) };
        }
    }

    /// Keeps the nodes of `block` that the pin at `newest` may reach with that pin, and
    /// frees the others; gives back the block when it is left empty.
    ///
    /// # Safety
    /// No pin after `newest` may reach the nodes, nor the writer.
    unsafe fn settle(
        &mut self,
        mut block: Vec<Retired>,
        newest: Option<usize>,
    ) -> Option<Vec<Retired>> {
        let tag = newest.map(|at| self.pins[at].tag);
        let reached = |node: &Retired| tag.is_some_and(|tag| tag >= node.made);
        if !block.iter().all(reached) {
            let spares = &mut self.spares;
            block.retain(|node| {
                let kept = reached(node);
                if !kept {
                    // SAFETY: the pins up to `newest` were taken before it was made, and
                    // the caller promises the rest.
                    unsafe { node.free(spares) };
                }
                kept
            });
        }
        match newest {
            Some(at) if !block.is_empty() => self.pins[at].nodes.append(block),
            _ => Some(block),
        }
    }

    /// Keeps the larger of `block` (emptied) and the spare one.
    fn recycle(&mut self, block: Vec<Retired>) {
        if block.capacity() > self.spare_block.capacity() {
            self.spare_block = block;
        }
    }
}

type Shared<T, const LEAF: usize> = Arc<Mutex<Pins<T, LEAF>>>;

fn lock<T, const LEAF: usize>(shared: &Shared<T, LEAF>) -> MutexGuard<'_, Pins<T, LEAF>> {
    // Nothing under the lock panics midway; a poisoned lock's state is whole.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shared by a snapshot and its clones: the last of them to go releases the pin, and
/// frees what no other snapshot may reach, on its own thread, at once.
pub(super) struct Token<T, const LEAF: usize> {
    tag: u64,
    shared: Shared<T, LEAF>,
}

impl<T, const LEAF: usize> Drop for Token<T, LEAF> {
    fn drop(&mut self) {
        lock(&self.shared).release(self.tag);
    }
}

/// The writer's bookkeeping: its version, the nodes it replaced since the last snapshot,
/// and the pins it shares with its snapshots.
pub(super) struct Owner<T, const LEAF: usize> {
    version: u64,
    /// Placed at the next snapshot: until then no pin is newer than their replacement.
    retiring: Vec<Retired>,
    /// Memory for the next nodes made, taken from the pins' at each snapshot.
    spares: Spares<T, LEAF>,
    shared: Shared<T, LEAF>,
}

impl<T, const LEAF: usize> Owner<T, LEAF> {
    pub fn new() -> Owner<T, LEAF> {
        Owner {
            version: 0,
            retiring: Vec::new(),
            spares: Spares::new(),
            shared: Arc::new(Mutex::new(Pins {
                pins: Vec::new(),
                remains: None,
                spares: Spares::new(),
                spare_block: Vec::new(),
            })),
        }
    }

    /// Nodes made under this version are the writer's alone.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A token for a snapshot of the tree as it is now: the writes after it copy what it
    /// reaches.
    pub fn pin(&mut self) -> Arc<Token<T, LEAF>> {
        let mut shared = lock(&self.shared);
        shared.place(&mut self.retiring);
        self.spares.take_all(&mut shared.spares);
        shared.pins.push(Pin {
            tag: self.version,
            nodes: RetiredList::default(),
        });
        drop(shared);
        let tag = self.version;
        self.version += 1;
        Arc::new(Token {
            tag,
            shared: self.shared.clone(),
        })
    }

    /// A node the writer no longer reaches, made under version `made`.
    fn retire(&mut self, node: NonNull<u8>, leaf: bool, made: u64) {
        self.retiring.push(Retired { node, leaf, made });
    }

    /// The writer is going: frees what no snapshot reaches, and leaves its tree to the
    /// last pin when snapshots are alive.
    pub fn hand_over(&mut self, root: Slot, depth: u32) {
        let mut shared = lock(&self.shared);
        shared.place(&mut self.retiring);
        if shared.pins.is_empty() {
            // SAFETY: no snapshot is left, and the tree is the writer's.
            unsafe { free_tree::<T, LEAF>(root, depth) };
        } else {
            shared.remains = Some((root, depth));
        }
    }

    /// Replaced nodes kept for snapshots that may be alive.
    #[cfg(test)]
    pub fn pinned(&self) -> usize {
        lock(&self.shared)
            .pins
            .iter()
            .map(|pin| pin.nodes.len())
            .sum()
    }

    /// Freed nodes kept for the next copies: the writer's, and those freed since its last
    /// snapshot.
    #[cfg(test)]
    pub fn spares(&self) -> (usize, usize) {
        (self.spares.len(), lock(&self.shared).spares.len())
    }

    /// The node in `slot` (`leaf` or a branch), writable: made first by `fresh`, or, when
    /// a snapshot may read it, replaced by `copy` of it and retired. Both write a whole
    /// node into the memory they are given (a spare's, or new).
    fn writable<'s, X>(
        &mut self,
        slot: SlotMut<'s>,
        leaf: bool,
        fresh: impl FnOnce(&mut MaybeUninit<X>),
        copy: impl FnOnce(&X, &mut MaybeUninit<X>),
    ) -> &'s mut X {
        if let Some(node) = slot.node.filter(|_| *slot.made == self.version) {
            // SAFETY: made under this version, so no snapshot reaches it; `slot` is
            // borrowed mutably for as long.
            return unsafe { node.cast::<X>().as_mut() };
        }
        // SAFETY: `X` is the node kind `leaf` says (the callers below).
        let mut memory = unsafe { self.spares.take::<X>(leaf) };
        // SAFETY: taken just now, so the writer's alone.
        let target = unsafe { memory.as_mut() };
        match *slot.node {
            None => fresh(target),
            Some(node) => {
                // SAFETY: a live node of this kind, read to copy it.
                copy(unsafe { node.cast::<X>().as_ref() }, target);
                self.retire(node, leaf, *slot.made);
            }
        }
        *slot.node = Some(memory.cast());
        *slot.made = self.version;
        // SAFETY: written whole just now, under this version, which no snapshot reaches;
        // `slot` is borrowed mutably for as long.
        unsafe { memory.cast::<X>().as_mut() }
    }

    /// The branch in `slot`, made first (empty) or copied (when a snapshot may read it):
    /// a copy is its child pointers, nothing counted.
    pub fn writable_branch<'s>(&mut self, slot: SlotMut<'s>) -> &'s mut Branch {
        self.writable(
            slot,
            false,
            |target| {
                target.write(Branch::EMPTY);
            },
            |old: &Branch, target| {
                target.write(*old);
            },
        )
    }
}

impl<T: Clone, const LEAF: usize> Owner<T, LEAF> {
    /// The leaf in `slot`, made first (of `fill`) or copied (when a snapshot may read it).
    pub fn writable_leaf<'s>(&mut self, slot: SlotMut<'s>, fill: &T) -> &'s mut [T; LEAF] {
        self.writable(
            slot,
            true,
            |target| fill_leaf(target, |_| fill.clone()),
            |old: &[T; LEAF], target| fill_leaf(target, |i| old[i].clone()),
        )
    }
}

/// Writes `item(0)`, `item(1)`, ... into every place of `leaf`.
fn fill_leaf<T, const LEAF: usize>(
    leaf: &mut MaybeUninit<[T; LEAF]>,
    mut item: impl FnMut(usize) -> T,
) {
    let items = leaf.as_mut_ptr().cast::<T>();
    for i in 0..LEAF {
        // SAFETY: `i` is within the leaf; each item is written once.
        unsafe { items.add(i).write(item(i)) };
    }
}
