//! The journey record: every hop of every request, as the applications and the nodes'
//! engines saw it; a run's report is made from it.
//!
//! Hops are tied to a request through the connections it opened: whoever opens a
//! connection (or sends a datagram) for a request registers its 5-tuple with
//! [`Journal::register`]; a node that translates a new connection registers the tuple
//! after translation, so the next node and the receiving application find the request by
//! the tuple they see.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use kubenat_core::Flow;
use serde::Serialize;

use crate::clock::Instant;

/// A request of the scenario's traffic, numbered from 1.
pub type RequestId = u32;

/// A 5-tuple as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FlowView {
    /// `tcp`, `udp`, ...
    pub protocol: &'static str,
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

impl FlowView {
    /// A TCP tuple.
    pub fn tcp(source: SocketAddr, destination: SocketAddr) -> FlowView {
        FlowView {
            protocol: "tcp",
            source,
            destination,
        }
    }

    /// A UDP tuple.
    pub fn udp(source: SocketAddr, destination: SocketAddr) -> FlowView {
        FlowView {
            protocol: "udp",
            source,
            destination,
        }
    }
}

impl From<Flow> for FlowView {
    fn from(flow: Flow) -> FlowView {
        FlowView {
            protocol: match flow.protocol {
                6 => "tcp",
                17 => "udp",
                132 => "sctp",
                1 => "icmp",
                58 => "icmpv6",
                _ => "ip",
            },
            source: flow.source,
            destination: flow.destination,
        }
    }
}

impl fmt::Display for FlowView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            self.protocol, self.source, self.destination
        )
    }
}

/// What happened at one hop.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// A client sent a DNS query.
    DnsQuery {
        name: String,
        qtype: String,
        server: SocketAddr,
    },
    /// A DNS server answered.
    DnsAnswer {
        name: String,
        rcode: String,
        answers: Vec<String>,
    },
    /// A client's resolver finished.
    Resolved {
        name: String,
        fqdn: Option<String>,
        address: Option<Ipv4Addr>,
        queries: u32,
    },
    /// An application opened a TCP connection.
    Connect { flow: FlowView, purpose: String },
    /// The external balancer picked a backend.
    Balance {
        backend: SocketAddr,
        index: usize,
        of: usize,
    },
    /// A node handled the first packet of a connection: PREROUTING (DNAT), routing,
    /// POSTROUTING (masquerade).
    Node {
        node: String,
        before: FlowView,
        after: FlowView,
        service: Option<String>,
        frontend: Option<String>,
        endpoint: Option<SocketAddr>,
        selection: Option<String>,
        masquerade: Option<String>,
        next: String,
    },
    /// A node's engine dropped or rejected a packet of the request.
    NodeVerdict {
        node: String,
        flow: FlowView,
        verdict: String,
    },
    /// The ingress controller matched a rule.
    IngressRule {
        host: String,
        path: String,
        ingress: String,
        rule: String,
        backend: String,
        address: SocketAddr,
    },
    /// The ingress controller found no rule.
    IngressNoRule { host: String, path: String },
    /// An HTTP server got a request.
    HttpRequest {
        method: String,
        host: String,
        path: String,
        from: SocketAddr,
    },
    /// The database got a query.
    DbQuery { query: String, from: SocketAddr },
    /// The database client got its answer.
    DbReply { reply: String },
    /// An HTTP response was sent (servers, proxies) or received (the PC).
    HttpResponse {
        status: u16,
        served_by: Option<String>,
    },
    /// Something failed at this hop.
    Error { message: String },
}

/// One hop: when, where, what.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hop {
    /// Nanoseconds since the start of the run.
    pub at_ns: u64,
    /// The host, pod or node.
    pub at: String,
    #[serde(flatten)]
    pub step: Step,
}

/// How a request ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The pod that served it (`X-Served-By`).
    pub served_by: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    /// A 2xx response arrived.
    pub fn ok(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// One request from start to end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Journey {
    pub id: RequestId,
    /// What the client asked for (`GET http://web1.miempresa.com/`).
    pub label: String,
    pub started_ns: u64,
    pub finished_ns: Option<u64>,
    pub outcome: Outcome,
    pub hops: Vec<Hop>,
}

/// What the run collects while it goes.
#[derive(Default)]
pub struct Journal {
    journeys: Vec<Journey>,
    flows: BTreeMap<FlowView, RequestId>,
    /// Journeys with an end, kept so the run's stop test does not walk them all.
    finished: usize,
    /// Hops no request could be found for (nothing registered their tuple).
    pub unattributed: u64,
}

impl Journal {
    /// Starts a request and returns its id.
    pub fn begin(&mut self, now: Instant, label: String) -> RequestId {
        let id = self.journeys.len() as RequestId + 1;
        self.journeys.push(Journey {
            id,
            label,
            started_ns: now.as_nanos(),
            finished_ns: None,
            outcome: Outcome::default(),
            hops: Vec::new(),
        });
        id
    }

