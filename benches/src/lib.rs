//! Shared pieces of kubenat's scale benchmarks: the sizes to run, reply-direction packets,
//! kube-proxy's iptables-mode layout for the kernel comparison, and the result files the
//! plot command reads.
//!
//! The criterion benches live in `benches/engine.rs`; `src/bin/` holds `kernel-rules`
//! (rulesets for `nft -f` / `iptables-restore`), `flood` (new-connection traffic for the
//! kernel's forwarding rate) and `plot` (the SVGs in `docs/img/`).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use kubenat_core::tables::Tables;
use kubenat_core::{IpNet, Protocol};
use serde::{Deserialize, Serialize};

/// The service counts to run: `KUBENAT_BENCH_SIZES` (comma-separated), by default 1k, 10k,
/// 100k and 1M.
pub fn sizes() -> Vec<usize> {
    parse_sizes(std::env::var("KUBENAT_BENCH_SIZES").ok().as_deref())
}

fn parse_sizes(value: Option<&str>) -> Vec<usize> {
    let value = value.unwrap_or("1000,10000,100000,1000000");
    let sizes: Vec<usize> = value
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .filter(|&n| n > 0)
        .collect();
    assert!(
        !sizes.is_empty(),
        "KUBENAT_BENCH_SIZES={value:?} holds no service count"
    );
    sizes
}

/// A TCP segment from `source` to `destination` with the given flags (`"syn,ack"`, `"ack"`),
/// as raw IPv4 with valid checksums: the reply direction of a synthetic flow.
pub fn tcp_packet(source: SocketAddr, destination: SocketAddr, flags: &str, seq: u32) -> Vec<u8> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (source.ip(), destination.ip()) else {
        panic!("synthetic traffic is IPv4");
    };
    let mut builder = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(
        source.port(),
        destination.port(),
        seq,
        64_240,
    );
    for flag in flags.split(',') {
        builder = match flag {
            "syn" => builder.syn(),
            "ack" => builder.ack(1),
            "fin" => builder.fin(),
            "rst" => builder.rst(),
            "psh" => builder.psh(),
            other => panic!("unknown TCP flag {other}"),
        };
    }
    let payload: &[u8] = if flags.contains("syn") {
        &[]
    } else {
        b"HTTP/1.1 200 OK\r\n"
    };
    let mut out = Vec::with_capacity(64);
    builder
        .write(&mut out, payload)
        .expect("writing to a Vec cannot fail");
    out
}

