//! `kubenat story`: the course notes' cluster, every flow of the notes traced and explained.

use std::fmt::Write as _;
use std::net::SocketAddr;

use kubenat_core::reference::{self, LOAD_BALANCER, NODES, PC};
use kubenat_core::{Engine, Instant, Path, Protocol, Verdict};

use crate::probe::{self, Report};

struct Flow {
    title: &'static str,
    node: &'static str,
    protocol: Protocol,
    src: String,
    dst: String,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal socket address")
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
        Verdict::Translated(t) => writeln!(out, "    => leaves the node as {}", t.after),
        Verdict::Accept => writeln!(out, "    => passes untouched: no kube-proxy rule applies"),
        Verdict::Drop(reason) => writeln!(out, "    => dropped: {reason}"),
        Verdict::Reject(reason) => writeln!(
            out,
            "    => rejected ({reason}): the sender gets ICMP port unreachable"
        ),
    };
}

/// The story, as printed.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kubenat: the notes' cluster (4 nodes, MariaDB, 2 WordPress pods, nginx ingress, external balancer {LOAD_BALANCER}, PC {PC})\n"
    );
    let _ = writeln!(out, "Every node's netfilter holds the same Service rules:");
    let engine = Engine::new(&reference::cluster("nodo1"));
    for (key, id, frontend) in engine.tables().sorted_frontends() {
        let port = engine.tables().port(id);
        let endpoints: Vec<String> = port
            .endpoints
            .cluster
            .iter()
            .map(|e| e.to_string())
            .collect();
        let _ = writeln!(
            out,
            "  {:<22} {} {}:{} -> {}",
            port.name.to_string(),
            frontend.as_str(),
            key.address,
            key.port,
            endpoints.join(" | ")
        );
    }
    for (protocol, node_port, _, id) in engine.tables().sorted_node_ports() {
        let _ = writeln!(
            out,
            "  {:<22} node port {protocol} <every node IP>:{node_port} -> {}",
            engine.tables().port(id).name.to_string(),
            engine
                .tables()
                .port(id)
                .endpoints
                .cluster
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let flows = [
        Flow {
            title: "The balancer sends the browser's request to a node's NodePort",
            node: "nodoa",
            protocol: Protocol::Tcp,
            src: format!("{LOAD_BALANCER}:40001"),
            dst: "192.168.0.101:30880".into(),
        },
        Flow {
            title: "The ingress controller (nginx, on nodob) forwards to wp-service",
            node: "nodob",
            protocol: Protocol::Tcp,
            src: "10.10.0.105:41000".into(),
            dst: "10.10.1.102:8080".into(),
        },
        Flow {
            title: "WordPress (nodoa) asks the cluster DNS for mariadb-service",
            node: "nodoa",
            protocol: Protocol::Udp,
            src: "10.10.0.102:53001".into(),
            dst: "10.10.1.10:53".into(),
        },
        Flow {
            title: "WordPress (nodoa) opens its database connection to mariadb-service:3307",
            node: "nodoa",
            protocol: Protocol::Tcp,
            src: "10.10.0.102:42000".into(),
            dst: "10.10.1.101:3307".into(),
        },
        Flow {
            title: "Option 1 of the notes, RUINA: a wp-config.php with a pod IP instead of the Service",
            node: "nodoa",
            protocol: Protocol::Tcp,
            src: "10.10.0.102:42001".into(),
            dst: "10.10.0.101:3306".into(),
        },
        Flow {
            title: "A port mariadb-service does not have",
            node: "nodoa",
            protocol: Protocol::Tcp,
            src: "10.10.0.102:42002".into(),
            dst: "10.10.1.101:3306".into(),
        },
    ];
    for (i, flow) in flows.iter().enumerate() {
        let state = reference::cluster(flow.node);
        let report = probe::trace(&state, flow.protocol, addr(&flow.src), addr(&flow.dst));
        let _ = writeln!(
            out,
            "\n{}. {}\n    {} {} -> {} on {} ({})",
            i + 1,
            flow.title,
            flow.protocol,
            flow.src,
            flow.dst,
            flow.node,
            match report.path {
                Path::Forward => "arriving",
                Path::LocalOut => "sent by the node",
            }
        );
        describe(&mut out, &report);
    }
    round_robin(&mut out);
    out
}

/// wp-service's two pods take turns, and each reply is reverse-translated.
fn round_robin(out: &mut String) {
    let _ = writeln!(
        out,
        "\n{}. Four requests from the ingress controller to wp-service: round robin",
        7
    );
    let mut engine = Engine::new(&reference::cluster("nodob"));
    for i in 0..4u16 {
        let src = addr(&format!("10.10.0.105:{}", 43000 + i));
        let mut packet = probe::first_packet(Protocol::Tcp, src, addr("10.10.1.102:8080"));
        let verdict = engine.process_path(
            Path::Forward,
            &mut packet,
            Instant::from_millis(u64::from(i)),
        );
        if let Verdict::Translated(t) = verdict {
            let mut reply = probe::first_packet(Protocol::Tcp, t.after.destination, t.after.source);
            let back = engine.process_path(
                Path::Forward,
                &mut reply,
                Instant::from_millis(u64::from(i)),
            );
            let reply_seen = match back {
                Verdict::Translated(b) => format!("reply comes back as {}", b.after),
                other => format!("reply: {other:?}"),
            };
            let _ = writeln!(
                out,
                "    request {} -> {} ; {reply_seen}",
                i + 1,
                t.after.destination
            );
        }
    }
    let _ = writeln!(
        out,
        "\nNodes: {}",
        NODES
            .iter()
            .map(|(n, a)| format!("{n} {a}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