    /// Ends a request.
    pub fn finish(&mut self, id: RequestId, now: Instant, outcome: Outcome) {
        let Some(index) = (id as usize).checked_sub(1) else {
            return;
        };
        if let Some(j) = self.journeys.get_mut(index) {
            if j.finished_ns.is_none() {
                self.finished += 1;
            }
            j.finished_ns = Some(now.as_nanos());
            j.outcome = outcome;
        }
    }

    /// `flow` (original direction) is part of request `id` from now on.
    pub fn register(&mut self, flow: FlowView, id: RequestId) {
        self.flows.insert(flow, id);
    }

    /// The request a flow belongs to.
    pub fn request_of(&self, flow: &FlowView) -> Option<RequestId> {
        self.flows.get(flow).copied()
    }

    /// Records a hop of request `id` (or counts it as unattributed).
    pub fn record(&mut self, id: Option<RequestId>, now: Instant, at: &str, step: Step) {
        match id.and_then(|id| self.journey_mut(id)) {
            Some(j) => j.hops.push(Hop {
                at_ns: now.as_nanos(),
                at: at.to_string(),
                step,
            }),
            None => self.unattributed += 1,
        }
    }

    /// Requests begun and not finished.
    pub fn unfinished(&self) -> usize {
        self.journeys.len() - self.finished
    }

    /// The requests so far.
    pub fn journeys(&self) -> &[Journey] {
        &self.journeys
    }

    fn journey_mut(&mut self, id: RequestId) -> Option<&mut Journey> {
        self.journeys.get_mut((id as usize).checked_sub(1)?)
    }

    /// The journeys, handed over for the report.
    pub fn into_journeys(self) -> Vec<Journey> {
        self.journeys
    }
}

fn opt<T: fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DnsQuery {
                name,
                qtype,
                server,
            } => write!(f, "DNS query {qtype} {name}? to {server}"),
            Step::DnsAnswer {
                name,
                rcode,
                answers,
            } => {
                if answers.is_empty() {
                    write!(f, "DNS answer {name}: {rcode}")
                } else {
                    write!(f, "DNS answer {name} = {}", answers.join(", "))
                }
            }
            Step::Resolved {
                name,
                fqdn,
                address,
                queries,
            } => match (fqdn, address) {
                (Some(fqdn), Some(address)) if fqdn == name => {
                    write!(f, "resolved {name} = {address}")
                }
                (Some(fqdn), Some(address)) => write!(
                    f,
                    "resolved {name} = {address} (as {fqdn}, search list, {queries} queries)"
                ),
                _ => write!(f, "could not resolve {name} ({queries} queries)"),
            },
            Step::Connect { flow, purpose } => write!(f, "connect {flow} ({purpose})"),
            Step::Balance { backend, index, of } => {
                write!(
                    f,
                    "balancer picks {backend} (round robin {}/{of})",
                    index + 1
                )
            }
            Step::Node {
                node: _,
                before,
                after,
                service,
                frontend,
                endpoint: _,
                selection,
                masquerade,
                next,
            } => {
                if before == after {
                    write!(f, "forward {before}")?;
                } else if before.destination != after.destination {
                    write!(f, "DNAT {before} => {}", after.destination)?;
                    if before.source != after.source {
                        write!(f, ", SNAT source => {}", after.source)?;
                    }
                } else {
                    write!(f, "SNAT {before} => source {}", after.source)?;
                }
                if let Some(service) = service {
                    write!(f, " [{service} by {}", opt(frontend))?;
                    if let Some(selection) = selection {
                        write!(f, ", {selection}")?;
                    }
                    f.write_str("]")?;
                }
                if let Some(reason) = masquerade {
                    write!(f, " [masquerade: {reason}]")?;
                }
                write!(f, " -> {next}")
            }
            Step::NodeVerdict {
                node: _,
                flow,
                verdict,
            } => write!(f, "{verdict}: {flow}"),
            Step::IngressRule {
                host,
                path,
                ingress,
                rule,
                backend,
                address,
            } => write!(
                f,
                "Host {host} path {path} matches Ingress {ingress} ({rule}) -> {backend} = {address}"
            ),
            Step::IngressNoRule { host, path } => {
                write!(f, "no Ingress rule for Host {host} path {path}: 404")
            }
            Step::HttpRequest {
                method,
                host,
                path,
                from,
            } => write!(f, "HTTP {method} {path} Host {host} from {from}"),
            Step::DbQuery { query, from } => write!(f, "query {query:?} from {from}"),
            Step::DbReply { reply } => write!(f, "database replied {reply:?}"),
            Step::HttpResponse { status, served_by } => {
                write!(f, "HTTP {status}")?;
                if let Some(pod) = served_by {
                    write!(f, " served by {pod}")?;
                }
                Ok(())
            }
            Step::Error { message } => write!(f, "ERROR {message}"),
        }
    }
}
