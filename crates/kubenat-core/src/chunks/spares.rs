//! The memory of freed nodes, kept for the writer's next copies: one update retires about
//! as many nodes as it makes, so at a steady rate of changes the allocator is not called
//! (a third of a one-Service update's instructions went to it), and the lines of a node
//! just freed (read when it was copied) are likely still in cache. A few dozen of each
//! kind are kept; the rest go back to the allocator.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::Branch;

/// Drops the items of a leaf (nothing for a branch); its memory stays.
///
/// # Safety
/// `node` is a live node of the kind `leaf` says, and nothing reads its items after.
pub(super) unsafe fn drop_items<T, const LEAF: usize>(node: NonNull<u8>, leaf: bool) {
    if leaf {
        // SAFETY: the caller's promise; a leaf is a `[T; LEAF]`.
        unsafe { std::ptr::drop_in_place(node.cast::<[T; LEAF]>().as_ptr()) };
    }
}

/// Hands a node's memory (its items dropped) back to the allocator.
///
/// # Safety
/// `node` was allocated as the kind `leaf` says, and nothing reaches it.
pub(super) unsafe fn deallocate<T, const LEAF: usize>(node: NonNull<u8>, leaf: bool) {
    // SAFETY: allocated as a box of this type (`new_node` or `Spares::take`); uninitialised
    // memory drops nothing.
    unsafe {
        if leaf {
            drop(Box::from_raw(
                node.cast::<MaybeUninit<[T; LEAF]>>().as_ptr(),
            ));
        } else {
            drop(Box::from_raw(node.cast::<MaybeUninit<Branch>>().as_ptr()));
        }
    }
}

/// How many freed nodes of each kind are kept: a few updates' worth (one retires a leaf
/// and a branch per level in each array).
pub(super) const SPARES: usize = 32;

/// The memory of freed nodes, their items dropped: leaves and branches.
pub(super) struct Spares<T, const LEAF: usize> {
    leaves: Vec<NonNull<u8>>,
    branches: Vec<NonNull<u8>>,
    items: PhantomData<T>,
}

impl<T, const LEAF: usize> Spares<T, LEAF> {
    pub fn new() -> Spares<T, LEAF> {
        Spares {
            leaves: Vec::new(),
            branches: Vec::new(),
            items: PhantomData,
        }
    }

    fn of(&mut self, leaf: bool) -> &mut Vec<NonNull<u8>> {
        if leaf {
            &mut self.leaves
        } else {
            &mut self.branches
        }
    }

    /// Keeps `node`'s memory, or frees it when enough are kept.
    ///
    /// # Safety
    /// `node` was allocated as the kind `leaf` says, holds no live items, and nothing
    /// reaches it.
    pub unsafe fn keep(&mut self, node: NonNull<u8>, leaf: bool) {
        let kept = self.of(leaf);
        if kept.len() < SPARES {
            kept.push(node);
        } else {
            // SAFETY: the caller's promise.
            unsafe { deallocate::<T, LEAF>(node, leaf) };
        }
    }

    /// Memory for a node of type `X`: a kept one of the kind `leaf` says, or a new one.
    ///
    /// # Safety
    /// `X` is `[T; LEAF]` for a leaf, [`Branch`] otherwise.
    pub unsafe fn take<X>(&mut self, leaf: bool) -> NonNull<MaybeUninit<X>> {
        match self.of(leaf).pop() {
            Some(node) => node.cast(),
            None => NonNull::from(Box::leak(Box::<X>::new_uninit())),
        }
    }

    /// Moves the nodes `other` keeps here, up to the bound; frees the rest.
    pub fn take_all(&mut self, other: &mut Spares<T, LEAF>) {
        for leaf in [true, false] {
            for node in other.of(leaf).drain(..) {
                // SAFETY: kept by `other` under the same promise.
                unsafe { self.keep(node, leaf) };
            }
        }
    }

    /// Nodes kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.leaves.len() + self.branches.len()
    }
}

impl<T, const LEAF: usize> Drop for Spares<T, LEAF> {
    fn drop(&mut self) {
        for leaf in [true, false] {
            for node in self.of(leaf).drain(..) {
                // SAFETY: kept, so allocated as its kind, itemless and reached by nothing.
                unsafe { deallocate::<T, LEAF>(node, leaf) };
            }
        }
    }
}
