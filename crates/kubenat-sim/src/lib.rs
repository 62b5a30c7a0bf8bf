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
pub mod generate;
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

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A finished run: the report, and the captures when asked for.
#[derive(Clone, Debug)]
pub struct Run {
    pub report: Report,
    /// One pcap per link, in link order, as written (empty unless captured).
    pub captures: Vec<CaptureFile>,
}

/// Builds and plays `scenario` (see [`play`]), capturing every link into `pcap_dir` if
/// given.
pub fn simulate(scenario: &Scenario, pcap_dir: Option<&Path>) -> Result<Run, String> {
    play(sim::Sim::new(scenario)?, scenario, pcap_dir)
}

/// Plays `sim`, built from `scenario`, until every request has ended (plus a moment for
/// connections to close), the last timed event has passed, or the time limit; streams
/// every link's packets into one pcap per link in `pcap_dir` if given.
pub fn play(
    mut sim: sim::Sim,
    scenario: &Scenario,
    pcap_dir: Option<&Path>,
) -> Result<Run, String> {
    let captures_failed = |e: std::io::Error| match pcap_dir {
        Some(dir) => format!("writing captures to {}: {e}", dir.display()),
        None => e.to_string(),
    };
    if let Some(dir) = pcap_dir {
        sim.capture_to(dir).map_err(captures_failed)?;
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
        s.now >= last_event && s.journal.journeys().len() >= expected && s.journal.unfinished() == 0
    });
    let captures = sim.finish_captures().map_err(captures_failed)?;
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
    simulate(scenario, None)
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
    let run = simulate(scenario, options.pcap_dir.as_deref())?;
    if let Some(path) = &options.svg {
        write_svg(&run.report, path)?;
    }
    Ok(run.report)
}

/// Draws the first request of `report` as a sequence diagram into `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    let diagram =
        svg::sequence_diagram(report, 1).ok_or("no request to draw: the scenario made none")?;
    std::fs::write(path, diagram).map_err(|e| format!("writing {}: {e}", path.display()))
}
