//! Time as the caller gives it: the engine never reads a clock.

use std::ops::Add;
use std::time::Duration;

/// A point in the caller's time, in nanoseconds from an epoch the caller chooses (boot,
/// the start of a capture, the start of a simulation). Only differences matter.
///
/// Adding a [`Duration`] saturates at [`Instant::NEVER`]. To feed a real clock, convert
/// once, e.g. `Instant::from_nanos(start.elapsed().as_nanos() as u64)` with a
/// [`std::time::Instant`] `start` taken when the engine was made.
///
/// ```
/// use std::time::Duration;
/// use kubenat_core::Instant;
///
/// let t = Instant::from_secs(2) + Duration::from_millis(500);
/// assert_eq!(t, Instant::from_millis(2_500));
/// assert_eq!(t.saturating_since(Instant::from_secs(1)), Duration::from_millis(1_500));
/// assert_eq!(Instant::NEVER + Duration::from_secs(1), Instant::NEVER);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// `nanos` later, at most the latest instant.
    #[inline(always)]
    pub(crate) const fn plus_nanos(self, nanos: u64) -> Instant {
        Instant(self.0.saturating_add(nanos))
    }

    /// The epoch. A new engine starts here.
    pub const ZERO: Instant = Instant(0);
    /// Later than any time a caller will pass: "no deadline".
    pub const NEVER: Instant = Instant(u64::MAX);

    /// `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// `secs` seconds after the epoch (saturating at [`Instant::NEVER`]).
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// `millis` milliseconds after the epoch (saturating at [`Instant::NEVER`]).
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since `earlier`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        self.plus_nanos(saturating_nanos(rhs))
    }
}

/// A duration in nanoseconds, at most `u64::MAX` (about 584 years).
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
