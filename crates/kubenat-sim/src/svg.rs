//! One request's journey as an SVG sequence diagram: a lane per machine, node and pod it
//! touched (in order of first appearance), a row per hop. A hop at another lane than the
//! previous one is an arrow labelled with the packet's addresses as they are on that wire
//! (into a node: before its rewrite; out of a node: after it); replies are dashed. Each
//! hop also gets a note under the arrow: what happened there (a node's DNAT and SNAT with
//! the Service and endpoint choice, the ingress rule, the DNS answer...).
//!
//! Hand-written SVG text: no dependency, and the same report always gives the same bytes.

use std::fmt::Write as _;

use crate::journey::{FlowView, Hop, Journey, RequestId, Step};
use crate::report::{Place, Report};

const GUTTER: i64 = 96;
const LANE: i64 = 330;
const HEADER_TOP: i64 = 56;
const HEADER: i64 = 54;
const ROW: i64 = 50;
/// Enough for `SNAT a.b.c.d:p ⇒ a.b.c.d:p` with the longest IPv4 addresses and ports.
const NOTE_CHARS: usize = 52;

/// The diagram of request `id` of `report`; `None` if there is no such request.
pub fn sequence_diagram(report: &Report, id: RequestId) -> Option<String> {
    let journey = report.journeys.iter().find(|j| j.id == id)?;
    Some(draw(journey, &report.places, &report.scenario))
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The lanes: hop places in order of first appearance, each with its address if known.
fn lanes<'a>(journey: &'a Journey, places: &'a [Place]) -> Vec<(&'a str, Option<&'a Place>)> {
    let mut lanes: Vec<(&str, Option<&Place>)> = Vec::new();
    for hop in &journey.hops {
        if lanes.iter().any(|(name, _)| *name == hop.at) {
            continue;
        }
        let place = places.iter().rev().find(|p| {
            p.name == hop.at && p.since_ns <= hop.at_ns && p.until_ns.is_none_or(|u| u > hop.at_ns)
        });
        lanes.push((hop.at.as_str(), place));
    }
    lanes
}

fn flow(f: &FlowView) -> String {
    format!("{} {} → {}", f.protocol, f.source, f.destination)
}

/// The label of the arrow from `from` to `to`, and whether it is a reply.
fn arrow_label(from: &Hop, to: &Hop) -> (String, bool) {
    match (&from.step, &to.step) {
        (_, Step::Node { before, .. }) => (flow(before), false),
        (_, Step::NodeVerdict { flow: f, .. }) => (flow(f), false),
        (Step::Node { after, .. }, _) => (flow(after), false),
        (Step::Connect { flow: f, .. }, _) => (flow(f), false),
        (Step::DnsQuery { server, .. }, _) => (format!("udp → {server}"), false),
        (Step::DnsAnswer { .. }, _) => ("DNS reply (reverse NAT on the way back)".into(), true),
        (Step::DbQuery { .. }, _) => ("database reply".into(), true),
        (Step::HttpResponse { status, .. }, _) => (format!("HTTP {status} (reply)"), true),
        (Step::Error { .. }, _) => ("error".into(), true),
        _ => (String::new(), true),
    }
}

/// What happened at a hop, one or more short lines.
fn note(step: &Step) -> Vec<String> {
    match step {
        Step::Node {
            before,
            after,
            service,
            selection,
            masquerade,
            ..
        } => {
            let mut lines = Vec::new();
            if before.destination != after.destination {
                lines.push(format!(
                    "DNAT {} ⇒ {}",
                    before.destination, after.destination
                ));
            }
            if before.source != after.source {
                lines.push(format!("SNAT {} ⇒ {}", before.source, after.source));
            }
            if lines.is_empty() {
                lines.push("forward, no rewrite".into());
            }
            if let Some(service) = service {
                lines.push(match selection {
                    Some(sel) => format!("{service}: {sel}"),
                    None => service.clone(),
                });
            }
            if masquerade.is_some() {
                lines.push("masquerade".into());
            }
            lines
        }
        Step::Connect { purpose, .. } => vec![format!("connect ({purpose})")],
        Step::IngressRule {
            host,
            path,
            backend,
            address,
            ..
        } => vec![
            format!("Host {host} {path}"),
            format!("→ {backend} = {address}"),
        ],
        Step::DbQuery { query, .. } => vec![format!("query: {query}")],
        other => vec![other.to_string()],
    }
}