/// A 16-character chain suffix for `name`, as long as kube-proxy's (which base32-encodes a
/// SHA-256; any stable hash gives the same rule text length and lookup cost).
fn chain_hash(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// The `nat` table kube-proxy's iptables mode writes for the ClusterIP service ports of
/// `tables` (IPv4), in `iptables-restore` syntax: `KUBE-SERVICES` holds one rule per
/// service port (a linear list every new connection walks), each jumping to a
/// `KUBE-SVC-*` chain that marks off-cluster sources for masquerade and picks an endpoint
/// with `-m statistic --mode random --probability 1/(n-i)` (`%0.10f`, as kube-proxy prints it), and one `KUBE-SEP-*` chain
/// per endpoint that DNATs. Per-endpoint comments are left out, as kube-proxy does in
/// "large cluster mode" (over 1000 endpoints). NodePorts, external IPs and the filter
/// table are not written: the synthetic clusters have none of them.
pub fn iptables_restore(tables: &Tables) -> String {
    let cluster_cidrs: Vec<&IpNet> = tables
        .settings()
        .cluster_cidrs
        .iter()
        .filter(|n| n.addr().is_ipv4())
        .collect();
    let mut ports: Vec<_> = tables
        .ports()
        .filter(|(_, p)| p.cluster_ip.is_ipv4())
        .collect();
    ports.sort_by(|(_, a), (_, b)| (&a.name, a.port).cmp(&(&b.name, b.port)));

    let mut chains = String::new();
    let mut rules = String::new();
    let mut out = String::with_capacity(ports.len() * 1024);
    out.push_str("*nat\n");
    for chain in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
        let _ = writeln!(out, ":{chain} ACCEPT [0:0]");
    }
    for chain in [
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    rules.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    let mut per_service = String::new();
    for (_, port) in &ports {
        let proto = protocol_name(port.protocol);
        let name = port.name.to_string();
        let svc = format!("KUBE-SVC-{}", chain_hash(&format!("{name}{proto}")));
        let endpoints = &port.endpoints.cluster;
        let _ = writeln!(chains, ":{svc} - [0:0]");
        let _ = writeln!(
            rules,
            "-A KUBE-SERVICES -d {}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {} -j {svc}",
            port.cluster_ip, port.port
        );
        for cidr in &cluster_cidrs {
            let _ = writeln!(
                per_service,
                "-A {svc} ! -s {} -d {}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {} -j KUBE-MARK-MASQ",
                cidr.trunc(),
                port.cluster_ip,
                port.port
            );
        }
        let n = endpoints.len();
        let mut sep_rules = String::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let sep = format!(
                "KUBE-SEP-{}",
                chain_hash(&format!("{name}{proto}{endpoint}"))
            );
            let _ = writeln!(chains, ":{sep} - [0:0]");
            if i + 1 < n {
                let _ = writeln!(
                    per_service,
                    "-A {svc} -m statistic --mode random --probability {:.10} -j {sep}",
                    1.0 / (n - i) as f64
                );
            } else {
                let _ = writeln!(per_service, "-A {svc} -j {sep}");
            }
            let _ = writeln!(
                sep_rules,
                "-A {sep} -s {}/32 -j KUBE-MARK-MASQ",
                endpoint.ip()
            );
            let _ = writeln!(
                sep_rules,
                "-A {sep} -p {proto} -m {proto} -j DNAT --to-destination {endpoint}"
            );
        }
        per_service.push_str(&sep_rules);
    }
    rules.push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n",
    );
    out.push_str(&chains);
    out.push_str(&rules);
    out.push_str(&per_service);
    out.push_str("COMMIT\n");
    out
}

/// One kernel measurement of `benches/kernel.sh`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KernelRun {
    /// Service ports loaded.
    pub services: usize,
    /// `nftables`, `iptables-legacy` or `iptables-nft`.
    pub layout: String,
    /// Lines in the ruleset file.
    pub rule_lines: u64,
    /// Wall-clock seconds of `nft -f` / `iptables-restore`; `None` when it failed or passed
    /// the bound.
    pub load_seconds: Option<f64>,
    /// The load passed `load_bound_seconds` and was stopped.
    pub load_timed_out: bool,
    /// kubenat's compile of the same services, in the same run.
    pub kubenat_compile_seconds: Option<f64>,
    /// New connections per second the kernel forwarded through the rules.
    pub new_connections_pps: Option<f64>,
    /// Packets per second of established connections (conntrack hits, no rule walk).
    pub established_pps: Option<f64>,
}

/// The JSON file `benches/kernel.sh` writes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KernelReport {
    pub date: String,
    pub machine: String,
    pub kernel: String,
    pub nft_version: String,
    pub iptables_version: String,
    pub load_bound_seconds: u64,
    pub forward_seconds: u64,
    pub runs: Vec<KernelRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_env_syntax() {
        assert_eq!(parse_sizes(None), vec![1000, 10_000, 100_000, 1_000_000]);
        assert_eq!(parse_sizes(Some("1000, 20_000,")), vec![1000, 20_000]);
    }

    #[test]
    fn iptables_layout_walks_services_linearly() {
        let state = kubenat_bench::synthetic::cluster(3, 4, 1);
        let text = iptables_restore(&kubenat_core::compile(&state));
        let dispatch = text
            .lines()
            .filter(|l| l.starts_with("-A KUBE-SERVICES -d "))
            .count();
        assert_eq!(dispatch, 3);
        // kube-proxy's probabilities for 4 endpoints: 1/4, 1/3, 1/2, then the last one.
        for p in ["0.2500000000", "0.3333333333", "0.5000000000"] {
            assert_eq!(text.matches(&format!("--probability {p} ")).count(), 3);
        }
        assert_eq!(text.matches("-j DNAT --to-destination").count(), 12);
        assert!(text.ends_with("COMMIT\n"));
    }
}
