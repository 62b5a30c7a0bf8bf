//! kube-proxy nftables-mode ruleset export: a node's compiled [`Tables`] written as the
//! `table ip kube-proxy` / `table ip6 kube-proxy` that kube-proxy's nftables backend would
//! program for the same Services, so the userspace engine can be compared with (or loaded
//! into) a real kernel with `nft -f`.
//!
//! The layout follows kube-proxy's `pkg/proxy/nftables` proxier (the newer layout with
//! pre-DNAT filter chains only for the firewall check): verdict maps `service-ips` and
//! `service-nodeports` dispatch to per service-port chains (`service-…` for the cluster
//! policy, `local-…` for the local policy, `external-…` for NodePort / external IP /
//! load-balancer IP traffic, `firewall-…` for `loadBalancerSourceRanges`) and per-endpoint
//! chains (`endpoint-…`) that DNAT; `no-endpoint-services` / `no-endpoint-nodeports` drop or
//! reject; `cluster-ips-check` rejects wrong ports of cluster IPs and drops unallocated
//! service-CIDR addresses (nftables mode only). Only what the tables hold is modelled, and
//! everything is sorted, so the same tables always render the same text. It is not
//! byte-identical to kube-proxy: chain names carry a hash of our own, and endpoints are
//! chosen with `numgen random` where the engine rotates (or uses Maglev).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use kubenat_core::categorize::Endpoints;
use kubenat_core::tables::{CompiledServicePort, Frontend, NodeSettings, ServicePortId, Tables};
use kubenat_core::{IpNet, ProxyMode};

/// kube-proxy's masquerade mark (bit 14).
pub const MASQUERADE_MARK: &str = "0x4000";

/// kube-proxy truncates chain name bases to this many characters.
const CHAIN_NAME_BASE_MAX: usize = 240;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn table(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The payload match prefix (`ip saddr`, `ip6 daddr`).
    fn proto(self) -> &'static str {
        self.table()
    }

    fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }
}

/// Renders the node's tables as an nftables ruleset (`nft -f` syntax). Each family's table
/// is created-then-deleted-then-declared, so loading the file replaces an older copy
/// atomically.
pub fn render(tables: &Tables) -> String {
    let settings = tables.settings();
    let mut out = String::new();
    out.push_str("#!/usr/sbin/nft -f\n");
    out.push_str(
        "# kube-proxy nftables-mode rules, rendered by kubenat from its compiled tables.\n",
    );
    let mode = match settings.mode {
        ProxyMode::Nftables => "nftables",
        ProxyMode::Iptables => "iptables (same packet semantics, written in nft syntax)",
    };
    let _ = writeln!(out, "# mode: {mode}");
    out.push_str(
        "# kube-proxy picks endpoints with `numgen random`; kubenat's engine rotates or uses Maglev.\n",
    );
    for family in families(tables) {
        out.push('\n');
        Renderer::new(tables, family).render(&mut out);
    }
    out
}

/// The families with anything to program; IPv4 alone when the tables are empty.
fn families(tables: &Tables) -> Vec<Family> {
    let settings = tables.settings();
    let mut used = BTreeSet::new();
    for (_, port) in tables.ports() {
        used.insert(port.ipv6);
    }
    for ip in settings.node_ips.iter().filter(|ip| !ip.is_loopback()) {
        used.insert(ip.is_ipv6());
    }
    for net in settings.cluster_cidrs.iter().chain(&settings.service_cidrs) {
        used.insert(net.addr().is_ipv6());
    }
    if used.is_empty() {
        used.insert(false);
    }
    used.into_iter()
        .map(|v6| if v6 { Family::V6 } else { Family::V4 })
        .collect()
}

