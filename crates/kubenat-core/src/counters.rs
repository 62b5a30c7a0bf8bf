//! Packet counters per verdict and per reason, readable as a snapshot.

use crate::verdict::{DropReason, RejectReason, Verdict};

/// How many packets got each verdict, and each drop and reject reason.
///
/// Every call of [`Engine::process`](crate::Engine::process) and its variants counts once
/// (a [`process_path`](crate::Engine::process_path) call once for both hooks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets passed untouched ([`Verdict::Accept`]).
    pub accepted: u64,
    /// Packets rewritten ([`Verdict::Translated`]).
    pub translated: u64,
    /// Packets dropped, all reasons ([`Verdict::Drop`]).
    pub dropped: u64,
    /// Packets rejected, all reasons ([`Verdict::Reject`]).
    pub rejected: u64,
    drops: [u64; DropReason::ALL.len()],
    rejects: [u64; RejectReason::ALL.len()],
}

impl Counters {
    #[inline]
    pub(crate) fn record(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Accept => self.accepted += 1,
            Verdict::Translated(_) => self.translated += 1,
            Verdict::Drop(reason) => {
                self.dropped += 1;
                self.drops[*reason as usize] += 1;
            }
            Verdict::Reject(reason) => {
                self.rejected += 1;
                self.rejects[*reason as usize] += 1;
            }
        }
    }

    /// Packets seen: the sum of every verdict.
    pub fn total(&self) -> u64 {
        self.accepted + self.translated + self.dropped + self.rejected
    }

    /// Packets dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Packets rejected for `reason`.
    pub fn rejects(&self, reason: RejectReason) -> u64 {
        self.rejects[reason as usize]
    }

    /// Every drop reason with its count, in the enum's order (zeros included).
    pub fn drop_reasons(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.drops(r)))
    }

    /// Every reject reason with its count, in the enum's order (zeros included).
    pub fn reject_reasons(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL.iter().map(|&r| (r, self.rejects(r)))
    }
}
