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
pub mod clock;
pub mod device;
pub mod fabric;
pub mod host;
pub mod journey;
pub mod node;
pub mod queue;
pub mod scenario;
pub mod sim;

pub use journey::{Hop, Journey, Report, Step};
pub use scenario::Scenario;

use std::time::Duration;

/// Plays `scenario` until every request has ended (plus a moment for connections to
/// close) or its time limit, and reports.
///
/// # Panics
/// If the scenario is inconsistent (a pod on an unknown node, no cluster DNS Service...);
/// use [`sim::Sim::new`] to get the error instead.
pub fn run(scenario: &Scenario) -> Report {
    let mut sim = sim::Sim::new(scenario).unwrap_or_else(|e| panic!("scenario: {e}"));
    let expected = scenario.expected_requests() as usize;
    let limit = clock::Instant::ZERO + scenario.time_limit;
    sim.run_until(limit, Duration::from_millis(100), |s| {
        let journeys = s.journal.journeys();
        journeys.len() >= expected && journeys.iter().all(|j| j.finished_ns.is_some())
    });
    sim.report(scenario)
}
