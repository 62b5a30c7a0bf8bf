//! `kubenat story`: the course notes' cluster, every flow of the notes traced and explained.
//! [`tell`] traces the flows once; [`Story::text`] is what people read and the `Story`
//! itself is the JSON of `kubenat story --output json`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use kubenat_core::reference::{self, LOAD_BALANCER, NODES, PC};
use kubenat_core::{Engine, Instant, Path, Protocol, Verdict};
use serde::Serialize;

use crate::probe::{self, Report};
use crate::report::{self, TraceJson};

/// The story, as data. A contract: fields are only ever added.
#[derive(Debug, Serialize)]
pub struct Story {
    /// The cluster in one sentence.
    pub cluster: String,
    /// The Service rules every node holds, cluster IPs first, then node ports.
    pub services: Vec<ServiceRule>,
    /// The notes' flows, each traced through one node's rules.
    pub flows: Vec<StoryFlow>,
    /// Four connections from the ingress controller to wp-service, in order.
    pub round_robin: Vec<RoundRobinTurn>,
    /// The cluster's nodes.
    pub nodes: Vec<StoryNode>,
}

/// One frontend of a service port.
#[derive(Debug, Serialize)]
pub struct ServiceRule {
    /// `namespace/name:portname`.
    pub service: String,
    /// How the Service is reached: `cluster IP`, `external IP`, `load-balancer IP` or
    /// `node port` (the kinds of `kubenat rules --output json`).
    pub kind: &'static str,
    pub protocol: &'static str,
    /// The frontend's address, or null for a node port (every node IP).
    pub address: Option<String>,
    pub port: u16,
    /// `ip:port` of each endpoint the rule sends to.
    pub endpoints: Vec<String>,
}

/// One flow of the notes and where it went.
#[derive(Debug, Serialize)]
pub struct StoryFlow {
    pub title: &'static str,
    /// The node whose rules the packet meets.
    pub node: &'static str,
    pub protocol: &'static str,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `forward` (arriving at the node) or `local-out` (sent by the node itself).
    pub path: &'static str,
    /// The trace, as `kubenat trace --output json` prints it.
    pub trace: TraceJson,
    #[serde(skip)]
    report: Report,
}

/// One connection of the round robin.
#[derive(Debug, Serialize)]
pub struct RoundRobinTurn {
    /// 1, 2, 3, 4.
    pub request: usize,
    /// The wp-service pod the connection was sent to.
    pub endpoint: SocketAddr,
    /// The reply's verdict on its way back: `translated` when reverse NAT applied.
    pub reply_verdict: &'static str,
    /// The reply as it leaves the node (`proto source -> destination`), or null when it was
    /// not translated.
    pub reply: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StoryNode {
    pub name: &'static str,
    pub address: &'static str,
}

struct Flow {
    title: &'static str,
    node: &'static str,
    protocol: Protocol,
    src: &'static str,
    dst: &'static str,
}

const FLOWS: [Flow; 6] = [
    Flow {
        title: "The balancer sends the browser's request to a node's NodePort",
        node: "nodoa",
        protocol: Protocol::Tcp,
        src: "192.168.0.10:40001",
        dst: "192.168.0.101:30880",
    },
    Flow {
        title: "The ingress controller (nginx, on nodob) forwards to wp-service",
        node: "nodob",
        protocol: Protocol::Tcp,
        src: "10.10.0.105:41000",
        dst: "10.10.1.102:8080",
    },
    Flow {
        title: "WordPress (nodoa) asks the cluster DNS for mariadb-service",
        node: "nodoa",
        protocol: Protocol::Udp,
        src: "10.10.0.102:53001",
        dst: "10.10.1.10:53",
    },
    Flow {
        title: "WordPress (nodoa) opens its database connection to mariadb-service:3307",
        node: "nodoa",
        protocol: Protocol::Tcp,
        src: "10.10.0.102:42000",
        dst: "10.10.1.101:3307",
    },
    Flow {
        title: "Option 1 of the notes, RUINA: a wp-config.php with a pod IP instead of the Service",
        node: "nodoa",
        protocol: Protocol::Tcp,
        src: "10.10.0.102:42001",
        dst: "10.10.0.101:3306",
    },
    Flow {
        title: "A port mariadb-service does not have",
        node: "nodoa",
        protocol: Protocol::Tcp,
        src: "10.10.0.102:42002",
        dst: "10.10.1.101:3306",
    },
];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal socket address")
}

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|item| item.to_string()).collect()
}

