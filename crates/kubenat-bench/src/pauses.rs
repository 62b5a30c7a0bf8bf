//! The machine's own pauses, measured in the same run as the engine: what a thread that
//! never stops loses to interrupts, to other threads and, on a virtual machine, to the host
//! taking its virtual CPU away. A batch that meets one is that much slower whatever the
//! engine does, so a phase's slowest batch is at least the longest pause it met.

use std::time::{Duration, Instant as WallClock};

use serde::Serialize;

/// Gaps between consecutive clock reads of a thread spinning on the clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pauses {
    pub seconds: f64,
    pub over_50us: u64,
    pub over_100us: u64,
    pub over_1ms: u64,
    pub longest_ns: u64,
}

/// Spins on the clock for `duration` (to its first read past it) and counts the gaps
/// between its reads.
pub fn measure(duration: Duration) -> Pauses {
    let start = WallClock::now();
    let end = duration.as_nanos() as u64;
    let mut past_end = false;
    let reads = std::iter::repeat_with(|| start.elapsed().as_nanos() as u64).take_while(|&ns| {
        let more = !past_end;
        past_end = ns > end;
        more
    });
    // From the start itself: a pause before the first read counts too.
    gaps(std::iter::once(0).chain(reads))
}

/// Counts the gaps between consecutive `times` (nanoseconds, rising).
fn gaps(times: impl IntoIterator<Item = u64>) -> Pauses {
    let mut pauses = Pauses::default();
    let mut times = times.into_iter();
    let Some(first) = times.next() else {
        return pauses;
    };
    let mut last = first;
    for now in times {
        let gap = now.saturating_sub(last);
        pauses.over_50us += u64::from(gap > 50_000);
        pauses.over_100us += u64::from(gap > 100_000);
        pauses.over_1ms += u64::from(gap > 1_000_000);
        pauses.longest_ns = pauses.longest_ns.max(gap);
        last = now;
    }
    pauses.seconds = last.saturating_sub(first) as f64 / 1e9;
    pauses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gap_counts_in_every_class_it_exceeds() {
        // (clock reads in ns, over 50 us, over 100 us, over 1 ms, longest)
        let table: &[(&[u64], u64, u64, u64, u64)] = &[
            (&[], 0, 0, 0, 0),
            (&[5], 0, 0, 0, 0),
            (&[0, 50_000, 100_000], 0, 0, 0, 50_000),
            (&[0, 50_001], 1, 0, 0, 50_001),
            (&[0, 100_001, 100_050], 1, 1, 0, 100_001),
            (&[0, 10, 1_000_011, 1_000_020], 1, 1, 1, 1_000_001),
            (&[0, 60_000, 260_000, 2_260_000], 3, 2, 1, 2_000_000),
        ];
        for &(times, over_50us, over_100us, over_1ms, longest_ns) in table {
            let pauses = gaps(times.iter().copied());
            let expected = (over_50us, over_100us, over_1ms, longest_ns);
            let got = (
                pauses.over_50us,
                pauses.over_100us,
                pauses.over_1ms,
                pauses.longest_ns,
            );
            assert_eq!(got, expected, "{times:?}");
            let span = times.last().zip(times.first()).map_or(0, |(l, f)| l - f);
            assert_eq!(pauses.seconds, span as f64 / 1e9, "{times:?}");
        }
    }

    #[test]
    fn a_measurement_spins_for_about_its_duration() {
        let pauses = measure(Duration::from_millis(20));
        assert!(
            pauses.seconds > 0.020 && pauses.seconds < 10.0,
            "{pauses:?}"
        );
        assert!(pauses.over_100us <= pauses.over_50us && pauses.over_1ms <= pauses.over_100us);
    }
}
