//! `kubenat rules`: a node's compiled tables, for people (text) and programs (JSON).

use std::fmt::Write as _;

use kubenat_core::ProxyMode;
use kubenat_core::tables::{CompiledServicePort, Tables};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct RulesJson {
    pub node: String,
    pub mode: &'static str,
    pub node_ips: Vec<String>,
    pub cluster_cidrs: Vec<String>,
    pub service_cidrs: Vec<String>,
    pub masquerade_all: bool,
    pub service_ports: Vec<ServicePortJson>,
}

#[derive(Debug, Serialize)]
pub struct FrontendJson {
    pub kind: &'static str,
    pub address: String,
}

#[derive(Debug, Serialize)]
pub struct ServicePortJson {
    pub service: String,
    pub protocol: &'static str,
    pub family: &'static str,
    pub frontends: Vec<FrontendJson>,
    pub node_port: Option<u16>,
    pub external_traffic_policy_local: bool,
    pub internal_traffic_policy_local: bool,
    pub session_affinity_timeout_seconds: Option<u64>,
    pub load_balancer_source_ranges: Vec<String>,
    pub cluster_endpoints: Vec<String>,
    pub local_endpoints: Vec<String>,
}

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

/// Service ports sorted by name, then family, for stable output.
fn sorted_ports(tables: &Tables) -> Vec<&CompiledServicePort> {
    let mut ports: Vec<&CompiledServicePort> = tables.ports().map(|(_, p)| p).collect();
    ports.sort_by(|a, b| (&a.name, a.ipv6).cmp(&(&b.name, b.ipv6)));
    ports
}

fn mode_name(mode: ProxyMode) -> &'static str {
    match mode {
        ProxyMode::Nftables => "nftables",
        ProxyMode::Iptables => "iptables",
    }
}

pub fn json(tables: &Tables, node: &str) -> RulesJson {
    let settings = tables.settings();
    RulesJson {
        node: node.to_string(),
        mode: mode_name(settings.mode),
        node_ips: strings(&settings.node_ips),
        cluster_cidrs: strings(&settings.cluster_cidrs),
        service_cidrs: strings(&settings.service_cidrs),
        masquerade_all: settings.masquerade_all,
        service_ports: sorted_ports(tables)
            .into_iter()
            .map(|p| ServicePortJson {
                service: p.name.to_string(),
                protocol: p.protocol.as_str(),
                family: if p.ipv6 { "ipv6" } else { "ipv4" },
                frontends: p
                    .frontends()
                    .map(|(key, frontend)| FrontendJson {
                        kind: frontend.as_str(),
                        address: std::net::SocketAddr::new(key.address, key.port).to_string(),
                    })
                    .collect(),
                node_port: p.node_port,
                external_traffic_policy_local: p.external_policy_local,
                internal_traffic_policy_local: p.internal_policy_local,
                session_affinity_timeout_seconds: p.affinity_timeout.map(|t| t.as_secs()),
                load_balancer_source_ranges: strings(p.allowed_sources(&settings.node_ips)),
                cluster_endpoints: strings(p.endpoints.cluster.iter()),
                local_endpoints: strings(p.endpoints.local_on(&settings.node_name).iter()),
            })
            .collect(),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

pub fn text(tables: &Tables, node: &str) -> String {
    let rules = json(tables, node);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} ({} mode)\n  node IPs:      {}\n  cluster CIDRs: {}\n  service CIDRs: {}\n  masqueradeAll: {}",
        rules.node,
        rules.mode,
        list(&rules.node_ips),
        list(&rules.cluster_cidrs),
        list(&rules.service_cidrs),
        rules.masquerade_all
    );
    for p in &rules.service_ports {
        let _ = writeln!(out, "\n{} ({} {})", p.service, p.protocol, p.family);
        for f in &p.frontends {
            let _ = writeln!(out, "  {:<17} {}", f.kind, f.address);
        }
        if let Some(node_port) = p.node_port {
            let _ = writeln!(out, "  {:<17} {}", "node port", node_port);
        }
        let mut flags = Vec::new();
        if p.external_traffic_policy_local {
            flags.push("externalTrafficPolicy=Local".to_string());
        }
        if p.internal_traffic_policy_local {
            flags.push("internalTrafficPolicy=Local".to_string());
        }
        if let Some(timeout) = p.session_affinity_timeout_seconds {
            flags.push(format!("sessionAffinity=ClientIP({timeout}s)"));
        }
        if !p.load_balancer_source_ranges.is_empty() {
            flags.push(format!(
                "sourceRanges={}",
                p.load_balancer_source_ranges.join(",")
            ));
        }
        if !flags.is_empty() {
            let _ = writeln!(out, "  {:<17} {}", "policy", flags.join(" "));
        }
        let _ = writeln!(out, "  {:<17} {}", "endpoints", list(&p.cluster_endpoints));
        let _ = writeln!(
            out,
            "  {:<17} {}",
            "local endpoints",
            list(&p.local_endpoints)
        );
    }
    out
}
