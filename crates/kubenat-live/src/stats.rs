//! The counters `kubenat run` prints on SIGUSR1 or every `--stats SECONDS`: one JSON object
//! per line on stderr, so a tool can follow a run with `jq` or a line reader.

use std::time::{Duration, Instant as WallClock};

use kubenat_core::Engine;
use serde_json::{Map, Value, json};

use crate::datapath::Totals;

/// What the last report said, for the rates of the next.
pub struct Reporter {
    started: WallClock,
    last: WallClock,
    last_totals: Totals,
    every: Option<Duration>,
}

impl Reporter {
    /// Reports every `every` (none: only when asked).
    pub fn new(every: Option<Duration>) -> Reporter {
        let now = WallClock::now();
        Reporter {
            started: now,
            last: now,
            last_totals: Totals::default(),
            every,
        }
    }

    /// How long until the next periodic report is due (`None`: none is).
    pub fn due_in(&self) -> Option<Duration> {
        self.every
            .map(|every| every.saturating_sub(self.last.elapsed()))
    }

    /// Prints a report when the period has passed.
    pub fn tick(&mut self, engine: &Engine, totals: &Totals) {
        if self.due_in() == Some(Duration::ZERO) {
            self.report(engine, totals);
        }
    }

    /// Prints one report now.
    pub fn report(&mut self, engine: &Engine, totals: &Totals) {
        let line = self.line(engine, totals);
        eprintln!("{line}");
        self.last = WallClock::now();
        self.last_totals = *totals;
    }

    /// The report as one JSON object: counts per verdict and per reason since the start,
    /// conntrack occupancy, packets per second in and out since the previous report.
    fn line(&self, engine: &Engine, totals: &Totals) -> Value {
        let seconds = self.last.elapsed().as_secs_f64().max(1e-9);
        let rate = |now: u64, before: u64| (now.saturating_sub(before)) as f64 / seconds;
        let counters = engine.counters();
        json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "packets_in": totals.received,
            "packets_out": totals.sent,
            "send_errors": totals.send_errors,
            "packets_in_per_second": rate(totals.received, self.last_totals.received),
            "packets_out_per_second": rate(totals.sent, self.last_totals.sent),
            "verdicts": {
                "accept": counters.accepted,
                "translated": counters.translated,
                "drop": counters.dropped,
                "reject": counters.rejected,
            },
            "drop_reasons": seen(counters.drop_reasons()),
            "reject_reasons": seen(counters.reject_reasons()),
            "connections": engine.connections(),
            "conntrack_max": engine.conntrack_capacity(),
        })
    }
}

/// The reasons seen at least once, by name.
fn seen<R: std::fmt::Display>(counts: impl Iterator<Item = (R, u64)>) -> Map<String, Value> {
    counts
        .filter(|&(_, n)| n > 0)
        .map(|(reason, n)| (reason.to_string(), Value::from(n)))
        .collect()
}
