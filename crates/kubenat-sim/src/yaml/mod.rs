//! Scenario files in YAML: the topology, the manifests it runs (paths relative to the
//! file), the applications, the traffic and the timed events. `examples/miempresa/
//! scenario.yaml` is [`Scenario::notes`] written out; `failover.yaml` adds a failure,
//! `scale.yaml` scales WordPress up and down.
//!
//! ```yaml
//! name: my cluster
//! seed: 1
//! manifests: [cluster.yaml, kube-proxy.yaml]
//! network: {lan: 192.168.0.0/16, podNetwork: 10.10.0.0/16, lanLatency: 200us, vethLatency: 20us}
//! cluster: {domain: cluster.local, dns: kube-system/kube-dns}
//! controlPlane: {noSchedule: [nodo1], endpointDelay: 1s, restartDelay: 3s, syncDelay: 0s}
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
//!   - {at: 9s, rollout: default/wordpress}
//!   - {at: 20s, scale: default/wordpress, replicas: 4}
//! timeLimit: 120s
//! ```
//!
//! Events: `killPod: NAME` (the pod dies; its controller recreates it elsewhere),
//! `drainNode: NAME` (cordoned, its pods evicted and recreated elsewhere),
//! `rollout: NAMESPACE/NAME` (`kubectl rollout restart`: the Deployment's pods, those named
//! `NAME-<hash>-<id>` or `NAME-<id>`, replaced one at a time: each new pod, with a new
//! address, is ready `restartDelay` after its step starts and takes its old pod's place in
//! the EndpointSlices; the old one stops `endpointDelay` later) and `scale: NAMESPACE/NAME`
//! with `replicas: N` (`kubectl scale`: missing pods start at once, each named as its
//! ReplicaSet names pods and with a new address on the least-loaded schedulable node, and
//! join the EndpointSlices `restartDelay` later; surplus pods, the newest first, leave the
//! slices at once and stop `endpointDelay` after the last node applied that, so no request
//! is cut. Pods named `NAME-<ordinal>` scale as a StatefulSet's: new ones take the lowest
//! free ordinals, the highest stop first). `syncDelay` spreads each node's kube-proxy sync:
//! a node applies an EndpointSlice change at a random moment up to that long after it
//! (default 0: every node at once). The report gives the requests lost
//! to the events and each change's network programming latency (from the change to the
//! last node applying it), p50, p99 and max.
//!
//! Durations are a number and a unit: `ns`, `us`, `ms`, `s`, `m` (`1.5s`, `200us`).
//! A WordPress `db` of `name:port` is resolved through DNS per page; `address:port` is used
//! as is (the notes' warning: it breaks when the pod moves).
//!
//! Every problem found is reported, each with its file, line and field, as the manifest
//! importer's diagnostics are ([`ScenarioError`]):
//!
//! ```text
//! failover.yaml:47: pods[1].ip: "10.10.0.300" is not an IPv4 address
//! failover.yaml:71: events[0].killPod: no pod mariadb-9 in the scenario
//! scale.yaml:75: events[0].replicas: expected a number of pods (0 or more), found the number -1
//! ```

#[cfg(test)]
mod tests;
mod tree;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;
use kubenat_core::ServiceName;
use kubenat_k8s::{Diagnostic, Manifests};

use crate::apps::pc::Browse;
use crate::apps::wordpress::DbHost;
use crate::clock::Instant;
use crate::scenario::{Action, ControlPlane, LanApp, Machine, Pod, PodApp, Scenario, TimedEvent};
use tree::{Entry, Node, Value};

/// What is wrong with a scenario file: every problem found, each with its file, line and
/// field (a problem in a manifest it names is that manifest's diagnostic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    /// One problem a line: `failover.yaml:47: pods[1].ip: "10.10.0.300" is not an IPv4 address`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

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

fn ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address"))
}

fn socket(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an address:port"))
}

fn network(text: &str) -> Result<Ipv4Net, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 network (such as 10.10.0.0/16)"))
}

