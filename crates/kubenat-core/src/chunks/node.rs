//! The tree's nodes above the leaves: the slot that holds a child, and the branch of
//! sixteen.

use std::ptr::NonNull;

/// log2 of the branch width.
pub(super) const BRANCH_BITS: u32 = 4;
pub(super) const BRANCH: usize = 1 << BRANCH_BITS;

/// A child: the node (a branch, or a leaf at the bottom level), and the writer's version
/// when it was made, which says whether a snapshot may read it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// `None`: never written, every item below reads as the fill value.
    pub node: Option<NonNull<u8>>,
    pub made: u64,
}

pub(super) const EMPTY: Slot = Slot {
    node: None,
    made: 0,
};

impl Slot {
    /// The slot's two fields, writable where they are.
    pub fn as_mut(&mut self) -> SlotMut<'_> {
        SlotMut {
            node: &mut self.node,
            made: &mut self.made,
        }
    }
}

/// A slot written in place: the root, or one of a branch's children.
pub(super) struct SlotMut<'a> {
    pub node: &'a mut Option<NonNull<u8>>,
    pub made: &'a mut u64,
}

/// Sixteen children. Their nodes and versions are kept apart: a read walks the nodes
/// only, so it reaches 16 children through two cache lines, not four (at a million items
/// the lowest level's branches do not stay in cache). Only the writer reads the versions.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Branch {
    pub nodes: [Option<NonNull<u8>>; BRANCH],
    made: [u64; BRANCH],
}

impl Branch {
    pub const EMPTY: Branch = Branch {
        nodes: [None; BRANCH],
        made: [0; BRANCH],
    };

    /// The branch of `children(0)`, `children(1)`, ...
    pub fn from_slots(mut children: impl FnMut(usize) -> Slot) -> Branch {
        let mut branch = Branch::EMPTY;
        for i in 0..BRANCH {
            branch.set(i, children(i));
        }
        branch
    }

    pub fn slot(&self, i: usize) -> Slot {
        Slot {
            node: self.nodes[i],
            made: self.made[i],
        }
    }

    pub fn set(&mut self, i: usize, slot: Slot) {
        self.nodes[i] = slot.node;
        self.made[i] = slot.made;
    }

    pub fn slot_mut(&mut self, i: usize) -> SlotMut<'_> {
        SlotMut {
            node: &mut self.nodes[i],
            made: &mut self.made[i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_reaches_the_children_through_two_cache_lines() {
        assert_eq!(std::mem::align_of::<Branch>(), 64);
        assert_eq!(std::mem::offset_of!(Branch, nodes), 0);
        assert_eq!(std::mem::size_of::<[Option<NonNull<u8>>; BRANCH]>(), 128);
    }
}
