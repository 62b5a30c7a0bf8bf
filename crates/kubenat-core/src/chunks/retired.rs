//! Who frees a node no snapshot reaches: the writer, with nothing counted per node.
//!
//! The writer numbers its versions: a snapshot is taken under the current one, and the
//! writes after it happen under the next. A node made under version `m` and replaced under
//! `v` can be read only by the snapshots taken under `m..v`. Each snapshot leaves a pin
//! with the writer: its tag, a token the snapshot's clones share, and the retired nodes it
//! keeps. A replaced node goes to the newest pin in its range, or is freed at once when
//! there is none. Once no snapshot holds a pin's token, its nodes move to the newest older
//! pin in their range, or are freed. So a snapshot an idle engine keeps for long keeps
//! only what it reaches, and the snapshots published after it are freed as they go, as
//! with reference counts.
//!
//! If the writer goes first, what live snapshots may still reach (its tree and the pinned
//! nodes) is handed to their tokens, and freed with the last of them.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use super::{BRANCH, Branch, EMPTY, Slot};

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
    /// Frees the node; a leaf drops its items (it holds clones of its own), a branch does
    /// not free its children (the tree or other retired nodes own them).
    ///
    /// # Safety
    /// Nothing reaches the node any more, and it is freed once.
    unsafe fn free<T, const LEAF: usize>(self) {
        // SAFETY: the node was made by `new_node` from a box of this type (its level says
        // which), and the caller's promise.
        unsafe {
            if self.leaf {
                drop(Box::from_raw(self.node.cast::<[T; LEAF]>().as_ptr()));
            } else {
                drop(Box::from_raw(self.node.cast::<Branch>().as_ptr()));
            }
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
        for child in children {
            // SAFETY: the children are the caller's too.
            unsafe { free_tree::<T, LEAF>(child, depth - 1) };
        }
    }
    let made = root.made;
    // SAFETY: the caller's promise.
    unsafe { Retired { node, leaf, made }.free::<T, LEAF>() };
}

/// What a live snapshot keeps alive.
struct Pin<T, const LEAF: usize> {
    /// The version the snapshot was taken under.
    tag: u64,
    token: Arc<Token<T, LEAF>>,
    nodes: Vec<Retired>,
}

/// Shared by a snapshot and its clones; the writer learns from its count when they are
/// all gone.
pub(super) struct Token<T, const LEAF: usize> {
    /// Set when the writer went first: freed with the last token that holds it.
    remains: OnceLock<Arc<Remains<T, LEAF>>>,
}

/// What a writer that went first left to its live snapshots.
struct Remains<T, const LEAF: usize> {
    root: Slot,
    depth: u32,
    retired: Vec<Retired>,
    items: PhantomData<T>,
}

impl<T, const LEAF: usize> Drop for Remains<T, LEAF> {
    fn drop(&mut self) {
        for node in self.retired.drain(..) {
            // SAFETY: the last snapshot that could reach it is gone, and so is the writer.
            unsafe { node.free::<T, LEAF>() };
        }
        // SAFETY: the writer's tree, left to the snapshots; the last of them is gone.
        unsafe { free_tree::<T, LEAF>(self.root, self.depth) };
    }
}

/// The writer's bookkeeping: its version and the pins of snapshots that may be alive.
pub(super) struct Owner<T, const LEAF: usize> {
    version: u64,
    /// Oldest first: their tags rise, every one below `version`.
    pins: Vec<Pin<T, LEAF>>,
}

impl<T, const LEAF: usize> Owner<T, LEAF> {
    pub fn new() -> Owner<T, LEAF> {
        Owner {
            version: 0,
            pins: Vec::new(),
        }
    }

    /// Nodes made under this version are the writer's alone.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A token for a snapshot of the tree as it is now: the writes after it copy what it
    /// reaches. Frees first what the snapshots gone since the last call kept.
    pub fn pin(&mut self) -> Arc<Token<T, LEAF>> {
        self.release_unpinned();
        let token = Arc::new(Token {
            remains: OnceLock::new(),
        });
        self.pins.push(Pin {
            tag: self.version,
            token: token.clone(),
            nodes: Vec::new(),
        });
        self.version += 1;
        token
    }

    /// A node the writer no longer reaches, made under version `made`.
    fn retire(&mut self, node: NonNull<u8>, leaf: bool, made: u64) {
        let retired = Retired { node, leaf, made };
        // Every pin is older than this version: the newest is the one, if made after it.
        match self.pins.last_mut().filter(|pin| pin.tag >= made) {
            Some(pin) => pin.nodes.push(retired),
            // SAFETY: the writer replaced it and no snapshot that could read it is left.
            None => unsafe { retired.free::<T, LEAF>() },
        }
    }

