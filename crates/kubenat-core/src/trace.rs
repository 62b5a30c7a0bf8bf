//! Every decision the engine makes about a packet, recorded only when asked for.
//!
//! [`Engine::process`](crate::Engine::process) records into [`NoTrace`], which the compiler
//! removes; [`Engine::process_traced`](crate::Engine::process_traced) takes any [`Trace`],
//! such as a `Vec<TraceStep>`, for the CLI to print.
//!
//! ```
//! use kubenat_core::{Engine, Hook, Instant, PacketMeta, TraceStep, reference};
//!
//! // nodoa's kube-proxy; a pod on it opens a TCP connection to wp-service's cluster IP.
//! let mut engine = Engine::new(&reference::cluster("nodoa"));
//! let mut packet = Vec::new();
//! etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 102], 64)
//!     .tcp(40000, 8080, 1, 64240)
//!     .syn()
//!     .write(&mut packet, &[])
//!     .unwrap();
//! let mut steps: Vec<TraceStep> = Vec::new();
//! let mut meta = PacketMeta::default();
//! engine.process_traced(Hook::Prerouting, &mut packet, &mut meta, Instant::ZERO, &mut steps);
//! for step in &steps {
//!     println!("{step}"); // e.g. "service default/wp-service:http matched by its cluster IP"
//! }
//! assert!(matches!(steps[0], TraceStep::Received { .. }));
//! assert!(matches!(steps.last(), Some(TraceStep::Rewritten { .. })));
//! ```

use std::fmt;
use std::net::SocketAddr;

use crate::conntrack::{Direction, State};
use crate::tables::{EndpointClass, Frontend, ServicePortName};
use crate::verdict::{DropReason, Flow, Hook, RejectReason};

/// Why a connection's source is rewritten to the node's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasqueradeReason {
    /// `masqueradeAll` is set.
    MasqueradeAll,
    /// The source is outside the cluster CIDRs (not a pod) and the destination a cluster IP.
    OutsideClusterCidr,
    /// External traffic with externalTrafficPolicy Cluster: the endpoint may be on another
    /// node, so replies must come back through this one.
    ExternalTrafficPolicyCluster,
    /// The node itself sends to an externalTrafficPolicy Local destination.
    NodeLocalSource,
    /// A pod reached itself through its Service: without masquerade it would answer itself
    /// directly and drop the reply.
    Hairpin,
}

impl fmt::Display for MasqueradeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MasqueradeReason::MasqueradeAll => "masqueradeAll is set",
            MasqueradeReason::OutsideClusterCidr => "source is outside the cluster CIDR",
            MasqueradeReason::ExternalTrafficPolicyCluster => {
                "external traffic with externalTrafficPolicy Cluster"
            }
            MasqueradeReason::NodeLocalSource => "source is the node itself",
            MasqueradeReason::Hairpin => "hairpin: the pod reached itself through its Service",
        })
    }
}

/// How the endpoint of a new connection was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Round robin: this was candidate `index` of `of`.
    RoundRobin {
        /// Position of the endpoint in the sorted candidates (0-based).
        index: usize,
        /// Number of candidates.
        of: usize,
    },
    /// Maglev: the flow hashed to `slot`.
    Maglev {
        /// The lookup-table slot the flow's hash landed in.
        slot: u32,
        /// The table's size in slots.
        of: usize,
    },
    /// sessionAffinity ClientIP: the client's remembered endpoint.
    Affinity,
}