/// Traces every flow of the notes.
pub fn tell() -> Story {
    let engine = Engine::new(&reference::cluster("nodo1"));
    let tables = engine.tables();
    let mut services: Vec<ServiceRule> = tables
        .sorted_frontends()
        .into_iter()
        .map(|(key, id, frontend)| ServiceRule {
            service: tables.port(id).name.to_string(),
            kind: frontend.as_str(),
            protocol: key.protocol.as_str(),
            address: Some(key.address.to_string()),
            port: key.port,
            endpoints: strings(tables.port(id).endpoints.cluster.iter()),
        })
        .collect();
    services.extend(
        tables
            .sorted_node_ports()
            .into_iter()
            .map(|(protocol, node_port, _, id)| ServiceRule {
                service: tables.port(id).name.to_string(),
                kind: kubenat_core::tables::Frontend::NodePort.as_str(),
                protocol: protocol.as_str(),
                address: None,
                port: node_port,
                endpoints: strings(tables.port(id).endpoints.cluster.iter()),
            }),
    );
    let flows = FLOWS
        .iter()
        .map(|flow| {
            let state = reference::cluster(flow.node);
            let report = probe::trace(state, flow.protocol, addr(flow.src), addr(flow.dst));
            StoryFlow {
                title: flow.title,
                node: flow.node,
                protocol: flow.protocol.as_str(),
                src: addr(flow.src),
                dst: addr(flow.dst),
                path: match report.path {
                    Path::Forward => "forward",
                    Path::LocalOut => "local-out",
                },
                trace: report::json(&report),
                report,
            }
        })
        .collect();
    Story {
        cluster: format!(
            "the notes' cluster (4 nodes, MariaDB, 2 WordPress pods, nginx ingress, external balancer {LOAD_BALANCER}, PC {PC})"
        ),
        services,
        flows,
        round_robin: round_robin(),
        nodes: NODES
            .iter()
            .map(|&(name, address)| StoryNode { name, address })
            .collect(),
    }
}

/// wp-service's two pods take turns, and each reply is reverse-translated.
fn round_robin() -> Vec<RoundRobinTurn> {
    let mut engine = Engine::new(&reference::cluster("nodob"));
    let mut turns = Vec::new();
    for i in 0..4u16 {
        let src = addr(&format!("10.10.0.105:{}", 43000 + i));
        let now = Instant::from_millis(u64::from(i));
        let mut packet = probe::first_packet(Protocol::Tcp, src, addr("10.10.1.102:8080"));
        if let Verdict::Translated(_) = engine.process_path(Path::Forward, &mut packet, now)
            && let Some(after) = kubenat_core::Flow::of_packet(&packet)
        {
            let mut reply = probe::first_packet(Protocol::Tcp, after.destination, after.source);
            let back = engine.process_path(Path::Forward, &mut reply, now);
            turns.push(RoundRobinTurn {
                request: turns.len() + 1,
                endpoint: after.destination,
                reply_verdict: report::verdict_name(&back),
                reply: match back {
                    Verdict::Translated(_) => {
                        kubenat_core::Flow::of_packet(&reply).map(|f| f.to_string())
                    }
                    _ => None,
                },
            });
        }
    }
    turns
}

fn describe(out: &mut String, report: &Report) {
    for step in &report.steps {
        let _ = writeln!(out, "      {step}");
    }
    if let (Some(service), Some(endpoint)) = (&report.service, report.endpoint) {
        let masquerade = if report.masquerade {
            ", source masqueraded to the node"
        } else {
            ", source kept"
        };
        let _ = writeln!(out, "    {service} -> endpoint {endpoint}{masquerade}");
    }
    let _ = match report.verdict {
        Verdict::Translated(_) => writeln!(
            out,
            "    => leaves the node as {}",
            report.after.map(|f| f.to_string()).unwrap_or_default()
        ),
        Verdict::Accept => writeln!(out, "    => passes untouched: no kube-proxy rule applies"),
        Verdict::Drop(reason) => writeln!(out, "    => dropped: {reason}"),
        Verdict::Reject(reason) => writeln!(
            out,
            "    => rejected ({reason}): the sender gets ICMP port unreachable"
        ),
        other => writeln!(out, "    => other verdict: {other:?}"),
    };
}

impl Story {
    /// The story for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "kubenat: {}\n", self.cluster);
        let _ = writeln!(out, "Every node's netfilter holds the same Service rules:");
        for rule in &self.services {
            let endpoints = rule.endpoints.join(" | ");
            let _ = match &rule.address {
                Some(address) => writeln!(
                    out,
                    "  {:<22} {} {}:{} -> {endpoints}",
                    rule.service, rule.kind, address, rule.port
                ),
                None => writeln!(
                    out,
                    "  {:<22} {} {} <every node IP>:{} -> {endpoints}",
                    rule.service, rule.kind, rule.protocol, rule.port
                ),
            };
        }
        for (i, flow) in self.flows.iter().enumerate() {
            let _ = writeln!(
                out,
                "\n{}. {}\n    {} {} -> {} on {} ({})",
                i + 1,
                flow.title,
                flow.protocol,
                flow.src,
                flow.dst,
                flow.node,
                match flow.report.path {
                    Path::Forward => "arriving",
                    Path::LocalOut => "sent by the node",
                }
            );
            describe(&mut out, &flow.report);
        }
        let _ = writeln!(
            out,
            "\n{}. Four requests from the ingress controller to wp-service: round robin",
            self.flows.len() + 1
        );
        for turn in &self.round_robin {
            let reply = match &turn.reply {
                Some(reply) => format!("reply comes back as {reply}"),
                None => format!("reply: {}", turn.reply_verdict),
            };
            let _ = writeln!(
                out,
                "    request {} -> {} ; {reply}",
                turn.request, turn.endpoint
            );
        }
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.address))
            .collect();
        let _ = writeln!(out, "\nNodes: {}", nodes.join(", "));
        out
    }
}

/// The story, as printed.
pub fn render() -> String {
    tell().text()
}
