//! Scenario files in YAML: the topology, the manifests it runs (paths relative to the
//! file), the applications, the traffic and the timed events. `examples/miempresa/
//! scenario.yaml` is [`Scenario::notes`] written out; `failover.yaml` adds a failure.
//!
//! ```yaml
//! name: my cluster
//! seed: 1
//! manifests: [cluster.yaml, kube-proxy.yaml]
//! network: {lan: 192.168.0.0/16, podNetwork: 10.10.0.0/16, lanLatency: 200us, vethLatency: 20us}
//! cluster: {domain: cluster.local, dns: kube-system/kube-dns}
//! controlPlane: {noSchedule: [nodo1], endpointDelay: 1s, restartDelay: 3s}
//! machines:
//!   - {name: lb, ip: 192.168.0.10, balancer: {port: 80, backends: [192.168.0.101:30880]}}
//!   - {name: dns, ip: 192.168.0.53, dns: {records: {web1.miempresa.com: 192.168.0.10}}}
//!   - name: PC
//!     ip: 192.168.0.200
//!     browser: {dns: 192.168.0.53, url: "http://web1.miempresa.com/", requests: 4}
//! pods:
//!   - {name: coredns-0, namespace: kube-system, ip: 10.10.0.10, node: nodo1, clusterDns: {}}
//!   - {name: wp-1, ip: 10.10.0.102, node: nodoa, wordpress: {db: "mariadb-service:3307"}}
//!   - {name: ingress-1, ip: 10.10.0.105, node: nodob, ingressController: {class: nginx}}
//!   - {name: mariadb-0, ip: 10.10.0.103, node: nodoc, mariadb: {port: 3306, blogname: Mi Empresa}}
//! events:
//!   - {at: 1s, killPod: mariadb-0}
//!   - {at: 5s, drainNode: nodob}
//! timeLimit: 120s
//! ```
//!
//! Durations are a number and a unit: `ns`, `us`, `ms`, `s`, `m` (`1.5s`, `200us`).
//! A WordPress `db` of `name:port` is resolved through DNS per page; `address:port` is used
//! as is (the notes' warning: it breaks when the pod moves).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;
use kubenat_core::ServiceName;
use serde::Deserialize;