/// One recorded decision. `Display` prints it as one line of prose.
///
/// A packet's steps start with [`TraceStep::Received`] (unless it is too malformed to
/// parse) and end with exactly one of [`TraceStep::Accepted`], [`TraceStep::Rewritten`],
/// [`TraceStep::Dropped`] or [`TraceStep::Rejected`], the verdict. With
/// [`Engine::process_path_traced`](crate::Engine::process_path_traced) each hook adds its
/// own `Received`, and one verdict closes both.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceStep {
    /// The packet entered a hook.
    Received {
        /// The hook.
        hook: Hook,
        /// The packet's 5-tuple as it arrived.
        flow: Flow,
    },
    /// The packet belongs to a tracked connection: it follows the connection's NAT.
    ConntrackHit {
        /// The packet's direction in the connection.
        direction: Direction,
        /// The connection's state before this packet.
        state: State,
    },
    /// No live connection: the packet is new and the service rules decide.
    ConntrackMiss,
    /// A TCP SYN reopened a connection in TIME_WAIT or CLOSE.
    ConntrackReopened,
    /// The destination is a service port.
    ServiceMatched {
        /// The service port.
        service: ServicePortName,
        /// Which of its addresses the packet was sent to.
        frontend: Frontend,
    },
    /// The destination is no service port.
    NoServiceMatched,
    /// The source passed the Service's loadBalancerSourceRanges.
    SourceRangeAllowed,
    /// An endpoint was picked for a new connection.
    EndpointChosen {
        /// The endpoint's address and target port.
        endpoint: SocketAddr,
        /// The class it was drawn from (per the traffic policy).
        class: EndpointClass,
        /// How it was picked.
        selection: Selection,
        /// How many endpoints the class had.
        candidates: usize,
    },
    /// The new connection will be masqueraded when it leaves the node.
    Masquerade {
        /// Why.
        reason: MasqueradeReason,
    },
    /// A new connection is tracked.
    ConntrackCreated {
        /// Its first state.
        state: State,
    },
    /// Verdict: rewritten ([`Verdict::Translated`](crate::Verdict::Translated)).
    Rewritten {
        /// The 5-tuple before.
        before: Flow,
        /// The 5-tuple after.
        after: Flow,
    },
    /// The packet is an ICMP error about a tracked connection; it is translated with it.
    IcmpErrorRelated {
        /// The direction the error travels in the connection.
        direction: Direction,
    },
    /// Verdict: dropped.
    Dropped(DropReason),
    /// Verdict: rejected.
    Rejected(RejectReason),
    /// Verdict: passed untouched.
    Accepted,
}

impl fmt::Display for TraceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceStep::Received { hook, flow } => write!(f, "{hook:?}: {flow}"),
            TraceStep::ConntrackHit { direction, state } => {
                write!(
                    f,
                    "conntrack: {direction:?} direction of a known connection ({})",
                    state.as_str()
                )
            }
            TraceStep::ConntrackMiss => f.write_str("conntrack: new connection"),
            TraceStep::ConntrackReopened => {
                f.write_str("conntrack: SYN on a closed connection, starting a new one")
            }
            TraceStep::ServiceMatched { service, frontend } => {
                write!(f, "service {service} matched by its {}", frontend.as_str())
            }
            TraceStep::NoServiceMatched => f.write_str("no service matches the destination"),
            TraceStep::SourceRangeAllowed => {
                f.write_str("source is inside loadBalancerSourceRanges")
            }
            TraceStep::EndpointChosen {
                endpoint,
                class,
                selection,
                candidates,
            } => {
                let class = match class {
                    EndpointClass::Cluster => "cluster-wide",
                    EndpointClass::Local => "node-local",
                };
                write!(
                    f,
                    "endpoint {endpoint} chosen among {candidates} {class} endpoint(s) by "
                )?;
                match selection {
                    Selection::RoundRobin { index, of } => {
                        write!(f, "round robin (turn {} of {of})", index + 1)
                    }
                    Selection::Maglev { slot, of } => {
                        write!(f, "maglev (slot {slot} of {of})")
                    }
                    Selection::Affinity => f.write_str("session affinity (ClientIP)"),
                }
            }
            TraceStep::Masquerade { reason } => write!(f, "masquerade: {reason}"),
            TraceStep::ConntrackCreated { state } => {
                write!(f, "conntrack: entry created ({})", state.as_str())
            }
            TraceStep::Rewritten { before, after } => write!(f, "rewritten {before} => {after}"),
            TraceStep::IcmpErrorRelated { direction } => {
                write!(
                    f,
                    "ICMP error about a tracked connection ({direction:?} direction)"
                )
            }
            TraceStep::Dropped(reason) => write!(f, "drop: {reason}"),
            TraceStep::Rejected(reason) => {
                write!(f, "reject with ICMP port unreachable: {reason}")
            }
            TraceStep::Accepted => f.write_str("accept"),
        }
    }
}

/// Receives the engine's decisions. Implemented by [`NoTrace`] (records nothing) and by
/// `Vec<TraceStep>` (records everything); implement it to filter or stream steps.
pub trait Trace {
    /// Whether steps are wanted at all; building a step may allocate, so the engine asks.
    fn enabled(&self) -> bool;
    /// Records one decision. Called only while [`Trace::enabled`] is true.
    fn step(&mut self, step: TraceStep);
}

/// Records nothing and costs nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn enabled(&self) -> bool {
        false
    }

    #[inline(always)]
    fn step(&mut self, _: TraceStep) {}
}

impl Trace for Vec<TraceStep> {
    fn enabled(&self) -> bool {
        true
    }

    fn step(&mut self, step: TraceStep) {
        self.push(step);
    }
}
