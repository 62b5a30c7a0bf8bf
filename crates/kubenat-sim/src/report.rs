//! The result of a run: the journeys, the totals, the timed events' costs and the places
//! for a diagram, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::clock::{Instant, millis};
use crate::disruption::Disruption;
use crate::journey::{Hop, Journey};

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
    /// Requests lost to the timed events (each counted once); absent without events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<usize>,
    /// How fast EndpointSlice changes reached every node; absent without changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub programming: Option<ProgrammingLatency>,
}

/// One EndpointSlice change and when the last node's kube-proxy applied it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Programming {
    /// When the control plane changed the slices.
    pub at_ns: u64,
    /// The slices changed (`namespace/name`).
    pub slices: Vec<String>,
    /// When the last node applied it; `None` if the run ended first.
    pub applied_ns: Option<u64>,
}

/// Network programming latency over a run's EndpointSlice changes: from a change to the
/// last node applying it, in simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgrammingLatency {
    /// Changes applied on every node (those the run ended before are left out).
    pub changes: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl ProgrammingLatency {
    /// Over `changes`; `None` when none was applied everywhere.
    pub fn of(changes: &[Programming]) -> Option<ProgrammingLatency> {
        let mut latencies: Vec<u64> = changes
            .iter()
            .filter_map(|c| Some(c.applied_ns? - c.at_ns))
            .collect();
        latencies.sort_unstable();
        if latencies.is_empty() {
            return None;
        }
        // The nearest-rank percentile: the smallest latency at least p% of changes had.
        let rank = |p: usize| latencies[(latencies.len() * p).div_ceil(100).max(1) - 1];
        Some(ProgrammingLatency {
            changes: latencies.len(),
            p50_ns: rank(50),
            p99_ns: rank(99),
            max_ns: *latencies.last()?,
        })
    }
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
    /// Every EndpointSlice change, in order, and when the last node applied it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub programming: Vec<Programming>,
    /// Everything with an address, in the order it appeared.
    pub places: Vec<Place>,
}

impl Report {
    /// Pretty JSON, stable across runs of the same seed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }
}

/// One hop as the report prints it: the time, the place, what happened (the browser
/// playground lists the same lines).
pub fn hop_line(hop: &Hop) -> String {
    let at = millis(Instant::from_nanos(hop.at_ns));
    format!("{at:>9.3} ms  {:<42} {}", hop.at, hop.step)
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
                writeln!(f, "  {}", hop_line(hop))?;
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
        if let Some(lost) = s.lost {
            writeln!(f, "requests lost to the events: {lost}")?;
        }
        if let Some(p) = &s.programming {
            let ms = |ns: u64| ns as f64 / 1e6;
            writeln!(
                f,
                "network programming: {} EndpointSlice changes, to the last node p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                p.changes,
                ms(p.p50_ns),
                ms(p.p99_ns),
                ms(p.max_ns)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Action;
    use kubenat_core::ServiceName;

    #[test]
    fn programming_percentiles_are_nearest_rank() {
        let change = |latency: u64| Programming {
            at_ns: 1_000,
            slices: Vec::new(),
            applied_ns: Some(1_000 + latency),
        };
        let unapplied = Programming {
            applied_ns: None,
            ..change(0)
        };
        assert_eq!(ProgrammingLatency::of(&[]), None);
        assert_eq!(
            ProgrammingLatency::of(std::slice::from_ref(&unapplied)),
            None
        );
        let mut changes: Vec<Programming> = (1..=100).rev().map(change).collect();
        changes.push(unapplied);
        let p = ProgrammingLatency::of(&changes).unwrap();
        assert_eq!(
            (p.changes, p.p50_ns, p.p99_ns, p.max_ns),
            (100, 50, 99, 100)
        );
        let p = ProgrammingLatency::of(&[change(7)]).unwrap();
        assert_eq!((p.changes, p.p50_ns, p.p99_ns, p.max_ns), (1, 7, 7, 7));
    }

    #[test]
    fn deployments_own_the_pods_named_after_them() {
        let wordpress = ServiceName::new("default", "wordpress");
        let svc = ServiceName::new("default", "svc-3");
        for (deployment, namespace, pod, owned) in [
            (&wordpress, "default", "wordpress-5d8f7c9b6-abcde", true),
            (&wordpress, "default", "wordpress-0", true),
            (&wordpress, "other", "wordpress-5d8f7c9b6-abcde", false),
            (&wordpress, "default", "wordpress", false),
            (&wordpress, "default", "wordpress-", false),
            (&wordpress, "default", "wordpressx-1", false),
            (&wordpress, "default", "wordpress-db-5d8f7c9b6-abcde", false),
            (&svc, "default", "svc-3-0", true),
            (&svc, "default", "svc-30-0", false),
        ] {
            assert_eq!(
                Action::in_deployment(deployment, namespace, pod),
                owned,
                "{deployment} {namespace}/{pod}"
            );
        }
    }
}
