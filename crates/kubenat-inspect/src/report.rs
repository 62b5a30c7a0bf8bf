//! `kubenat trace` output: the JSON contract and the text a person reads.

use std::fmt::Write as _;

use kubenat_core::{Path, Verdict};
use serde::Serialize;

use crate::probe::Report;

/// The JSON of `kubenat trace --output json`. A contract: fields are only ever added.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TraceJson {
    /// `translated`, `accept`, `reject` or `drop`.
    pub verdict: &'static str,
    /// `"ip:port"`, `"[v6]:port"`, or null when the packet was not sent to an endpoint.
    pub endpoint: Option<String>,
    pub masquerade: bool,
    /// The drop or reject reason, or null.
    pub reason: Option<&'static str>,
    /// `"namespace/name:portname"` of the matched service port, or null.
    pub service: Option<String>,
    pub steps: Vec<String>,
}

pub fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Translated(_) => "translated",
        Verdict::Accept => "accept",
        Verdict::Reject(_) => "reject",
        Verdict::Drop(_) => "drop",
        _ => "other",
    }
}

pub fn verdict_reason(verdict: &Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Drop(reason) => Some(reason.as_str()),
        Verdict::Reject(reason) => Some(reason.as_str()),
        Verdict::Accept | Verdict::Translated(_) => None,
        _ => None,
    }
}

pub fn json(report: &Report) -> TraceJson {
    TraceJson {
        verdict: verdict_name(&report.verdict),
        endpoint: report.endpoint.map(|e| e.to_string()),
        masquerade: report.masquerade,
        reason: verdict_reason(&report.verdict),
        service: report.service.clone(),
        steps: report.steps.iter().map(|s| s.to_string()).collect(),
    }
}

/// The trace hop by hop, then the outcome in one sentence.
pub fn text(report: &Report, node: &str) -> String {
    let mut out = String::new();
    let how = match report.path {
        Path::Forward => format!("arriving at {node}"),
        Path::LocalOut => format!("sent by {node} itself"),
    };
    let _ = writeln!(out, "{} ({how})", report.first_flow());
    for (i, step) in report.steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {step}", i + 1);
    }
    let leaves = report.after.map(|f| f.to_string()).unwrap_or_default();
    let _ = match (&report.verdict, report.endpoint, &report.service) {
        (Verdict::Translated(_), Some(endpoint), Some(service)) => writeln!(
            out,
            "=> {service}: sent to endpoint {endpoint}{}; leaves {node} as {}",
            if report.masquerade {
                ", source masqueraded"
            } else {
                ", source kept"
            },
            leaves
        ),
        (Verdict::Translated(_), _, _) => {
            writeln!(out, "=> translated: leaves {node} as {leaves}")
        }
        (Verdict::Accept, _, _) => writeln!(out, "=> accepted untouched: no Service rule applies"),
        (Verdict::Drop(reason), _, _) => writeln!(out, "=> dropped: {reason}"),
        (Verdict::Reject(reason), _, _) => {
            writeln!(
                out,
                "=> rejected ({reason}): the sender gets ICMP port unreachable"
            )
        }
        (other, _, _) => writeln!(out, "=> other verdict: {other:?}"),
    };
    out
}
