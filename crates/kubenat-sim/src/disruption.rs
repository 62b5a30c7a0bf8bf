//! What a timed event did to the cluster and to the traffic: the pods moved, when their
//! endpoints left and their replacements joined every node's rules, and the requests lost
//! in between.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::journey::{Journey, RequestId};

/// What a [`Move`] did to a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A pod stopped and was recreated (a death, a drain, a rollout's step).
    Replaced,
    /// A scale-up started a pod where there was none.
    Started,
    /// A scale-down stopped a pod for good.
    Stopped,
}

/// One pod stopped and (if a node could take it) recreated elsewhere; or, for a scale, one
/// pod started or stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Move {
    pub change: Change,
    /// The pod stopped; `None` (and its node and address) for a pod a scale-up started.
    pub pod: Option<String>,
    pub from_node: Option<String>,
    pub from_ip: Option<Ipv4Addr>,
    /// The replacement's name (a StatefulSet pod keeps its own); `None`: no node could
    /// take it, it stays pending (or, for [`Change::Stopped`], none was wanted).
    pub to_pod: Option<String>,
    pub to_node: Option<String>,
    pub to_ip: Option<Ipv4Addr>,
    /// The EndpointSlices (`namespace/name`) that listed the stopped pod, or that the
    /// started one joins.
    pub slices: Vec<String>,
    /// When the stopped pod's address left every node's rules.
    pub endpoints_removed_ns: Option<u64>,
    /// When the replacement was running and in every node's rules.
    pub ready_ns: Option<u64>,
}

/// One timed event and its consequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Disruption {
    pub at_ns: u64,
    /// `kill pod mariadb-0`, `drain node nodob`.
    pub event: String,
    pub moves: Vec<Move>,
    /// When every replacement was ready; `None` if one never was.
    pub recovered_ns: Option<u64>,
    /// Requests that failed while the change was under way: they had not finished when it
    /// started and had started before it was over.
    pub lost: Vec<RequestId>,
    /// Requests that started after the recovery and still failed: what the change broke
    /// for good (a client holding on to the dead pod's address).
    pub failed_after: Vec<RequestId>,
}

impl Disruption {
    /// Fills [`Disruption::lost`] from the journeys.
    pub fn account(&mut self, journeys: &[Journey]) {
        let end = self.recovered_ns.unwrap_or(u64::MAX);
        self.lost = journeys
            .iter()
            .filter(|j| {
                !j.outcome.ok()
                    && j.started_ns <= end
                    && j.finished_ns.is_none_or(|f| f >= self.at_ns)
            })
            .map(|j| j.id)
            .collect();
        self.failed_after = journeys
            .iter()
            .filter(|j| !j.outcome.ok() && j.started_ns > end)
            .map(|j| j.id)
            .collect();
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "event at {}: {}", ms(self.at_ns), self.event)?;
        for m in &self.moves {
            match (&m.pod, &m.from_node, &m.from_ip) {
                (Some(pod), Some(node), Some(ip)) => {
                    write!(f, "  pod {pod} on {node} ({ip}) stopped")?
                }
                _ => write!(f, "  new pod")?,
            }
            match (&m.to_pod, &m.to_node, &m.to_ip, m.change) {
                (Some(pod), Some(node), Some(ip), Change::Started) => {
                    writeln!(f, " {pod} on {node} ({ip})")?
                }
                (Some(pod), Some(node), Some(ip), _) => {
                    writeln!(f, "; rescheduled as {pod} on {node} ({ip})")?
                }
                (.., Change::Stopped) => writeln!(f, "; scaled down")?,
                _ => writeln!(f, "; no node can take it: pending")?,
            }
            if let (Some(t), Some(ip)) = (m.endpoints_removed_ns, m.from_ip) {
                writeln!(
                    f,
                    "    {}: {ip} out of {} on every node",
                    ms(t),
                    m.slices.join(", ")
                )?;
            }
            if let (Some(t), Some(ip)) = (m.ready_ns, m.to_ip) {
                writeln!(f, "    {}: {ip} ready, in every node's rules", ms(t))?;
            }
        }
        match self.recovered_ns {
            Some(t) => write!(f, "  recovered at {}", ms(t))?,
            None => write!(f, "  not recovered")?,
        }
        let list = |ids: &[RequestId]| {
            ids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.lost.is_empty() {
            writeln!(f, "; no request lost")?;
        } else {
            writeln!(
                f,
                "; {} request(s) lost: {}",
                self.lost.len(),
                list(&self.lost)
            )?;
        }
        if !self.failed_after.is_empty() {
            writeln!(
                f,
                "  {} request(s) failed after the recovery: {}",
                self.failed_after.len(),
                list(&self.failed_after)
            )?;
        }
        Ok(())
    }
}
