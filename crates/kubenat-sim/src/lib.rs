//! # kubenat-sim
//!
//! A deterministic discrete-event simulation of a small company network with a Kubernetes
//! cluster in it, where every host is a real TCP/IP stack (smoltcp, `Medium::Ip`) and every
//! Kubernetes node forwards pod traffic through its own kubenat [`Engine`](kubenat_core::Engine),
//! as a Linux node with kube-proxy does. The cluster is compiled once, by one
//! [`ControlPlane`](kubenat_core::ControlPlane): every node's engine reads its snapshot and
//! adopts the next one when that node's kube-proxy syncs.
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
//! [`Scenario::generated`] makes clusters of any size ([`generate`]); `kubenat simulate
//! --generate` measures them.
//!
//! ## Embedding the pieces
//!
//! Another simulator can take the pieces without [`run`] or [`sim::Sim`]: [`clock`] (time
//! and randomness), [`queue`] (events), [`device`] (the in-memory smoltcp device),
//! [`host`] (a stack and its app), [`fabric`] (links and addresses), [`node`] (a node as a
//! router with its engine) and [`apps`]. Its own loop owns the clock and moves the packets:
//!
//! ```
//! use std::time::Duration;
//!
//! use kubenat_core::{Engine, reference};
//! use kubenat_sim::apps::dns::ResolverConfig;
//! use kubenat_sim::apps::pc::{Browse, Pc};
//! use kubenat_sim::clock::{Instant, Rng};
//! use kubenat_sim::fabric::{Fabric, Port};
//! use kubenat_sim::host::Host;
//! use kubenat_sim::journey::Journal;
//! use kubenat_sim::node::KubeNode;
//!
//! // The wires: the LAN, two nodes, a CoreDNS pod on nodo1 and a client pod on nodoa.
//! let veth = Duration::from_micros(20);
//! let mut fabric = Fabric::new(
//!     "192.168.0.0/16".parse()?,
//!     "10.10.0.0/16".parse()?,
//!     Duration::from_micros(200),
//! );
//! let nodo1 = fabric.add_node("nodo1", "192.168.0.100".parse()?);
//! let nodoa = fabric.add_node("nodoa", "192.168.0.101".parse()?);
//! fabric.add_pod("coredns", "10.10.0.10".parse()?, nodo1, veth);
//! let client = fabric.add_pod("client", "10.10.0.102".parse()?, nodoa, veth);
//!
//! // nodoa forwards through its own engine, compiled from the notes' cluster.
//! let engine = Engine::new(&reference::cluster("nodoa"));
//! let mut node = KubeNode::new(nodoa, "nodoa", "192.168.0.101".parse()?, engine);
//!
//! // The client pod: a smoltcp stack whose browser first asks the cluster DNS (the kube-dns
//! // cluster IP, with the pod's search list) for wp-service.
//! let browse = Browse {
//!     host: "wp-service".into(),
//!     path: "/".into(),
//!     port: 8080,
//!     requests: 1,
//!     start: Instant::ZERO,
//!     gap: Duration::ZERO,
//!     timeout: Duration::from_secs(5),
//! };
//! let resolver = ResolverConfig::pod("default", "10.10.1.10".parse()?, "cluster.local");
//! let app = Box::new(Pc::new(browse, resolver));
//! let gateway = Some("169.254.1.1".parse()?);
//! let mut pod = Host::new("client", "10.10.0.102".parse()?, 32, gateway, app, Rng::new(7));
//! let mut journal = Journal::default();
//!
//! // Your clock says 1 ms: the pod's stack runs and sends its query.
//! let now = Instant::from_millis(1);
//! let (sent, _wake_at) = pod.service(now, &mut journal);
//! let query = sent.into_iter().next().expect("a DNS query");
//! let (to, link) = fabric.from_host(client, "10.10.1.10".parse()?).expect("a veth");
//! assert_eq!(to, Port::Node(nodoa));
//!
//! // Your loop delivers it after the veth's latency; nodoa's engine DNATs the cluster IP
//! // to the CoreDNS pod, and the fabric routes it over the LAN to nodo1.
//! let arrival = now + fabric.carry(link, query.len());
//! let out = node.forward(query, arrival, &fabric, &mut journal).expect("forwarded");
//! assert_eq!(out.to, Port::Node(nodo1));
//! assert_eq!(out.packet[16..20], [10, 10, 0, 10]);
//! assert_eq!(node.engine.counters().translated, 1);
//!
//! // The engine's timers (conntrack expiry) are the loop's to run.
//! let expiry = node.engine.poll_at().expect("a tracked connection");
//! node.engine.handle_timeout(expiry);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/embed_network.rs` goes further: its own event loop, an app of its own, and the reply
//! coming back through reverse NAT.

pub mod apps;
pub mod breakage;
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
pub mod report;
pub mod scenario;
pub mod sim;
pub mod spawn;
pub mod svg;
pub mod yaml;

pub use breakage::Breakage;
pub use capture::CaptureFile;
pub use disruption::{Change, Disruption, Move};
pub use journey::{Hop, Journey, Step};
pub use report::{Place, Report};
pub use scenario::{Action, Scenario, TimedEvent};
pub use yaml::ScenarioError;

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
    play(&mut sim::Sim::new(scenario)?, scenario, pcap_dir)
}

/// Plays `sim`, built from `scenario`, until every request has ended (plus a moment for
/// connections to close), the last timed event has passed and every rollout is over, or
/// the time limit; streams
/// every link's packets into one pcap per link in `pcap_dir` if given.
pub fn play(
    sim: &mut sim::Sim,
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
        s.now >= last_event
            && s.journal.journeys().len() >= expected
            && s.journal.unfinished() == 0
            && s.control.settled()
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