/// `namespace/name`.
fn service_name(text: &str) -> Result<ServiceName, String> {
    let (ns, name) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected namespace/name"))?;
    Ok(ServiceName::new(ns, name))
}

/// `parent.key`, or `key` at the top.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A mapping's fields, by name. The path is the mapping's (`pods[1]`).
struct Fields<'n> {
    path: String,
    line: usize,
    entries: &'n [Entry],
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// Reads a scenario's tree, collecting every problem instead of stopping at the first.
/// Each read gives `None` where the value is missing or wrong (and says why once).
struct Reader<'f> {
    file: &'f str,
    problems: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn problem(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            file: self.file.to_string(),
            line: Some(line),
            object: None,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        });
    }

    /// `node` as a mapping of any keys.
    fn mapping<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Some(entries.as_slice()),
            // `key:` with nothing after it: no fields.
            Value::Null => Some(&[]),
            _ => {
                let found = node.describe();
                self.problem(
                    node.line,
                    path,
                    format!("expected a mapping, found {found}"),
                );
                None
            }
        }
    }

    /// `node` as a mapping of the fields in `known`; any other field is a problem.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
        let entries = self.mapping(node, path)?;
        for entry in entries {
            if !known.contains(&entry.key.as_str()) {
                let message = match known {
                    [] => "unknown field; expected none".to_string(),
                    _ => format!("unknown field; expected one of {}", known.join(", ")),
                };
                self.problem(entry.line, &join(path, &entry.key), message);
            }
        }
        Some(Fields {
            path: path.to_string(),
            line: node.line,
            entries,
        })
    }

    /// Field `key` of `fields` read by `read`; `None` when absent.
    fn field<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = fields.get(key)?;
        read(self, node, &fields.path(key))
    }

    /// Field `key` of `fields`, which must be there: `expected` says what it holds.
    fn required<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        expected: &str,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        if !fields.has(key) {
            self.problem(
                fields.line,
                &fields.path(key),
                format!("missing: expected {expected}"),
            );
            return None;
        }
        self.field(fields, key, read)
    }

    fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = node.scalar();
        if text.is_none() {
            let found = node.describe();
            self.problem(node.line, path, format!("expected a string, found {found}"));
        }
        text
    }

    /// A scalar's text turned into `T` by `parse`, whose error is the message.
    fn parsed<T>(
        &mut self,
        node: &Node,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.text(node, path)?;
        parse(&text)
            .map_err(|message| self.problem(node.line, path, message))
            .ok()
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        self.parsed(node, path, parse_duration)
    }

    /// A whole number that fits `T`; `what` says which (`a port (0-65535)`).
    fn number<T: TryFrom<i128>>(&mut self, node: &Node, path: &str, what: &str) -> Option<T> {
        let number = match node.value {
            Value::Int(i) => T::try_from(i).ok(),
            _ => None,
        };
        if number.is_none() {
            let found = node.describe();
            self.problem(node.line, path, format!("expected {what}, found {found}"));
        }
        number
    }

    /// Each item of a list read by `read` (those that could be). Nothing is an empty list.
    fn list<'n, T>(
        &mut self,
        node: &'n Node,
        path: &str,
        mut read: impl FnMut(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        match &node.value {
            Value::Seq(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| read(self, item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => {
                let found = node.describe();
                self.problem(node.line, path, format!("expected a list, found {found}"));
                None
            }
        }
    }

    /// The one of `keys` that `fields` has (`noun` names them in the problem).
    fn one_of<'k>(&mut self, fields: &Fields, noun: &str, keys: &[&'k str]) -> Option<&'k str> {
        let given: Vec<&str> = keys.iter().copied().filter(|k| fields.has(k)).collect();
        match given.as_slice() {
            [one] => Some(one),
            [] => {
                let message = format!("no {noun} given; expected one of {}", keys.join(", "));
                self.problem(fields.line, &fields.path, message);
                None
            }
            more => {
                let message = format!("more than one {noun} given: {}", more.join(", "));
                self.problem(fields.line, &fields.path, message);
                None
            }
        }
    }
}