    /// Pins whose token no snapshot holds: their nodes go to the newest older pin that
    /// may still reach them, or are freed.
    fn release_unpinned(&mut self) {
        // Oldest first, so a node moves only to a pin still held. `get_mut` succeeds on
        // the last holder, after every other holder's drop.
        let mut at = 0;
        while at < self.pins.len() {
            if Arc::get_mut(&mut self.pins[at].token).is_none() {
                at += 1;
                continue;
            }
            let pin = self.pins.remove(at);
            for node in pin.nodes {
                // The newest pin older than the released one, if made after it.
                match self.pins[..at]
                    .last_mut()
                    .filter(|older| older.tag >= node.made)
                {
                    Some(older) => older.nodes.push(node),
                    // SAFETY: every snapshot that could read it is gone.
                    None => unsafe { node.free::<T, LEAF>() },
                }
            }
        }
    }

    /// The writer is going: frees what no snapshot reaches, and leaves its tree and the
    /// pinned nodes to the snapshots still alive.
    pub fn hand_over(&mut self, root: Slot, depth: u32) {
        self.release_unpinned();
        let pins = std::mem::take(&mut self.pins);
        if pins.is_empty() {
            // SAFETY: no snapshot is left, and the tree is the writer's.
            unsafe { free_tree::<T, LEAF>(root, depth) };
            return;
        }
        let mut remains = Remains {
            root,
            depth,
            retired: Vec::new(),
            items: PhantomData,
        };
        let mut tokens = Vec::with_capacity(pins.len());
        for pin in pins {
            remains.retired.extend(pin.nodes);
            tokens.push(pin.token);
        }
        let remains = Arc::new(remains);
        for token in &tokens {
            // Each token is set once: by this writer, as it goes.
            let _ = token.remains.set(remains.clone());
        }
    }

    /// Replaced nodes kept for snapshots that may be alive.
    #[cfg(test)]
    pub fn pinned(&self) -> usize {
        self.pins.iter().map(|pin| pin.nodes.len()).sum()
    }

    /// A slot for `node`, made under this version.
    fn made<X>(&self, node: Box<X>) -> Slot {
        Slot {
            node: Some(new_node(node)),
            made: self.version,
        }
    }

    /// The branch in `slot`, made first (empty) or copied (when a snapshot may read it).
    pub fn writable_branch<'s>(&mut self, slot: &'s mut Slot) -> &'s mut Branch {
        match slot.node {
            None => *slot = self.made(Box::new([EMPTY; BRANCH])),
            Some(node) if slot.made != self.version => {
                // SAFETY: a live branch: its child pointers are copied, nothing counted.
                let copy = Box::new(unsafe { *node.cast::<Branch>().as_ref() });
                self.retire(node, false, slot.made);
                *slot = self.made(copy);
            }
            Some(_) => {}
        }
        let Some(node) = slot.node else {
            unreachable!("set above");
        };
        // SAFETY: a branch made under this version, which no snapshot reaches; `slot` is
        // borrowed mutably for as long.
        unsafe { node.cast::<Branch>().as_mut() }
    }
}

impl<T: Clone, const LEAF: usize> Owner<T, LEAF> {
    /// The leaf in `slot`, made first (of `fill`) or copied (when a snapshot may read it).
    pub fn writable_leaf<'s>(&mut self, slot: &'s mut Slot, fill: &T) -> &'s mut [T; LEAF] {
        match slot.node {
            None => *slot = self.made(leaf_of::<T, LEAF>(|_| fill.clone())),
            Some(node) if slot.made != self.version => {
                // SAFETY: a live leaf, read to copy it.
                let old = unsafe { node.cast::<[T; LEAF]>().as_ref() };
                let copy = leaf_of::<T, LEAF>(|i| old[i].clone());
                self.retire(node, true, slot.made);
                *slot = self.made(copy);
            }
            Some(_) => {}
        }
        let Some(node) = slot.node else {
            unreachable!("set above");
        };
        // SAFETY: a leaf made under this version, which no snapshot reaches; `slot` is
        // borrowed mutably for as long.
        unsafe { node.cast::<[T; LEAF]>().as_mut() }
    }
}

/// A leaf of `item(0)`, `item(1)`, ... written straight into its allocation.
fn leaf_of<T, const LEAF: usize>(mut item: impl FnMut(usize) -> T) -> Box<[T; LEAF]> {
    let mut leaf = Box::<[T; LEAF]>::new_uninit();
    let items = leaf.as_mut_ptr().cast::<T>();
    for i in 0..LEAF {
        // SAFETY: `i` is within the leaf; each item is written once.
        unsafe { items.add(i).write(item(i)) };
    }
    // SAFETY: every item was written.
    unsafe { leaf.assume_init() }
}
