//! # kubenat-sim
//!
//! A deterministic discrete-event simulation of a small company network with a Kubernetes
//! cluster in it, where every host is a real TCP/IP stack (smoltcp, `Medium::Ip`) and every
//! Kubernetes node forwards pod traffic through its own kubenat [`Engine`](kubenat_core::Engine),
//! as a Linux node with kube-proxy does.
//!
//! [`run`] plays a [`Scenario`] and returns a [`Report`]: each request's journey hop by hop
//! (PC -> balancer -> NodePort -> DNAT -> ingress controller -> Host rule -> Service ->
//! DNAT -> WordPress -> DNS -> database Service -> DNAT -> MariaDB), as text or JSON. The
//! same seed gives byte-identical output.
//!
//! ```
//! let report = kubenat_sim::run(&kubenat_sim::Scenario::notes(2));
//! assert_eq!(report.summary.succeeded, 2);
//! println!("{report}");
//! ```
//!
//! The pieces embed separately: [`clock`] (time and randomness), [`queue`] (events),
//! [`device`] (the in-memory smoltcp device), [`host`] (a stack and its app), [`fabric`]
//! (links and addresses), [`node`] (a node as a router with its engine), [`apps`], and
//! [`sim::Sim`], the loop that ties them.

pub mod apps;
pub mod capture;
pub mod clock;
pub mod control;
pub mod device;
pub mod disruption;
pub mod fabric;
pub mod host;
pub mod journey;
pub mod node;
pub mod queue;
pub mod scenario;
pub mod sim;
pub mod spawn;
pub mod svg;
pub mod yaml;

pub use capture::CaptureFile;
pub use disruption::{Disruption, Move};
pub use journey::{Hop, Journey, Place, Report, Step};
pub use scenario::{Action, Scenario, TimedEvent};

use std::path::PathBuf;
use std::time::Duration;

/// A finished run: the report, and the captures when asked for.
#[derive(Clone, Debug)]
pub struct Run {
    pub report: Report,
    /// One pcap per link, in link order (empty unless captured).
    pub captures: Vec<CaptureFile>,
}

/// Plays `scenario` until every request has ended (plus a moment for connections to
/// close), the last timed event has passed, or its time limit; captures every link if
/// `capture`.
pub fn simulate(scenario: &Scenario, capture: bool) -> Result<Run, String> {
    let mut sim = sim::Sim::new(scenario)?;
    if capture {
        sim.enable_capture();
    }
    let expected = scenario.expected_requests() as usize;
    let limit = clock::Instant::ZERO + scenario.time_limit;
    let last_event = scenario
        .events
        .iter()
        .map(|e| clock::Instant::ZERO + e.at)
        .max()
        .unwrap_or(clock::Instant::ZERO);
    sim.run_until(limit, Duration::from_millis(100), |s| {
        let journeys = s.journal.journeys();
        s.now >= last_event
            && journeys.len() >= expected
            && journeys.iter().all(|j| j.finished_ns.is_some())
    });
    let captures = sim.take_captures();
    Ok(Run {
        report: sim.report(scenario),
        captures,
    })
}

/// Plays `scenario` and reports (see [`simulate`]).
///
/// # Panics
/// If the scenario is inconsistent (a pod on an unknown node, no cluster DNS Service...);
/// use [`simulate`] to get the error instead.
pub fn run(scenario: &Scenario) -> Report {
    simulate(scenario, false)
        .unwrap_or_else(|e| panic!("scenario: {e}"))
        .report
}

/// Files a run writes besides its report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Write one pcap per link here (`lan.pcap`, `veth-<node>-<pod>.pcap`).
    pub pcap_dir: Option<PathBuf>,
    /// Write the first request's sequence diagram here.
    pub svg: Option<PathBuf>,
}

/// Plays `scenario`, writes the files `options` asks for, and reports. Errors are
/// messages for people (a bad scenario, a file that cannot be written).
pub fn run_with(scenario: &Scenario, options: &Options) -> Result<Report, String> {
    let run = simulate(scenario, options.pcap_dir.is_some())?;
    if let Some(dir) = &options.pcap_dir {
        capture::write_all(&run.captures, dir)
            .map_err(|e| format!("writing captures to {}: {e}", dir.display()))?;
    }
    if let Some(path) = &options.svg {
        let diagram = svg::sequence_diagram(&run.report, 1)
            .ok_or("no request to draw: the scenario made none")?;
        std::fs::write(path, diagram).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(run.report)
}