/// A pod as read, with the lines its references are checked against the manifests at.
struct PodRead {
    pod: Pod,
    node_line: usize,
}

/// An event as read, with the line of what it names.
struct EventRead {
    event: TimedEvent,
    line: usize,
    field: String,
}

fn machine(r: &mut Reader, node: &Node, path: &str) -> Option<Machine> {
    const APPS: [&str; 3] = ["balancer", "dns", "browser"];
    let m = r.fields(node, path, &["name", "ip", "balancer", "dns", "browser"])?;
    let name = r.required(&m, "name", "the machine's name", Reader::text);
    let ip = r.required(&m, "ip", "an IPv4 address", |r, n, p| r.parsed(n, p, ipv4));
    let app = match r.one_of(&m, "application", &APPS)? {
        "balancer" => r.field(&m, "balancer", |r, n, p| {
            let b = r.fields(n, p, &["port", "backends"])?;
            let port = r.required(&b, "port", "a port", |r, n, p| {
                r.number(n, p, "a port (0-65535)")
            });
            let backends = r.required(&b, "backends", "a list of address:port", |r, n, p| {
                r.list(n, p, |r, n, p| r.parsed(n, p, socket))
            });
            Some(LanApp::Balancer {
                port: port?,
                backends: backends?,
            })
        }),
        "dns" => r.field(&m, "dns", |r, n, p| {
            let d = r.fields(n, p, &["records"])?;
            let records = r.required(
                &d,
                "records",
                "a mapping of names to addresses",
                |r, n, p| {
                    let read: Vec<_> = r
                        .mapping(n, p)?
                        .iter()
                        .map(|e| {
                            let path = format!("{p}[{}]", e.key);
                            (e.key.clone(), r.parsed(&e.value, &path, ipv4))
                        })
                        .collect();
                    read.into_iter()
                        .map(|(name, ip)| Some((name, ip?)))
                        .collect::<Option<Vec<_>>>()
                },
            );
            // Sorted by name, as the file's order does not matter to a DNS server.
            let mut records = records?;
            records.sort();
            Some(LanApp::Dns { records })
        }),
        _ => r.field(&m, "browser", browser),
    };
    Some(Machine {
        name: name?,
        ip: ip?,
        app: app?,
    })
}

fn browser(r: &mut Reader, node: &Node, path: &str) -> Option<LanApp> {
    let known = ["dns", "url", "requests", "start", "gap", "timeout"];
    let b = r.fields(node, path, &known)?;
    let dns = r.required(&b, "dns", "an IPv4 address", |r, n, p| r.parsed(n, p, ipv4));
    let url = r.required(&b, "url", "an http:// URL", |r, n, p| {
        r.parsed(n, p, parse_url)
    });
    let requests = r.required(&b, "requests", "a number of requests", |r, n, p| {
        r.number(n, p, "a whole number")
    });
    let start = optional(r, &b, "start", Duration::from_millis(10));
    let gap = optional(r, &b, "gap", Duration::from_millis(20));
    let timeout = optional(r, &b, "timeout", Duration::from_secs(10));
    let (host, port, path) = url?;
    Some(LanApp::Browser {
        dns: dns?,
        browse: Browse {
            host,
            path,
            port,
            requests: requests?,
            start: Instant::ZERO + start?,
            gap: gap?,
            timeout: timeout?,
        },
    })
}

