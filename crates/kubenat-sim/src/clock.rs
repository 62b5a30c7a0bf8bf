//! Simulated time and seeded randomness: nothing in the simulator reads a wall clock or
//! the operating system's entropy.
//!
//! Time is [`kubenat_core::Instant`] (nanoseconds from the start of the run), the same clock
//! the engines take; smoltcp counts microseconds, so the two convert here.

use std::time::Duration;

pub use kubenat_core::Instant;

/// smoltcp's view of `t` (microseconds, truncated).
pub fn to_smoltcp(t: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(t.as_nanos() / 1_000).unwrap_or(i64::MAX))
}

/// The simulator's view of a smoltcp instant.
pub fn from_smoltcp(t: smoltcp::time::Instant) -> Instant {
    let micros = u64::try_from(t.total_micros()).unwrap_or(0);
    Instant::from_nanos(micros.saturating_mul(1_000))
}

/// `t` in milliseconds since the start of the run, for people.
pub fn millis(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e6
}

/// One microsecond: the smallest step smoltcp can tell apart.
pub const TICK: Duration = Duration::from_micros(1);

/// splitmix64: small, fast and the same on every platform. Every random choice of a run
/// (ephemeral ports, DNS ids, TCP initial sequence numbers, masquerade ports) comes from one
/// of these, forked from the scenario's seed, so a seed replays the run exactly.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An independent generator for a sub-component, so adding draws in one place does not
    /// shift every other component's sequence.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}
