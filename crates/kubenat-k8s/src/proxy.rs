//! `KubeProxyConfiguration` (kubeproxy.config.k8s.io/v1alpha1): the fields that change what
//! kube-proxy does to packets, and how they become kubenat's [`ProxyConfig`] settings.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use kubenat_core::conntrack::MAX_CAPACITY;
use kubenat_core::{ConntrackTimeouts, ProxyMode};
use serde::{Deserialize, Serialize};

use crate::validate::{parse_cidr_sloppy, parse_go_duration};

pub const API_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";

/// The fields of kube-proxy's configuration file that kubenat honours (others are ignored).
/// Every field is optional, as in the ConfigMap kubeadm writes (which sets many to `null`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    /// `iptables`, `nftables` (kubenat's default), or `ipvs` (not supported).
    pub mode: Option<String>,
    pub hostname_override: Option<String>,
    /// Comma-separated pod network CIDRs, one per family (`10.10.0.0/16,fd00::/48`).
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    /// `ClusterCIDR` (default), `NodeCIDR`, `BridgeInterface`, `InterfaceNamePrefix`.
    pub detect_local_mode: Option<String>,
    /// CIDRs, or the single value `primary`.
    pub node_port_addresses: Option<Vec<String>>,
    pub iptables: Option<IptablesConfiguration>,
    pub nftables: Option<NftablesConfiguration>,
    pub conntrack: Option<ConntrackConfiguration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IptablesConfiguration {
    pub masquerade_all: Option<bool>,
    pub localhost_node_ports: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NftablesConfiguration {
    pub masquerade_all: Option<bool>,
}

/// `conntrack`: durations are Go duration strings (`24h0m0s`); zero leaves the kernel's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConntrackConfiguration {
    pub max_per_core: Option<i64>,
    pub min: Option<i64>,
    pub tcp_established_timeout: Option<String>,
    pub tcp_close_wait_timeout: Option<String>,
    pub udp_timeout: Option<String>,
    pub udp_stream_timeout: Option<String>,
}

/// How kube-proxy tells pod traffic from the rest (`detectLocalMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DetectLocal {
    ClusterCidr(Vec<IpNet>),
    NodeCidr,
    /// Interface-based modes kubenat cannot model: no local detection.
    Unsupported,
}

/// `nodePortAddresses`, interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodePortAddresses {
    /// Every node address (iptables mode's default: "all local addresses").
    All,
    /// The node's primary address of each family (nftables mode's default).
    Primary,
    Cidrs(Vec<IpNet>),
}

/// CPUs assumed when turning `maxPerCore` into a table size: eight, the count for which
/// kube-proxy's defaults (32768 per core, min 131072) give `ProxyConfig`'s default 262144.
pub const ASSUMED_CPUS: i64 = 8;

/// The settings, validated. Problems come back as (field path, message, is_warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub mode: ProxyMode,
    pub hostname_override: Option<String>,
    pub detect_local: DetectLocal,
    pub node_port_addresses: NodePortAddresses,
    pub masquerade_all: bool,
    pub localhost_node_ports: bool,
    pub timeouts: ConntrackTimeouts,
    pub conntrack_capacity: Option<usize>,
}

pub(crate) type Problem = (String, String, bool);