fn pod(r: &mut Reader, node: &Node, path: &str) -> Option<PodRead> {
    const APPS: [&str; 4] = ["clusterDns", "ingressController", "wordpress", "mariadb"];
    let known = [
        "name",
        "namespace",
        "ip",
        "node",
        APPS[0],
        APPS[1],
        APPS[2],
        APPS[3],
    ];
    let p = r.fields(node, path, &known)?;
    let name = r.required(&p, "name", "the pod's name", Reader::text);
    let namespace = r.field(&p, "namespace", Reader::text);
    let ip = r.required(&p, "ip", "an IPv4 address", |r, n, p| r.parsed(n, p, ipv4));
    let node_line = p.get("node").map_or(p.line, |n| n.line);
    let on = r.required(&p, "node", "the name of a node", Reader::text);
    let app = match r.one_of(&p, "application", &APPS)? {
        "clusterDns" => r.field(&p, "clusterDns", |r, n, p| {
            r.fields(n, p, &[]).map(|_| PodApp::ClusterDns)
        }),
        "ingressController" => r.field(&p, "ingressController", |r, n, p| {
            let i = r.fields(n, p, &["class"])?;
            let class = match i.has("class") {
                true => Some(r.field(&i, "class", Reader::text)?),
                false => None,
            };
            Some(PodApp::IngressController { class })
        }),
        "wordpress" => r.field(&p, "wordpress", |r, n, p| {
            let w = r.fields(n, p, &["db"])?;
            let db = r.required(&w, "db", "name:port or address:port", |r, n, p| {
                r.parsed(n, p, db_host)
            });
            Some(PodApp::WordPress { db: db? })
        }),
        _ => r.field(&p, "mariadb", |r, n, p| {
            let m = r.fields(n, p, &["port", "blogname"])?;
            let port = r.required(&m, "port", "a port", |r, n, p| {
                r.number(n, p, "a port (0-65535)")
            });
            let blogname = r.required(&m, "blogname", "the blog's name", Reader::text);
            Some(PodApp::MariaDb {
                port: port?,
                blogname: blogname?,
            })
        }),
    };
    Some(PodRead {
        pod: Pod {
            name: name?,
            namespace: namespace.unwrap_or_else(|| "default".into()),
            ip: ip?,
            node: on?,
            app: app?,
        },
        node_line,
    })
}

fn event(r: &mut Reader, node: &Node, path: &str) -> Option<EventRead> {
    const ACTIONS: [&str; 4] = ["killPod", "drainNode", "rollout", "scale"];
    let known = [
        "at", ACTIONS[0], ACTIONS[1], ACTIONS[2], ACTIONS[3], "replicas",
    ];
    let e = r.fields(node, path, &known)?;
    let at = r.required(&e, "at", "a time such as 1s", Reader::duration);
    let key = r.one_of(&e, "action", &ACTIONS);
    if key.is_some_and(|key| key != "scale") && e.has("replicas") {
        let line = e.get("replicas").map_or(e.line, |n| n.line);
        r.problem(line, &e.path("replicas"), "only a scale takes replicas");
    }
    let key = key?;
    let deployment = |r: &mut Reader| r.field(&e, key, |r, n, p| r.parsed(n, p, service_name));
    let action = match key {
        "killPod" => Action::KillPod {
            pod: r.field(&e, key, Reader::text)?,
        },
        "drainNode" => Action::DrainNode {
            node: r.field(&e, key, Reader::text)?,
        },
        "rollout" => Action::Rollout {
            deployment: deployment(r)?,
        },
        _ => {
            let deployment = deployment(r);
            let replicas = r.required(&e, "replicas", "a number of pods", |r, n, p| {
                r.number(n, p, "a number of pods (0 or more)")
            });
            Action::Scale {
                deployment: deployment?,
                replicas: replicas?,
            }
        }
    };
    Some(EventRead {
        event: TimedEvent { at: at?, action },
        line: e.get(key).map_or(e.line, |n| n.line),
        field: e.path(key),
    })
}

/// The manifests the scenario names, each path relative to `base`; a file that cannot be
/// read is a problem at the line naming it.
fn manifests(r: &mut Reader, node: &Node, path: &str, base: &Path) -> Option<Manifests> {
    let files = r.list(node, path, |r, n, p| {
        Some((r.text(n, p)?, n.line, p.to_string()))
    })?;
    if files.is_empty() {
        r.problem(node.line, path, "at least one file is needed");
        return None;
    }
    let mut paths = Vec::new();
    for (file, line, field) in files {
        let full = base.join(&file);
        match std::fs::metadata(&full) {
            Ok(_) => paths.push(full),
            Err(e) => r.problem(line, &field, format!("{}: {e}", full.display())),
        }
    }
    match kubenat_k8s::load(&paths) {
        Ok(manifests) => Some(manifests),
        Err(diagnostics) => {
            r.problems.extend(diagnostics);
            None
        }
    }
}