use crate::apps::pc::Browse;
use crate::apps::wordpress::DbHost;
use crate::clock::Instant;
use crate::scenario::{Action, ControlPlane, LanApp, Machine, Pod, PodApp, Scenario, TimedEvent};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    name: Option<String>,
    seed: Option<u64>,
    manifests: Vec<String>,
    network: Network,
    #[serde(default)]
    cluster: Cluster,
    #[serde(default)]
    control_plane: ControlPlaneFile,
    #[serde(default)]
    machines: Vec<MachineFile>,
    #[serde(default)]
    pods: Vec<PodFile>,
    #[serde(default)]
    events: Vec<EventFile>,
    time_limit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Network {
    lan: String,
    pod_network: String,
    lan_latency: Option<String>,
    veth_latency: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Cluster {
    domain: Option<String>,
    /// `namespace/name` of the DNS Service.
    dns: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControlPlaneFile {
    #[serde(default)]
    no_schedule: Vec<String>,
    endpoint_delay: Option<String>,
    restart_delay: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MachineFile {
    name: String,
    ip: Ipv4Addr,
    balancer: Option<BalancerFile>,
    dns: Option<DnsFile>,
    browser: Option<BrowserFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalancerFile {
    port: u16,
    backends: Vec<SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsFile {
    records: BTreeMap<String, Ipv4Addr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserFile {
    dns: Ipv4Addr,
    url: String,
    requests: u32,
    start: Option<String>,
    gap: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodFile {
    name: String,
    namespace: Option<String>,
    ip: Ipv4Addr,
    node: String,
    cluster_dns: Option<Empty>,
    ingress_controller: Option<IngressFile>,
    wordpress: Option<WordPressFile>,
    mariadb: Option<MariaDbFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngressFile {
    class: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordPressFile {
    db: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MariaDbFile {
    port: u16,
    blogname: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventFile {
    at: String,
    kill_pod: Option<String>,
    drain_node: Option<String>,
}

/// Parses `1.5s`, `200us`, `10ms`, `2m`, `500ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} has no unit (ns, us, ms, s, m)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?}: {number:?} is not a number"))?;
    let nanos_per = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        other => return Err(format!("duration {text:?}: unknown unit {other:?}")),
    };
    Ok(Duration::from_nanos((value * nanos_per).round() as u64))
}

fn duration_or(text: &Option<String>, default: Duration, what: &str) -> Result<Duration, String> {
    match text {
        Some(t) => parse_duration(t).map_err(|e| format!("{what}: {e}")),
        None => Ok(default),
    }
}

/// `http://host[:port]/path` -> (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("url {url:?}: only http:// URLs are simulated"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| format!("url {url:?}: bad port {p:?}"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("url {url:?} has no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// The one `Some` of `options`; `noun` names what is missing or doubled in the error.
fn exactly_one<T>(what: &str, noun: &str, options: Vec<Option<T>>) -> Result<T, String> {
    let mut found = options.into_iter().flatten();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(format!("{what}: no {noun} given")),
        (Some(_), Some(_)) => Err(format!("{what}: more than one {noun} given")),
    }
}

fn machine(m: MachineFile) -> Result<Machine, String> {
    let what = format!("machine {}", m.name);
    let browser = match m.browser {
        Some(b) => {
            let (host, port, path) = parse_url(&b.url).map_err(|e| format!("{what}: {e}"))?;
            Some(LanApp::Browser {
                dns: b.dns,
                browse: Browse {
                    host,
                    path,
                    port,
                    requests: b.requests,
                    start: Instant::ZERO + duration_or(&b.start, Duration::from_millis(10), &what)?,
                    gap: duration_or(&b.gap, Duration::from_millis(20), &what)?,
                    timeout: duration_or(&b.timeout, Duration::from_secs(10), &what)?,
                },
            })
        }
        None => None,
    };
    let app = exactly_one(
        &what,
        "application",
        vec![
            m.balancer.map(|b| LanApp::Balancer {
                port: b.port,
                backends: b.backends,
            }),
            m.dns.map(|d| LanApp::Dns {
                records: d.records.into_iter().collect(),
            }),
            browser,
        ],
    )?;
    Ok(Machine {
        name: m.name,
        ip: m.ip,
        app,
    })
}

fn db_host(text: &str) -> Result<DbHost, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(DbHost::Address(address));
    }
    let (name, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("db {text:?}: expected name:port or address:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("db {text:?}: bad port {port:?}"))?;
    Ok(DbHost::Name(name.to_string(), port))
}

fn pod(p: PodFile) -> Result<Pod, String> {
    let what = format!("pod {}", p.name);
    let wordpress = match p.wordpress {
        Some(w) => Some(PodApp::WordPress {
            db: db_host(&w.db).map_err(|e| format!("{what}: {e}"))?,
        }),
        None => None,
    };
    let app = exactly_one(
        &what,
        "application",
        vec![
            p.cluster_dns.map(|_| PodApp::ClusterDns),
            p.ingress_controller
                .map(|i| PodApp::IngressController { class: i.class }),
            wordpress,
            p.mariadb.map(|m| PodApp::MariaDb {
                port: m.port,
                blogname: m.blogname,
            }),
        ],
    )?;
    Ok(Pod {
        name: p.name,
        namespace: p.namespace.unwrap_or_else(|| "default".into()),
        ip: p.ip,
        node: p.node,
        app,
    })
}

fn event(e: EventFile) -> Result<TimedEvent, String> {
    let at = parse_duration(&e.at).map_err(|err| format!("event at {}: {err}", e.at))?;
    let action = exactly_one(
        &format!("event at {}", e.at),
        "action (killPod, drainNode)",
        vec![
            e.kill_pod.map(|pod| Action::KillPod { pod }),
            e.drain_node.map(|node| Action::DrainNode { node }),
        ],
    )?;
    Ok(TimedEvent { at, action })
}

fn net(text: &str, what: &str) -> Result<Ipv4Net, String> {
    text.parse()
        .map_err(|_| format!("{what}: {text:?} is not an IPv4 network"))
}

/// Parses a scenario; manifest paths are relative to `base`. `default_name` names a
/// scenario without `name`.
pub fn from_yaml_str(text: &str, base: &Path, default_name: &str) -> Result<Scenario, String> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if file.manifests.is_empty() {
        return Err("manifests: at least one file is needed".into());
    }
    let paths: Vec<_> = file.manifests.iter().map(|m| base.join(m)).collect();
    let manifests = kubenat_k8s::load(&paths).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let dns = file
        .cluster
        .dns
        .unwrap_or_else(|| "kube-system/kube-dns".into());
    let (ns, svc) = dns
        .split_once('/')
        .ok_or_else(|| format!("cluster.dns {dns:?}: expected namespace/name"))?;
    let defaults = ControlPlane::default();
    let cp = &file.control_plane;
    Ok(Scenario {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        seed: file.seed.unwrap_or(1),
        manifests,
        lan: net(&file.network.lan, "network.lan")?,
        pod_network: net(&file.network.pod_network, "network.podNetwork")?,
        cluster_domain: file
            .cluster
            .domain
            .unwrap_or_else(|| "cluster.local".into()),
        cluster_dns: ServiceName::new(ns, svc),
        machines: file
            .machines
            .into_iter()
            .map(machine)
            .collect::<Result<_, _>>()?,
        pods: file.pods.into_iter().map(pod).collect::<Result<_, _>>()?,
        lan_latency: duration_or(
            &file.network.lan_latency,
            Duration::from_micros(200),
            "network.lanLatency",
        )?,
        veth_latency: duration_or(
            &file.network.veth_latency,
            Duration::from_micros(20),
            "network.vethLatency",
        )?,
        time_limit: duration_or(&file.time_limit, Duration::from_secs(120), "timeLimit")?,
        events: file
            .events
            .into_iter()
            .map(event)
            .collect::<Result<_, _>>()?,
        control_plane: ControlPlane {
            no_schedule: cp.no_schedule.clone(),
            endpoint_delay: duration_or(
                &cp.endpoint_delay,
                defaults.endpoint_delay,
                "controlPlane.endpointDelay",
            )?,
            restart_delay: duration_or(
                &cp.restart_delay,
                defaults.restart_delay,
                "controlPlane.restartDelay",
            )?,
        },
    })
}

impl Scenario {
    /// Reads a scenario file (YAML; see [`crate::yaml`]).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Scenario, String> {
        from_yaml_file(path.as_ref())
    }
}

/// Reads a scenario file (see the module documentation).
pub fn from_yaml_file(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    from_yaml_str(&text, base, &name).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, want) in [
            ("200us", Duration::from_micros(200)),
            ("1.5s", Duration::from_millis(1500)),
            ("10ms", Duration::from_millis(10)),
            ("2m", Duration::from_secs(120)),
            ("7ns", Duration::from_nanos(7)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["10", "ms", "1h", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://web1.miempresa.com/"),
            Ok(("web1.miempresa.com".into(), 80, "/".into()))
        );
        assert_eq!(
            parse_url("http://a.b:8080/x/y"),
            Ok(("a.b".into(), 8080, "/x/y".into()))
        );
        assert_eq!(parse_url("http://a.b"), Ok(("a.b".into(), 80, "/".into())));
        assert!(parse_url("https://a.b/").is_err());
        assert!(parse_url("http://:80/").is_err());
    }

    #[test]
    fn db_hosts() {
        assert_eq!(
            db_host("mariadb-service:3307"),
            Ok(DbHost::Name("mariadb-service".into(), 3307))
        );
        assert_eq!(
            db_host("10.10.0.103:3306"),
            Ok(DbHost::Address("10.10.0.103:3306".parse().unwrap()))
        );
        assert!(db_host("mariadb-service").is_err());
    }
}