/// A stable 8-character tag for a name: base32 (RFC 4648 alphabet, as kube-proxy uses) of
/// the first 40 bits of the name's FNV-1a 64-bit hash. kube-proxy uses SHA-256; any stable
/// hash serves the same purpose (unique, visually distinct names).
fn name_hash(name: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let bits = h >> 24; // top 40 bits
    (0..8)
        .map(|i| ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Keeps only the characters nft allows in an identifier after its first letter.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `HASH-name`, truncated as kube-proxy's `hashAndTruncate` does.
fn hash_and_truncate(name: &str) -> String {
    let mut base = format!("{}-{}", name_hash(name), name);
    if base.len() > CHAIN_NAME_BASE_MAX {
        base.truncate(CHAIN_NAME_BASE_MAX - 3);
        base.push_str("...");
    }
    base
}

/// nft string literals cannot hold a double quote.
fn comment_text(s: &str) -> String {
    s.replace('"', "'")
}

fn net(n: &IpNet) -> String {
    n.trunc().to_string()
}

/// `a` or `{ a, b }`, for a match against one or several prefixes.
fn one_or_set(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn dnat_target(ep: SocketAddr) -> String {
    match ep {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// What kube-proxy's `syncProxyRules` decides for one service port.
struct Plan<'a> {
    port: &'a CompiledServicePort,
    /// Endpoint chain / affinity set suffix per endpoint.
    endpoint_bases: BTreeMap<SocketAddr, String>,
    cluster_chain: Option<String>,
    local_chain: Option<String>,
    external_chain: Option<String>,
    firewall_chain: Option<String>,
    /// The chain ClusterIP traffic goes to (cluster or local per internalTrafficPolicy).
    internal_chain: Option<String>,
    has_external_endpoints: bool,
}

impl Plan<'_> {
    /// Verdict for a destination whose traffic cannot be served: DROP when endpoints exist
    /// elsewhere (traffic policy Local), REJECT when none exist at all.
    fn no_endpoint_verdict(&self) -> &'static str {
        if self.port.has_endpoints() {
            "drop"
        } else {
            "goto reject-chain"
        }
    }
}

struct Renderer<'a> {
    tables: &'a Tables,
    settings: &'a NodeSettings,
    family: Family,
    /// Service ports of this family by id, sorted by name for output.
    plans: BTreeMap<ServicePortId, Plan<'a>>,
    order: Vec<ServicePortId>,
}

impl<'a> Renderer<'a> {
    fn new(tables: &'a Tables, family: Family) -> Renderer<'a> {
        let settings = tables.settings();
        let mut ports: Vec<(ServicePortId, &CompiledServicePort)> = tables
            .ports()
            .filter(|(_, p)| Family::of(p.cluster_ip) == family)
            .collect();
        ports.sort_by(|(ia, a), (ib, b)| {
            (&a.name, a.protocol, a.port, ia).cmp(&(&b.name, b.protocol, b.port, ib))
        });
        let mut used_bases = BTreeSet::new();
        let mut plans = BTreeMap::new();
        let mut order = Vec::new();
        for (id, port) in ports {
            let mut name = sanitize(&format!(
                "{}/{}/{}/{}",
                port.name.service.namespace, port.name.service.name, port.protocol, port.name.port
            ));
            // The API forbids two ports with one name; keep chains apart if the model has them.
            let plain = name.clone();
            let mut n = 2;
            while !used_bases.insert(name.clone()) {
                name = format!("{plain}.{n}");
                n += 1;
            }
            plans.insert(id, plan(port, &name, settings));
            order.push(id);
        }
        Renderer {
            tables,
            settings,
            family,
            plans,
            order,
        }
    }

    fn cluster_cidrs(&self) -> Vec<String> {
        self.settings
            .cluster_cidrs
            .iter()
            .filter(|n| Family::of(n.addr()) == self.family)
            .map(net)
            .collect()
    }

    fn render(&self, out: &mut String) {
        let fam = self.family.table();
        let _ = writeln!(out, "table {fam} kube-proxy");
        let _ = writeln!(out, "delete table {fam} kube-proxy");
        let _ = writeln!(out, "table {fam} kube-proxy {{");
        out.push_str("\tcomment \"rules for kube-proxy\"\n");
        self.render_sets_and_maps(out);
        self.render_base_chains(out);
        for id in &self.order {
            self.render_service_port(out, &self.plans[id]);
        }
        out.push_str("}\n");
    }

    fn render_sets_and_maps(&self, out: &mut String) {
        let addr = self.family.addr_type();
        let cluster_ips: BTreeSet<IpAddr> =
            self.plans.values().map(|p| p.port.cluster_ip).collect();
        set(
            out,
            "cluster-ips",
            addr,
            &[],
            "Active ClusterIPs",
            cluster_ips.iter().map(ToString::to_string).collect(),
        );

        let mut nodeport_ips: Vec<String> = self
            .settings
            .node_ips
            .iter()
            .filter(|ip| Family::of(**ip) == self.family && !ip.is_loopback())
            .filter(|ip| self.settings.serves_node_ports_on(**ip))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(ToString::to_string)
            .collect();
        let mut flags: &[&str] = &[];
        if self.family == Family::V4
            && self
                .settings
                .serves_node_ports_on(IpAddr::from([127, 0, 0, 1]))
        {
            // iptables mode's localhost NodePorts (needs route_localnet on a real node).
            nodeport_ips.push("127.0.0.0/8".to_string());
            flags = &["interval"];
        }
        set(
            out,
            "nodeport-ips",
            addr,
            flags,
            "IPs that accept NodePort traffic",
            nodeport_ips,
        );

        let ip_key = format!("{addr} . inet_proto . inet_service");
        let port_key = "inet_proto . inet_service";
        let mut firewall_ips = Vec::new();
        let mut no_endpoint_services = Vec::new();
        let mut service_ips = Vec::new();
        for (key, id, frontend) in self.tables.sorted_frontends() {
            let Some(plan) = self.plans.get(&id) else {
                continue;
            };
            let k = format!("{} . {} . {}", key.address, key.protocol, key.port);
            let comment = comment_text(&plan.port.name.to_string());
            if frontend == Frontend::ClusterIp {
                match &plan.internal_chain {
                    Some(chain) => service_ips.push(format!("{k} : goto {chain}")),
                    None => no_endpoint_services.push(format!(
                        "{k} comment \"{comment}\" : {}",
                        plan.no_endpoint_verdict()
                    )),
                }
                continue;
            }
            if let Some(chain) = &plan.external_chain {
                service_ips.push(format!("{k} : goto {chain}"));
            }
            if !plan.has_external_endpoints {
                no_endpoint_services.push(format!(
                    "{k} comment \"{comment}\" : {}",
                    plan.no_endpoint_verdict()
                ));
            }
            if frontend == Frontend::LoadBalancerIp {
                if let Some(chain) = &plan.firewall_chain {
                    firewall_ips.push(format!("{k} : goto {chain}"));
                }
            }
        }
        let mut no_endpoint_nodeports = Vec::new();
        let mut service_nodeports = Vec::new();
        for (protocol, node_port, v6, id) in self.tables.sorted_node_ports() {
            if v6 != (self.family == Family::V6) {
                continue;
            }
            let Some(plan) = self.plans.get(&id) else {
                continue;
            };
            let k = format!("{protocol} . {node_port}");
            if let Some(chain) = &plan.external_chain {
                service_nodeports.push(format!("{k} : goto {chain}"));
            }
            if !plan.has_external_endpoints {
                no_endpoint_nodeports.push(format!(
                    "{k} comment \"{}\" : {}",
                    comment_text(&plan.port.name.to_string()),
                    plan.no_endpoint_verdict()
                ));
            }
        }
        map(
            out,
            "firewall-ips",
            &ip_key,
            "destinations that are subject to LoadBalancerSourceRanges",
            firewall_ips,
        );
        map(
            out,
            "no-endpoint-nodeports",
            port_key,
            "vmap to drop or reject packets to service nodeports with no endpoints",
            no_endpoint_nodeports,
        );
        map(
            out,
            "no-endpoint-services",
            &ip_key,
            "vmap to drop or reject packets to services with no endpoints",
            no_endpoint_services,
        );
        map(
            out,
            "service-ips",
            &ip_key,
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
            service_ips,
        );
        map(
            out,
            "service-nodeports",
            port_key,
            "NodePort traffic",
            service_nodeports,
        );
    }

    fn render_base_chains(&self, out: &mut String) {
        let ip = self.family.proto();
        let nft_mode = self.settings.mode == ProxyMode::Nftables;
        let new = "ct state new";

        out.push_str(
            "\n\t# Base chains. Priorities: -110 = dstnat - 10 (before DNAT), -100 = dstnat,\n\t# 0 = filter (after DNAT), 100 = srcnat. Named priorities are hook-specific in nft.\n",
        );
        base_chain(
            out,
            "filter-prerouting-pre-dnat",
            "filter hook prerouting priority -110",
            &[format!("{new} jump firewall-check")],
        );
        base_chain(
            out,
            "filter-output-pre-dnat",
            "filter hook output priority -110",
            &[format!("{new} jump firewall-check")],
        );
        let mut forward = vec![format!("{new} jump service-endpoints-check")];
        let mut output = vec![format!("{new} jump service-endpoints-check")];
        if nft_mode {
            forward.push(format!("{new} jump cluster-ips-check"));
            output.push(format!("{new} jump cluster-ips-check"));
        }
        base_chain(
            out,
            "filter-forward",
            "filter hook forward priority 0",
            &forward,
        );
        base_chain(
            out,
            "filter-input",
            "filter hook input priority 0",
            &[
                format!("{new} jump nodeport-endpoints-check"),
                format!("{new} jump service-endpoints-check"),
            ],
        );
        base_chain(
            out,
            "filter-output",
            "filter hook output priority 0",
            &output,
        );
        base_chain(
            out,
            "nat-prerouting",
            "nat hook prerouting priority -100",
            &["jump services".to_string()],
        );
        base_chain(
            out,
            "nat-output",
            "nat hook output priority -100",
            &["jump services".to_string()],
        );
        base_chain(
            out,
            "nat-postrouting",
            "nat hook postrouting priority 100",
            &["jump masquerading".to_string()],
        );

        out.push('\n');
        chain(
            out,
            "firewall-check",
            None,
            &[format!(
                "{ip} daddr . meta l4proto . th dport vmap @firewall-ips"
            )],
        );
        chain(
            out,
            "service-endpoints-check",
            None,
            &[format!(
                "{ip} daddr . meta l4proto . th dport vmap @no-endpoint-services"
            )],
        );
        chain(
            out,
            "nodeport-endpoints-check",
            None,
            &[format!(
                "{ip} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"
            )],
        );
        let mut cluster_ips_check = Vec::new();
        if nft_mode {
            cluster_ips_check.push(format!(
                "{ip} daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\""
            ));
            let cidrs: Vec<String> = self
                .settings
                .service_cidrs
                .iter()
                .filter(|n| Family::of(n.addr()) == self.family)
                .map(net)
                .collect();
            if !cidrs.is_empty() {
                cluster_ips_check.push(format!(
                    "{ip} daddr {{ {} }} drop comment \"Drop traffic to unallocated ClusterIPs\"",
                    cidrs.join(", ")
                ));
            }
        }
        chain(out, "cluster-ips-check", None, &cluster_ips_check);
        chain(
            out,
            "services",
            None,
            &[
                format!("{ip} daddr . meta l4proto . th dport vmap @service-ips"),
                format!("{ip} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"),
            ],
        );
        chain(
            out,
            "mark-for-masquerade",
            None,
            &[format!("mark set mark or {MASQUERADE_MARK}")],
        );
        chain(
            out,
            "masquerading",
            None,
            &[
                format!("mark and {MASQUERADE_MARK} == 0 return"),
                format!("mark set mark xor {MASQUERADE_MARK}"),
                "masquerade fully-random".to_string(),
            ],
        );
        chain(
            out,
            "reject-chain",
            Some("helper for @no-endpoint-services / @no-endpoint-nodeports"),
            &["reject".to_string()],
        );
    }

    fn render_service_port(&self, out: &mut String, plan: &Plan<'_>) {
        let ip = self.family.proto();
        let port = plan.port;
        let _ = writeln!(out, "\n\t# {} ({})", port.name, port.protocol);
        let cidrs = self.cluster_cidrs();

        if let Some(timeout) = port.affinity_timeout {
            let secs = timeout.as_secs().max(1);
            for base in plan.endpoint_bases.values() {
                let _ = writeln!(out, "\tset affinity-{base} {{");
                let _ = writeln!(out, "\t\ttype {}", self.family.addr_type());
                out.push_str("\t\tflags dynamic,timeout\n");
                let _ = writeln!(out, "\t\ttimeout {secs}s");
                out.push_str("\t}\n");
            }
        }

        // The ClusterIP masquerade rule lives in the internal traffic chain; the daddr match
        // keeps external traffic that shares the chain out of it.
        let masquerade_rule = if self.settings.masquerade_all {
            Some(format!(
                "{ip} daddr {} jump mark-for-masquerade",
                port.cluster_ip
            ))
        } else if !cidrs.is_empty() {
            Some(format!(
                "{ip} daddr {} {ip} saddr != {} jump mark-for-masquerade",
                port.cluster_ip,
                one_or_set(&cidrs)
            ))
        } else {
            // No cluster CIDR of this family: no local detector, no masquerade.
            None
        };

        let policy_chain = |out: &mut String, name: &str, endpoints: Endpoints<'_>| {
            let mut rules = Vec::new();
            if plan.internal_chain.as_deref() == Some(name) {
                rules.extend(masquerade_rule.clone());
            }
            if port.affinity_timeout.is_some() {
                for ep in endpoints.iter() {
                    let base = &plan.endpoint_bases[&ep];
                    rules.push(format!("{ip} saddr @affinity-{base} goto endpoint-{base}"));
                }
            }
            let arms: Vec<String> = endpoints
                .iter()
                .enumerate()
                .map(|(i, ep)| format!("{i} : goto endpoint-{}", plan.endpoint_bases[&ep]))
                .collect();
            rules.push(format!(
                "numgen random mod {} vmap {{ {} }}",
                endpoints.len(),
                arms.join(", ")
            ));
            chain(out, name, None, &rules);
        };
        if let Some(name) = &plan.cluster_chain {
            policy_chain(out, name, port.endpoints.cluster.view());
        }
        if let Some(name) = &plan.local_chain {
            policy_chain(out, name, port.endpoints.local_on(&self.settings.node_name));
        }

        if let Some(name) = &plan.external_chain {
            let mut rules = Vec::new();
            let cluster = plan.cluster_chain.as_deref();
            if !port.external_policy_local {
                rules.push("jump mark-for-masquerade".to_string());
                if let Some(cluster) = cluster {
                    rules.push(format!("goto {cluster}"));
                }
            } else {
                if let Some(cluster) = cluster {
                    if !cidrs.is_empty() {
                        rules.push(format!(
                            "{ip} saddr {} goto {cluster} comment \"short-circuit pod traffic\"",
                            one_or_set(&cidrs)
                        ));
                    }
                    rules.push(
                        "fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\""
                            .to_string(),
                    );
                    rules.push(format!(
                        "fib saddr type local goto {cluster} comment \"short-circuit local traffic\""
                    ));
                }
                if let Some(local) = &plan.local_chain {
                    rules.push(format!("goto {local}"));
                }
            }
            chain(out, name, None, &rules);
        }

        if let Some(name) = &plan.firewall_chain {
            let ranges: Vec<String> = port
                .allowed_sources(&self.settings.node_ips)
                .iter()
                .map(net)
                .collect();
            chain(
                out,
                name,
                None,
                &[format!("{ip} saddr != {{ {} }} drop", ranges.join(", "))],
            );
        }

        for (ep, base) in &plan.endpoint_bases {
            let mut rules = vec![format!("{ip} saddr {} jump mark-for-masquerade", ep.ip())];
            if port.affinity_timeout.is_some() {
                rules.push(format!("update @affinity-{base} {{ {ip} saddr }}"));
            }
            rules.push(format!(
                "meta l4proto {} dnat to {}",
                port.protocol,
                dnat_target(*ep)
            ));
            chain(out, &format!("endpoint-{base}"), None, &rules);
        }
    }
}

fn plan<'a>(port: &'a CompiledServicePort, name: &str, settings: &NodeSettings) -> Plan<'a> {
    let base = hash_and_truncate(name);
    let has_endpoints = port.has_endpoints();
    let externally_accessible =
        port.node_port.is_some() || port.frontends().any(|(_, f)| f.is_external());
    let uses_cluster = !port.endpoints.cluster.is_empty()
        && (!port.internal_policy_local || externally_accessible);
    let local = port.endpoints.local_on(&settings.node_name);
    let uses_local = !local.is_empty()
        && (port.internal_policy_local || (port.external_policy_local && externally_accessible));
    // kube-proxy's allReachableEndpoints: endpoint chains only for the classes in use.
    let reachable = uses_cluster
        .then_some(port.endpoints.cluster.view())
        .into_iter()
        .chain(uses_local.then_some(local))
        .flat_map(Endpoints::iter);
    let endpoint_bases = reachable
        .map(|ep| {
            // IPv6 colons are not allowed in chain names; kube-proxy writes them as dots.
            let ip = ep.ip().to_string().replace(':', ".");
            (
                ep,
                hash_and_truncate(&format!("{name}__{ip}/{}", ep.port())),
            )
        })
        .collect();
    let cluster_chain = uses_cluster.then(|| format!("service-{base}"));
    let local_chain = uses_local.then(|| format!("local-{base}"));
    let internal_chain = if port.internal_policy_local {
        local_chain.clone()
    } else {
        cluster_chain.clone()
    };
    let has_external_endpoints =
        has_endpoints && (!port.external_policy_local || !local.is_empty());
    let external_chain =
        (has_endpoints && externally_accessible).then(|| format!("external-{base}"));
    let has_lb_ips = port.frontends().any(|(_, f)| f == Frontend::LoadBalancerIp);
    // nftables checks source ranges before DNAT whatever the endpoints; iptables builds its
    // firewall chain only for services with endpoints.
    let firewall_chain = (has_lb_ips
        && !port.source_ranges().is_empty()
        && (settings.mode == ProxyMode::Nftables || has_endpoints))
        .then(|| format!("firewall-{base}"));
    Plan {
        port,
        endpoint_bases,
        cluster_chain,
        local_chain,
        external_chain,
        firewall_chain,
        internal_chain,
        has_external_endpoints,
    }
}