/// The names pods and events give that the manifests and the pods must have (the pods only
/// when `every_pod_read`).
fn check_references(
    r: &mut Reader,
    manifests: &Manifests,
    pods: &[PodRead],
    every_pod_read: bool,
    events: &[EventRead],
) {
    let nodes: BTreeSet<&str> = manifests.nodes.iter().map(|n| n.name.as_str()).collect();
    let pod_names: BTreeSet<&str> = pods.iter().map(|p| p.pod.name.as_str()).collect();
    for (i, p) in pods.iter().enumerate() {
        if !nodes.contains(p.pod.node.as_str()) {
            let message = format!("no node {} in the manifests", p.pod.node);
            r.problem(p.node_line, &format!("pods[{i}].node"), message);
        }
    }
    for e in events {
        let missing = match &e.event.action {
            Action::KillPod { pod } => (every_pod_read && !pod_names.contains(pod.as_str()))
                .then(|| format!("no pod {pod} in the scenario")),
            Action::DrainNode { node } => {
                (!nodes.contains(node.as_str())).then(|| format!("no node {node} in the manifests"))
            }
            Action::Rollout { deployment } | Action::Scale { deployment, .. } => (every_pod_read
                && !pods
                    .iter()
                    .any(|p| Action::in_deployment(deployment, &p.pod.namespace, &p.pod.name)))
            .then(|| format!("no pod of Deployment {deployment} in the scenario")),
        };
        if let Some(message) = missing {
            r.problem(e.line, &e.field, message);
        }
    }
}

const TOP: [&str; 10] = [
    "name",
    "seed",
    "manifests",
    "network",
    "cluster",
    "controlPlane",
    "machines",
    "pods",
    "events",
    "timeLimit",
];