fn lane_x(i: usize) -> i64 {
    GUTTER + i as i64 * LANE + LANE / 2
}

fn draw(journey: &Journey, places: &[Place], scenario: &str) -> String {
    let lanes = lanes(journey, places);
    let index = |name: &str| lanes.iter().position(|(n, _)| *n == name).unwrap_or(0);
    let width = GUTTER + lanes.len() as i64 * LANE + 20;
    let mut y = HEADER_TOP + HEADER + 40;
    let rows: Vec<(i64, &Hop, Vec<String>)> = journey
        .hops
        .iter()
        .map(|hop| {
            let notes = note(&hop.step);
            let row = (y, hop, notes);
            y += ROW.max(30 + row.2.len() as i64 * 11);
            row
        })
        .collect();
    let height = y + 10;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">
<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>
<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"##
    );
    let outcome = match (&journey.outcome.status, &journey.outcome.error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(e)) => format!("failed: {e}"),
        (None, None) => "unfinished".into(),
    };
    let served = journey
        .outcome
        .served_by
        .as_ref()
        .map_or_else(String::new, |p| format!(", served by {p}"));
    let _ = writeln!(
        s,
        r##"<text x="16" y="24" font-size="15" font-weight="bold">{}</text>
<text x="16" y="42" fill="#555">{}</text>"##,
        escape(&format!(
            "request {}: {} → {outcome}{served}",
            journey.id, journey.label
        )),
        escape(scenario),
    );
    for (i, (name, place)) in lanes.iter().enumerate() {
        let x = lane_x(i);
        let (fill, detail) = match place {
            Some(p) => (
                match p.kind {
                    "node" => "#fde8d0",
                    "pod" => "#e3f4e6",
                    _ => "#e3ecfb",
                },
                match &p.node {
                    Some(node) => format!("{} {} on {node}", p.kind, p.ip),
                    None => format!("{} {}", p.kind, p.ip),
                },
            ),
            None => ("#eeeeee", String::new()),
        };
        let _ = writeln!(
            s,
            r##"<g class="lane"><line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#999" stroke-dasharray="4 4"/><rect x="{}" y="{HEADER_TOP}" width="{}" height="{HEADER}" rx="6" fill="{fill}" stroke="#666"/><text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text><text x="{x}" y="{}" text-anchor="middle" fill="#333">{}</text></g>"##,
            HEADER_TOP + HEADER,
            height - 10,
            x - LANE / 2 + 10,
            LANE - 20,
            HEADER_TOP + 22,
            escape(&shorten(name, 44)),
            HEADER_TOP + 40,
            escape(&detail),
        );
    }
    let mut previous: Option<&Hop> = None;
    for (y, hop, notes) in rows {
        let to = lane_x(index(&hop.at));
        let _ = writeln!(
            s,
            r##"<text x="8" y="{}" fill="#777">{:.3} ms</text>"##,
            y + 4,
            hop.at_ns as f64 / 1e6
        );
        if let Some(prev) = previous.filter(|p| p.at != hop.at) {
            let from = lane_x(index(&prev.at));
            let (label, reply) = arrow_label(prev, hop);
            let (color, dash) = if reply {
                ("#777", r#" stroke-dasharray="6 3""#)
            } else {
                ("#1a4d8f", "")
            };
            let _ = writeln!(
                s,
                r##"<g class="hop"><line x1="{from}" y1="{y}" x2="{to}" y2="{y}" stroke="{color}" stroke-width="1.6"{dash} marker-end="url(#head)"/><text x="{}" y="{}" text-anchor="middle" fill="{color}">{}</text></g>"##,
                (from + to) / 2,
                y - 5,
                escape(&label)
            );
        } else {
            let _ = writeln!(
                s,
                r##"<circle class="hop" cx="{to}" cy="{y}" r="3.5" fill="#1a4d8f"/>"##
            );
        }
        for (k, line) in notes.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text class="note" x="{}" y="{}" font-size="10" fill="#444">{}</text>"##,
                to + 6,
                y + 13 + k as i64 * 11,
                escape(&shorten(line, NOTE_CHARS))
            );
        }
        previous = Some(hop);
    }
    s.push_str("</svg>\n");
    s
}