fn set(
    out: &mut String,
    name: &str,
    ty: &str,
    flags: &[&str],
    comment: &str,
    elements: Vec<String>,
) {
    let _ = writeln!(out, "\n\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    if !flags.is_empty() {
        let _ = writeln!(out, "\t\tflags {}", flags.join(","));
    }
    let _ = writeln!(out, "\t\tcomment \"{comment}\"");
    elements_block(out, &elements);
    out.push_str("\t}\n");
}

fn map(out: &mut String, name: &str, key: &str, comment: &str, elements: Vec<String>) {
    let _ = writeln!(out, "\n\tmap {name} {{");
    let _ = writeln!(out, "\t\ttype {key} : verdict");
    let _ = writeln!(out, "\t\tcomment \"{comment}\"");
    elements_block(out, &elements);
    out.push_str("\t}\n");
}

fn elements_block(out: &mut String, elements: &[String]) {
    if elements.is_empty() {
        return;
    }
    out.push_str("\t\telements = {\n");
    for (i, e) in elements.iter().enumerate() {
        let sep = if i + 1 < elements.len() { "," } else { "" };
        let _ = writeln!(out, "\t\t\t{e}{sep}");
    }
    out.push_str("\t\t}\n");
}

fn base_chain(out: &mut String, name: &str, hook: &str, rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    let _ = writeln!(out, "\t\ttype {hook}; policy accept;");
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}

fn chain(out: &mut String, name: &str, comment: Option<&str>, rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    if let Some(c) = comment {
        let _ = writeln!(out, "\t\tcomment \"{c}\"");
    }
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_is_stable_base32() {
        let h = name_hash("ns1/svc1/tcp/p80");
        assert_eq!(h.len(), 8);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(h, name_hash("ns1/svc1/tcp/p80"));
        assert_ne!(h, name_hash("ns1/svc1/tcp/p81"));
    }

    #[test]
    fn long_names_are_truncated_like_kube_proxy() {
        let long = "x".repeat(300);
        let base = hash_and_truncate(&long);
        assert_eq!(base.len(), CHAIN_NAME_BASE_MAX);
        assert!(base.ends_with("..."));
    }
}
