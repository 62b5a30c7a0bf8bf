//! Every decision the engine makes about a packet, recorded only when asked for.
//!
//! [`Engine::process`](crate::Engine::process) records into [`NoTrace`], which the compiler
//! removes; [`Engine::process_traced`](crate::Engine::process_traced) takes any [`Trace`],
//! such as a `Vec<TraceStep>`, for the CLI to print.

use std::fmt;
use std::net::SocketAddr;

use crate::conntrack::{Direction, State};
use crate::tables::{EndpointClass, Frontend, ServicePortName};
use crate::verdict::{DropReason, Flow, Hook, RejectReason};

/// Why a connection's source is rewritten to the node's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
pub enum Selection {
    /// Round robin: this was candidate `index` of `of`.
    RoundRobin { index: usize, of: usize },
    /// Maglev: the flow hashed to `slot`.
    Maglev { slot: u32, of: usize },
    /// sessionAffinity ClientIP: the client's remembered endpoint.
    Affinity,
}

/// One recorded decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceStep {
    Received {
        hook: Hook,
        flow: Flow,
    },
    ConntrackHit {
        direction: Direction,
        state: State,
    },
    ConntrackMiss,
    /// A TCP SYN reopened a connection in TIME_WAIT or CLOSE.
    ConntrackReopened,
    ServiceMatched {
        service: ServicePortName,
        frontend: Frontend,
    },
    NoServiceMatched,
    SourceRangeAllowed,
    EndpointChosen {
        endpoint: SocketAddr,
        class: EndpointClass,
        selection: Selection,
        candidates: usize,
    },
    Masquerade {
        reason: MasqueradeReason,
    },
    ConntrackCreated {
        state: State,
    },
    Rewritten {
        before: Flow,
        after: Flow,
    },
    IcmpErrorRelated {
        direction: Direction,
    },
    Dropped(DropReason),
    Rejected(RejectReason),
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

/// Receives the engine's decisions.
pub trait Trace {
    /// Whether steps are wanted at all; building a step may allocate, so the engine asks.
    fn enabled(&self) -> bool;
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