/// The scenario in `root`, or `None` with the problems in `r`.
fn read(r: &mut Reader, root: &Node, base: &Path, default_name: &str) -> Option<Scenario> {
    let top = r.fields(root, "", &TOP)?;
    let name = r.field(&top, "name", Reader::text);
    let seed = r.field(&top, "seed", |r, n, p| r.number(n, p, "a whole number"));
    let manifests = r.required(&top, "manifests", "a list of manifest files", |r, n, p| {
        manifests(r, n, p, base)
    });
    let network = r.required(&top, "network", "lan and podNetwork", |r, n, p| {
        let known = ["lan", "podNetwork", "lanLatency", "vethLatency"];
        let net = r.fields(n, p, &known)?;
        let lan = r.required(&net, "lan", "an IPv4 network", |r, n, p| {
            r.parsed(n, p, network)
        });
        let pods = r.required(&net, "podNetwork", "an IPv4 network", |r, n, p| {
            r.parsed(n, p, network)
        });
        let lan_latency = optional(r, &net, "lanLatency", Duration::from_micros(200));
        let veth_latency = optional(r, &net, "vethLatency", Duration::from_micros(20));
        Some((lan?, pods?, lan_latency?, veth_latency?))
    });
    let cluster = match top.get("cluster") {
        Some(_) => r.field(&top, "cluster", |r, n, p| {
            let c = r.fields(n, p, &["domain", "dns"])?;
            let domain = r.field(&c, "domain", Reader::text);
            let dns = r.field(&c, "dns", |r, n, p| r.parsed(n, p, service_name));
            Some((
                c.has("domain").then_some(domain?),
                c.has("dns").then_some(dns?),
            ))
        }),
        None => Some((None, None)),
    };
    let defaults = ControlPlane::default();
    let control_plane = match top.get("controlPlane") {
        Some(_) => r.field(&top, "controlPlane", |r, n, p| {
            let known = ["noSchedule", "endpointDelay", "restartDelay", "syncDelay"];
            let c = r.fields(n, p, &known)?;
            let no_schedule = match c.has("noSchedule") {
                true => r.field(&c, "noSchedule", |r, n, p| r.list(n, p, Reader::text)),
                false => Some(Vec::new()),
            };
            let endpoint_delay = optional(r, &c, "endpointDelay", defaults.endpoint_delay);
            let restart_delay = optional(r, &c, "restartDelay", defaults.restart_delay);
            let sync_delay = optional(r, &c, "syncDelay", defaults.sync_delay);
            Some(ControlPlane {
                no_schedule: no_schedule?,
                endpoint_delay: endpoint_delay?,
                restart_delay: restart_delay?,
                sync_delay: sync_delay?,
            })
        }),
        None => Some(defaults),
    };
    let machines = list_field(r, &top, "machines", machine);
    let before = r.problems.len();
    let pods = list_field(r, &top, "pods", pod);
    // A pod that could not be read leaves its name out: no event is checked against it.
    let every_pod_read = r.problems.len() == before;
    let events = list_field(r, &top, "events", event);
    let time_limit = optional(r, &top, "timeLimit", Duration::from_secs(120));

    let (manifests, pods, events) = (manifests?, pods?, events?);
    check_references(r, &manifests, &pods, every_pod_read, &events);
    let (lan, pod_network, lan_latency, veth_latency) = network?;
    let (domain, dns) = cluster?;
    Some(Scenario {
        name: name.unwrap_or_else(|| default_name.to_string()),
        seed: seed.unwrap_or(1),
        manifests,
        lan,
        pod_network,
        cluster_domain: domain.unwrap_or_else(|| "cluster.local".into()),
        cluster_dns: dns.unwrap_or_else(|| ServiceName::new("kube-system", "kube-dns")),
        machines: machines?,
        pods: pods.into_iter().map(|p| p.pod).collect(),
        lan_latency,
        veth_latency,
        time_limit: time_limit?,
        events: events.into_iter().map(|e| e.event).collect(),
        control_plane: control_plane?,
    })
}

/// A duration field that may be left out for `default`.
fn optional(r: &mut Reader, fields: &Fields, key: &str, default: Duration) -> Option<Duration> {
    match fields.has(key) {
        true => r.field(fields, key, Reader::duration),
        false => Some(default),
    }
}

/// A list field that may be left out (none), each item read by `read`.
fn list_field<'n, T>(
    r: &mut Reader,
    fields: &Fields<'n>,
    key: &str,
    read: impl FnMut(&mut Reader, &'n Node, &str) -> Option<T>,
) -> Option<Vec<T>> {
    match fields.has(key) {
        true => r.field(fields, key, |r, n, p| r.list(n, p, read)),
        false => Some(Vec::new()),
    }
}

/// Parses a scenario; `file` names it in the problems, manifest paths are relative to
/// `base`, and `default_name` names a scenario without `name`.
pub fn from_yaml_str(
    text: &str,
    file: &str,
    base: &Path,
    default_name: &str,
) -> Result<Scenario, ScenarioError> {
    let mut r = Reader {
        file,
        problems: Vec::new(),
    };
    let scenario = match tree::parse(text) {
        Ok(root) => read(&mut r, &root, base, default_name),
        Err((line, message)) => {
            r.problems.push(Diagnostic {
                file: file.to_string(),
                line,
                object: None,
                field: None,
                message,
            });
            None
        }
    };
    match scenario {
        Some(scenario) if r.problems.is_empty() => Ok(scenario),
        _ => Err(ScenarioError {
            problems: r.problems,
        }),
    }
}

impl Scenario {
    /// Reads a scenario file (YAML; see [`crate::yaml`]).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        from_yaml_file(path.as_ref())
    }
}

/// Reads a scenario file (see the module documentation).
pub fn from_yaml_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        problems: vec![Diagnostic {
            file: file.clone(),
            line: None,
            object: None,
            field: None,
            message: e.to_string(),
        }],
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    from_yaml_str(&text, &file, base, &name)
}
