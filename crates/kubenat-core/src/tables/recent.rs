//! The changes of the last few generations, for engines catching up with a snapshot.
//!
//! Each change is logged once, linked to the one before it by a weak pointer; the writer
//! holds the last [`RECENT_CHANGES`] strongly, and a snapshot holds only the newest. So a
//! snapshot costs one reference count, where a copy of the window cost one per change
//! (and as many again when the snapshot went), and an engine walks back from its new
//! snapshot to the generation it had for as long as the writer's window reaches.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use super::Changed;

/// How many generations' changes the writer keeps: an engine further behind treats
/// everything as changed.
const RECENT_CHANGES: usize = 16;

/// One generation's change, and the change before it while it is kept.
#[derive(Debug)]
struct Logged {
    generation: u64,
    change: Changed,
    before: Weak<Logged>,
}

/// The log as a writer or a snapshot holds it.
#[derive(Debug, Default)]
pub(super) struct RecentChanges {
    newest: Option<Arc<Logged>>,
    /// The writer's alone: what keeps the last changes alive.
    window: VecDeque<Arc<Logged>>,
}

impl RecentChanges {
    /// A snapshot's view: the newest change, and through it those the writer still keeps.
    pub fn snapshot(&self) -> RecentChanges {
        RecentChanges {
            newest: self.newest.clone(),
            window: VecDeque::new(),
        }
    }

    /// A writer's copy (after a recompile of everything), keeping the same window.
    pub fn writer_copy(&self) -> RecentChanges {
        RecentChanges {
            newest: self.newest.clone(),
            window: self.window.clone(),
        }
    }

    /// Logs the change that made `generation`, the one after the newest logged.
    pub fn push(&mut self, generation: u64, change: Changed) {
        let before = self.newest.as_ref().map_or_else(Weak::new, Arc::downgrade);
        let logged = Arc::new(Logged {
            generation,
            change,
            before,
        });
        if self.window.len() == RECENT_CHANGES {
            self.window.pop_front();
        }
        self.window.push_back(logged.clone());
        self.newest = Some(logged);
    }

    /// Calls `each` with every change after generation `since` up to the newest, newest
    /// first; false when one of them is no longer kept (treat everything as changed).
    pub fn each_since(&self, since: u64, mut each: impl FnMut(&Changed)) -> bool {
        let mut logged = self.newest.clone();
        while let Some(change) = logged {
            if change.generation <= since {
                return true;
            }
            each(&change.change);
            if change.generation == since + 1 {
                return true;
            }
            logged = change.before.upgrade();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::ServicePortId;

    fn change(generation: u64) -> Changed {
        Changed::Ports {
            ids: Box::new([ServicePortId(generation as u32)]),
            udp: false,
        }
    }

    /// The generations `each_since(since)` reports, newest first, and whether all were kept.
    fn since(log: &RecentChanges, since: u64) -> (Vec<u32>, bool) {
        let mut seen = Vec::new();
        let kept = log.each_since(since, |change| {
            if let Changed::Ports { ids, .. } = change {
                seen.push(ids[0].0);
            }
        });
        (seen, kept)
    }

    #[test]
    fn an_engine_catches_up_within_the_writers_window() {
        let mut writer = RecentChanges::default();
        for generation in 1..=40 {
            writer.push(generation, change(generation));
        }
        let snapshot = writer.snapshot();
        let window: Vec<u32> = (25..=40).rev().collect();
        for (from, expected, kept) in [
            (40, vec![], true),
            (39, vec![40], true),
            (30, (31..=40).rev().collect(), true),
            (24, window.clone(), true),
            // Generation 24 is no longer kept: everything counts as changed.
            (23, window, false),
            (0, (25..=40).rev().collect(), false),
        ] {
            assert_eq!(
                since(&snapshot, from),
                (expected.clone(), kept),
                "since {from}"
            );
            assert_eq!(
                since(&writer, from),
                (expected, kept),
                "writer, since {from}"
            );
        }
    }

    #[test]
    fn a_snapshot_keeps_its_newest_change_and_what_later_ones_hold() {
        let mut writer = RecentChanges::default();
        writer.push(1, change(1));
        writer.push(2, change(2));
        let old = writer.snapshot();
        for generation in 3..=40 {
            writer.push(generation, change(generation));
        }
        // Its own change outlives the writer's window; the one before is gone.
        assert_eq!(since(&old, 1), (vec![2], true));
        assert_eq!(since(&old, 0), (vec![2], false));
        let copy = writer.writer_copy();
        drop(writer);
        assert_eq!(since(&copy, 38), (vec![40, 39], true));
        assert_eq!(since(&RecentChanges::default(), 0), (vec![], false));
    }
}
