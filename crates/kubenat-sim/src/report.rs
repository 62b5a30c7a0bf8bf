//! The result of a run: the journeys, the totals, the timed events' costs and the places
//! for a diagram, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::clock::{Instant, millis};
use crate::disruption::Disruption;
use crate::journey::Journey;

/// Packets and bytes carried by one link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// One node's engine counters at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    pub node: String,
    pub accepted: u64,
    pub translated: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub connections: usize,
    /// Packets the node could not route (no owner for the destination, or addressed to the
    /// node itself, which runs no applications in this simulator).
    pub unrouted: u64,
}

/// Totals over the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Requests per serving pod.
    pub served_by: BTreeMap<String, u32>,
    /// The pods in the order they served (the alternation).
    pub sequence: Vec<String>,
    pub simulated_ns: u64,
    pub events: u64,
    pub unattributed_hops: u64,
    pub links: Vec<LinkStats>,
    pub nodes: Vec<NodeStats>,
}

/// A machine, node or pod of the run, for the lanes of a sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    pub name: String,
    /// `machine` (on the LAN), `node` or `pod`.
    pub kind: &'static str,
    pub ip: Ipv4Addr,
    /// The node a pod runs on.
    pub node: Option<String>,
    /// When it started (pods rescheduled during the run start late).
    pub since_ns: u64,
    /// When it stopped, if it did.
    pub until_ns: Option<u64>,
}

/// The result of a run: renders as text ([`fmt::Display`]) or JSON ([`Report::to_json`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub journeys: Vec<Journey>,
    pub summary: Summary,
    /// The scenario's timed events and what they cost.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disruptions: Vec<Disruption>,
    /// Everything with an address, in the order it appeared.
    pub places: Vec<Place>,
}

impl Report {
    /// Pretty JSON, stable across runs of the same seed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} (seed {})", self.scenario, self.seed)?;
        for j in &self.journeys {
            let result = match (&j.outcome.status, &j.outcome.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => format!("FAILED: {error}"),
                (None, None) => "unfinished".to_string(),
            };
            let took = j.finished_ns.map_or_else(String::new, |end| {
                format!(" in {:.3} ms", (end - j.started_ns) as f64 / 1e6)
            });
            writeln!(f)?;
            writeln!(f, "request {}: {} -> {result}{took}", j.id, j.label)?;
            if let Some(pod) = &j.outcome.served_by {
                writeln!(f, "  served by {pod}")?;
            }
            for hop in &j.hops {
                let at = millis(Instant::from_nanos(hop.at_ns));
                writeln!(f, "  {at:>9.3} ms  {:<42} {}", hop.at, hop.step)?;
            }
        }
        let s = &self.summary;
        writeln!(f)?;
        writeln!(
            f,
            "{} requests: {} succeeded, {} failed",
            s.requests, s.succeeded, s.failed
        )?;
        let mut line = String::new();
        for (pod, n) in &s.served_by {
            let _ = write!(line, " {pod}={n}");
        }
        writeln!(f, "served by:{line}")?;
        writeln!(f, "sequence: {}", s.sequence.join(" -> "))?;
        writeln!(
            f,
            "simulated {:.3} ms, {} events, {} unattributed hops",
            s.simulated_ns as f64 / 1e6,
            s.events,
            s.unattributed_hops
        )?;
        for n in &s.nodes {
            writeln!(
                f,
                "node {:<6} accepted {:>4} translated {:>4} dropped {} rejected {} unrouted {} connections {}",
                n.node, n.accepted, n.translated, n.dropped, n.rejected, n.unrouted, n.connections
            )?;
        }
        for l in &s.links {
            writeln!(
                f,
                "link {:<40} {:>5} packets {:>8} bytes",
                l.name, l.packets, l.bytes
            )?;
        }
        for d in &self.disruptions {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