impl KubeProxyConfiguration {
    pub(crate) fn settings(&self) -> (Settings, Vec<Problem>) {
        let mut problems: Vec<Problem> = Vec::new();
        let mut error =
            |field: &str, message: String| problems.push((field.into(), message, false));

        let mode = match self.mode.as_deref().unwrap_or("") {
            "" | "nftables" => ProxyMode::Nftables,
            "iptables" => ProxyMode::Iptables,
            "ipvs" | "kernelspace" => {
                error(
                    "mode",
                    format!(
                        "{:?} is not supported by kubenat (iptables or nftables)",
                        self.mode.as_deref().unwrap_or("")
                    ),
                );
                ProxyMode::Nftables
            }
            other => {
                error(
                    "mode",
                    format!("{other:?} is not a valid mode (iptables, ipvs or nftables)"),
                );
                ProxyMode::Nftables
            }
        };

        let mut cluster_cidrs = Vec::new();
        let cidr_text = self.cluster_cidr.as_deref().unwrap_or("");
        if !cidr_text.trim().is_empty() {
            let parts: Vec<&str> = cidr_text.split(',').map(str::trim).collect();
            for part in &parts {
                match parse_cidr_sloppy(part) {
                    Some(net) => cluster_cidrs.push(net),
                    None => error(
                        "clusterCIDR",
                        format!("{part:?} is not a valid CIDR (e.g. 10.244.0.0/16)"),
                    ),
                }
            }
            let v4 = cluster_cidrs.iter().filter(|n| n.addr().is_ipv4()).count();
            if parts.len() > 2 || v4 > 1 || cluster_cidrs.len() - v4 > 1 {
                error(
                    "clusterCIDR",
                    format!(
                        "{cidr_text:?} must be one CIDR, or two of different IP families (dual-stack)"
                    ),
                );
            }
        }

        let detect_local = match self.detect_local_mode.as_deref().unwrap_or("") {
            "" | "ClusterCIDR" => DetectLocal::ClusterCidr(cluster_cidrs),
            "NodeCIDR" => DetectLocal::NodeCidr,
            mode @ ("BridgeInterface" | "InterfaceNamePrefix") => {
                problems.push((
                    "detectLocalMode".into(),
                    format!(
                        "{mode} is not modelled by kubenat: no traffic is told apart as pod traffic"
                    ),
                    true,
                ));
                DetectLocal::Unsupported
            }
            other => {
                problems.push((
                    "detectLocalMode".into(),
                    format!(
                        "{other:?} is not a valid mode (ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix)"
                    ),
                    false,
                ));
                DetectLocal::Unsupported
            }
        };

        let node_port_addresses = match self.node_port_addresses.as_deref() {
            None | Some([]) => match mode {
                ProxyMode::Nftables => NodePortAddresses::Primary,
                ProxyMode::Iptables => NodePortAddresses::All,
            },
            Some(list) => {
                let mut nets = Vec::new();
                let has_primary = list.iter().any(|s| s == "primary");
                for (i, entry) in list.iter().enumerate() {
                    if entry == "primary" {
                        if list.len() > 1 {
                            problems.push((
                                format!("nodePortAddresses[{i}]"),
                                "\"primary\" must be the only entry".into(),
                                false,
                            ));
                        }
                    } else {
                        match parse_cidr_sloppy(entry) {
                            Some(net) => nets.push(net),
                            None => problems.push((
                                format!("nodePortAddresses[{i}]"),
                                format!(
                                    "{entry:?} is not a valid CIDR or \"primary\" (e.g. 192.168.0.0/24)"
                                ),
                                false,
                            )),
                        }
                    }
                }
                if has_primary {
                    NodePortAddresses::Primary
                } else {
                    NodePortAddresses::Cidrs(nets)
                }
            }
        };

        let masquerade_all = match mode {
            ProxyMode::Iptables => self.iptables.as_ref().and_then(|c| c.masquerade_all),
            ProxyMode::Nftables => self.nftables.as_ref().and_then(|c| c.masquerade_all),
        }
        .unwrap_or(false);
        let localhost_node_ports = self
            .iptables
            .as_ref()
            .and_then(|c| c.localhost_node_ports)
            .unwrap_or(true);

        let mut timeouts = ConntrackTimeouts::default();
        let mut conntrack_capacity = None;
        if let Some(ct) = &self.conntrack {
            // Zero means "leave the kernel's value": Linux's defaults.
            let fields: [(&str, &Option<String>, &mut Duration, u64); 4] = [
                (
                    "conntrack.tcpEstablishedTimeout",
                    &ct.tcp_established_timeout,
                    &mut timeouts.tcp_established,
                    432_000,
                ),
                (
                    "conntrack.tcpCloseWaitTimeout",
                    &ct.tcp_close_wait_timeout,
                    &mut timeouts.tcp_close_wait,
                    60,
                ),
                (
                    "conntrack.udpTimeout",
                    &ct.udp_timeout,
                    &mut timeouts.udp,
                    30,
                ),
                (
                    "conntrack.udpStreamTimeout",
                    &ct.udp_stream_timeout,
                    &mut timeouts.udp_stream,
                    120,
                ),
            ];
            for (field, text, slot, kernel) in fields {
                let Some(text) = text else { continue };
                match parse_go_duration(text) {
                    Some(d) if d.is_zero() => *slot = Duration::from_secs(kernel),
                    Some(d) if d.as_secs() == 0 => problems.push((
                        field.into(),
                        format!("{text:?} is shorter than the kernel's one-second resolution"),
                        false,
                    )),
                    Some(d) => *slot = Duration::from_secs(d.as_secs()),
                    None => problems.push((
                        field.into(),
                        format!(
                            "{text:?} is not a valid duration (a Go duration such as \"24h0m0s\" or \"90s\")"
                        ),
                        false,
                    )),
                }
            }
            let mut check = |field: &str, value: Option<i64>| match value {
                Some(v) if v < 0 => {
                    problems.push((field.into(), format!("{v} must not be negative"), false));
                    None
                }
                other => other,
            };
            let per_core = check("conntrack.maxPerCore", ct.max_per_core);
            let min = check("conntrack.min", ct.min);
            let per_core = per_core.unwrap_or(32_768);
            let min = min.unwrap_or(131_072);
            // nf_conntrack_max = max(maxPerCore * CPUs, min); maxPerCore 0 leaves the kernel's.
            if per_core > 0 {
                let scaled = per_core.saturating_mul(ASSUMED_CPUS);
                let max = scaled.max(min);
                let limit = MAX_CAPACITY as i64;
                if max > limit {
                    // The kernel's nf_conntrack_max is a 32-bit int: kube-proxy fails the same way.
                    let (field, how) = if scaled >= min {
                        (
                            "conntrack.maxPerCore",
                            format!(
                                "{per_core} per core x {ASSUMED_CPUS} CPUs = {scaled} connections"
                            ),
                        )
                    } else {
                        ("conntrack.min", format!("{min} connections"))
                    };
                    problems.push((
                        field.into(),
                        format!("{how} is more than a conntrack table can track ({limit})"),
                        false,
                    ));
                } else {
                    conntrack_capacity = Some(max as usize);
                }
            }
        }

        let hostname_override = self
            .hostname_override
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);

        (
            Settings {
                mode,
                hostname_override,
                detect_local,
                node_port_addresses,
                masquerade_all,
                localhost_node_ports,
                timeouts,
                conntrack_capacity,
            },
            problems,
        )
    }
}

/// The node's primary address of each family: the first of each.
pub(crate) fn primary_ips(node_ips: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in node_ips {
        if !out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            out.push(*ip);
        }
    }
    out
}
