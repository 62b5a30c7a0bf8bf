//! # kubenat-k8s
//!
//! What `kubectl get services,endpointslices,endpoints,nodes,ingresses,servicecidrs -A -o yaml`
//! prints (YAML, multi-document or `kind: List`, or JSON), plus kube-proxy's
//! `KubeProxyConfiguration`, into [`kubenat_core`]'s [`ClusterState`] for one node.
//!
//! Every field kubenat uses is validated the way the API server judges it, and every problem
//! is reported with its file, line, object and field path:
//!
//! ```text
//! cluster.yaml:42: Service default/wp-service: spec.ports[0].port: 70000 is not a valid port (1-65535)
//! ```
//!
//! What kube-proxy would ignore is ignored: headless and ExternalName Services, FQDN
//! EndpointSlices, slices without the `kubernetes.io/service-name` label, load-balancer
//! ingress with `ipMode: Proxy` or only a hostname. Legacy v1 Endpoints are converted as
//! the EndpointSlice mirroring controller would, for Services that have no EndpointSlice.
//! Addresses with leading zeros are read as kube-proxy's `ParseIPSloppy` reads them.
//!
//! YAML goes through serde-saphyr (maintained, pure Rust, with source locations on every
//! node through `Spanned`, and budgets against alias bombs); the typed objects are
//! k8s-openapi's (Kubernetes 1.34).

mod block;
mod convert;
mod de;
mod json;
mod limits;
mod node;
mod proxy;
mod proxy_schema;
mod scan;
mod stream;
mod validate;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::BuildHasher;
use std::path::Path;

use hashbrown::HashTable;

pub use ipnet::IpNet;
use kubenat_core::{
    ClusterState, EndpointSlice, Node, ProxyConfig, Service, ServiceName, TargetPort,
};
pub use proxy::{
    ASSUMED_CPUS, ConntrackConfiguration, IptablesConfiguration, KubeProxyConfiguration,
    NftablesConfiguration,
};

use crate::proxy::{DetectLocal, NodePortAddresses, primary_ips};

/// A problem found in the input: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<usize>,
    /// `Kind namespace/name` (or `Kind name` for cluster-scoped objects).
    pub object: Option<String>,
    /// The field path, as the API server writes it: `spec.ports[0].port`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `cluster.yaml:42: Service default/wp-service: spec.ports[0].port: 70000 is not a valid port (1-65535)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// An Ingress, kept for the simulator (kube-proxy does not read Ingresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    pub namespace: String,
    pub name: String,
    /// `spec.ingressClassName`.
    pub class: Option<String>,
    pub rules: Vec<IngressRule>,
    pub default_backend: Option<IngressBackend>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRule {
    /// `None` matches every host.
    pub host: Option<String>,
    pub paths: Vec<IngressPath>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPath {
    /// As written (empty when absent, which only `ImplementationSpecific` allows).
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific`.
    pub path_type: String,
    pub backend: IngressBackend,
}

/// A Service backend: the Service (in the Ingress's namespace) and its port, by number or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressBackend {
    pub service: String,
    pub port: TargetPort,
}

/// Everything read from one or more files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    /// Services kube-proxy programs (not headless, not ExternalName, with a cluster IP).
    pub services: Vec<Service>,
    /// discovery.k8s.io/v1 EndpointSlices of address type IPv4 or IPv6.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// v1 Endpoints converted into slices as the mirroring controller would; used only
    /// for Services without any EndpointSlice (see [`Manifests::cluster_state`]).
    pub legacy_endpoints: Vec<EndpointSlice>,
    /// Nodes with their InternalIP then ExternalIP addresses.
    pub nodes: Vec<Node>,
    /// `spec.podCIDRs` of each Node (for `detectLocalMode: NodeCIDR`).
    pub pod_cidrs: BTreeMap<String, Vec<IpNet>>,
    pub ingresses: Vec<Ingress>,
    /// `spec.cidrs` of every networking.k8s.io/v1 ServiceCIDR.
    pub service_cidrs: Vec<IpNet>,
    pub proxy: Option<KubeProxyConfiguration>,
    /// Things skipped or approximated; the input is still usable.
    pub warnings: Vec<Diagnostic>,
}

/// Parses one file's text (`file` names it in diagnostics). On error, every error found in
/// the file comes back together.
pub fn parse_str(file: &str, text: &str) -> Result<Manifests, Vec<Diagnostic>> {
    // A browser (wasm32) has no threads to pipeline with.
    let pipelined = text.len() >= PIPELINE_BYTES && cfg!(not(target_family = "wasm"));
    convert::parse(
        file,
        text.as_bytes(),
        &LoadOptions::default(),
        pipelined,
        &mut |_| {},
    )
}

/// How to read manifests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// A field the Kubernetes schema does not have (`spec.clustreIP`) is an error, not a
    /// warning.
    pub strict: bool,
}

/// Parses manifests as they stream from `reader`, one object at a time: an input of any
/// length takes the memory of one object plus what it converts into. `progress` hears the
/// bytes read so far.
pub fn parse_reader(
    file: &str,
    reader: impl std::io::BufRead + Send,
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifests, Vec<Diagnostic>> {
    convert::parse(file, reader, options, true, progress)
}

/// Inputs from this size on are parsed on a thread of their own while the objects convert;
/// smaller ones are not worth a thread.
const PIPELINE_BYTES: usize = 1 << 20;

/// Where an import stands: the file being read, its bytes read so far, and its size when
/// known (not for standard input).
#[derive(Clone, Copy, Debug)]
pub struct LoadProgress<'a> {
    pub file: &'a str,
    pub bytes_read: u64,
    pub file_bytes: Option<u64>,
}

/// The path that means standard input.
pub const STDIN: &str = "-";

/// Reads and parses every file (`-` is standard input), then merges them in order. On error,
/// the errors of all files come back together.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Manifests, Vec<Diagnostic>> {
    load_with(paths, &LoadOptions::default(), &mut |_| {})
}

/// [`load`] with options, telling `progress` how far it has read.
pub fn load_with<P: AsRef<Path>>(
    paths: &[P],
    options: &LoadOptions,
    progress: &mut dyn FnMut(&LoadProgress<'_>),
) -> Result<Manifests, Vec<Diagnostic>> {
    const BUFFER: usize = 1 << 20;
    let mut merged: Option<Manifests> = None;
    let mut errors = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let stdin = path.as_os_str() == STDIN;
        let file = if stdin {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        let (reader, file_bytes): (Box<dyn std::io::BufRead + Send>, _) = if stdin {
            let stdin = std::io::stdin();
            (
                Box::new(std::io::BufReader::with_capacity(BUFFER, stdin)),
                None,
            )
        } else {
            match std::fs::File::open(path) {
                Ok(f) => {
                    let size = f.metadata().ok().map(|m| m.len());
                    (Box::new(std::io::BufReader::with_capacity(BUFFER, f)), size)
                }
                Err(e) => {
                    errors.push(file_error(&file, format!("cannot read: {e}")));
                    continue;
                }
            }
        };
        let mut on_bytes = |bytes_read| {
            progress(&LoadProgress {
                file: &file,
                bytes_read,
                file_bytes,
            })
        };
        let pipelined = file_bytes.is_none_or(|size| size >= PIPELINE_BYTES as u64);
        match convert::parse(&file, reader, options, pipelined, &mut on_bytes) {
            Ok(manifests) => match &mut merged {
                Some(all) => all.merge(manifests),
                // The first file's objects come deduplicated: no second pass over them.
                None => merged = Some(manifests),
            },
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    if errors.is_empty() {
        Ok(merged.unwrap_or_default())
    } else {
        Err(errors)
    }
}

/// Adds `items` to `list`; an item whose key is already there replaces it in place, with a
/// warning. One hash lookup per item, so merging a million objects stays linear.
fn upsert_all<T>(
    list: &mut Vec<T>,
    items: Vec<T>,
    key: impl Fn(&T) -> ObjectKey<'_>,
    describe: impl Fn(&T) -> String,
    warnings: &mut Vec<Diagnostic>,
) {
    if items.is_empty() {
        return;
    }
    // Positions in `list`, found by their objects' keys (borrowed, never copied: a million
    // objects cloned two million strings here).
    let hasher = hashbrown::DefaultHashBuilder::default();
    let hash = |item: &T| hasher.hash_one(key(item));
    let mut index = HashTable::with_capacity(list.len() + items.len());
    for (position, existing) in list.iter().enumerate() {
        index.insert_unique(hash(existing), position, |&p| hash(&list[p]));
    }
    list.reserve(items.len());
    for item in items {
        let item_hash = hash(&item);
        match index.find(item_hash, |&p| key(&list[p]) == key(&item)) {
            Some(&position) => {
                warnings.push(Diagnostic {
                    file: String::new(),
                    line: None,
                    object: Some(describe(&item)),
                    field: None,
                    message: "defined more than once; the later definition wins".into(),
                });
                list[position] = item;
            }
            None => {
                index.insert_unique(item_hash, list.len(), |&p| hash(&list[p]));
                list.push(item);
            }
        }
    }
}

/// What names an object among those of its kind: namespace, name, and for a v1 Endpoints
/// object its Service's name too.
type ObjectKey<'a> = (&'a str, &'a str, &'a str);

/// The cluster state of these objects, with converted v1 Endpoints for the Services that
/// have no EndpointSlice at all.
fn assemble(
    services: Vec<Service>,
    mut endpoint_slices: Vec<EndpointSlice>,
    legacy_endpoints: Vec<EndpointSlice>,
    nodes: Vec<Node>,
    proxy: ProxyConfig,
) -> ClusterState {
    if !legacy_endpoints.is_empty() {
        let with_slices: BTreeSet<ServiceName> =
            endpoint_slices.iter().map(|s| s.service.clone()).collect();
        endpoint_slices.extend(
            legacy_endpoints
                .into_iter()
                .filter(|s| !with_slices.contains(&s.service)),
        );
    }
    ClusterState {
        services,
        endpoint_slices,
        nodes,
        proxy,
    }
}

fn file_error(file: &str, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: None,
        object: None,
        field: None,
        message,
    }
}

impl Manifests {
    /// Adds `other`'s objects. An object defined again (same kind, namespace and name)
    /// replaces the earlier one, with a warning; so does a second KubeProxyConfiguration.
    pub fn merge(&mut self, other: Manifests) {
        let warnings = &mut self.warnings;
        upsert_all(
            &mut self.services,
            other.services,
            |s| (&s.name.namespace, &s.name.name, ""),
            |s| format!("Service {}", s.name),
            warnings,
        );
        upsert_all(
            &mut self.endpoint_slices,
            other.endpoint_slices,
            |s| (&s.service.namespace, &s.name, ""),
            |s| format!("EndpointSlice {}/{}", s.service.namespace, s.name),
            warnings,
        );
        upsert_all(
            &mut self.legacy_endpoints,
            other.legacy_endpoints,
            |s| (&s.service.namespace, &s.service.name, &s.name),
            |s| format!("Endpoints {}", s.service),
            warnings,
        );
        upsert_all(
            &mut self.nodes,
            other.nodes,
            |n| ("", &n.name, ""),
            |n| format!("Node {}", n.name),
            warnings,
        );
        self.pod_cidrs.extend(other.pod_cidrs);
        upsert_all(
            &mut self.ingresses,
            other.ingresses,
            |i| (&i.namespace, &i.name, ""),
            |i| format!("Ingress {}/{}", i.namespace, i.name),
            warnings,
        );
        for cidr in other.service_cidrs {
            if !self.service_cidrs.contains(&cidr) {
                self.service_cidrs.push(cidr);
            }
        }
        if let Some(proxy) = other.proxy {
            if self.proxy.is_some() {
                warnings.push(Diagnostic {
                    file: String::new(),
                    line: None,
                    object: Some("KubeProxyConfiguration".into()),
                    field: None,
                    message: "given more than once; the later one wins".into(),
                });
            }
            self.proxy = Some(proxy);
        }
        self.warnings.extend(other.warnings);
    }

    /// The names of the Nodes read, sorted.
    pub fn node_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        names.into_iter().map(str::to_string).collect()
    }

    /// The cluster as the kube-proxy of `node` sees it.
    ///
    /// - node addresses: the Node's InternalIP then ExternalIP addresses;
    /// - proxy settings from the KubeProxyConfiguration, or kube-proxy's defaults without one
    ///   (mode nftables; `nodePortAddresses` `primary` in nftables mode, every node address
    ///   in iptables mode; localhost NodePorts on; kube-proxy's conntrack timeouts);
    /// - conntrack capacity `max(maxPerCore × ASSUMED_CPUS, min)` (kube-proxy's formula,
    ///   with 8 CPUs assumed, since the manifests do not say);
    /// - pod network from `clusterCIDR` (`detectLocalMode: ClusterCIDR`) or the Node's
    ///   `spec.podCIDRs` (`NodeCIDR`); none for interface-based modes;
    /// - service ranges from the ServiceCIDR objects;
    /// - Services and EndpointSlices, plus converted v1 Endpoints for the Services that
    ///   have no EndpointSlice at all.
    ///
    /// `node` names the node; an empty `node` means the configuration's `hostnameOverride`.
    pub fn cluster_state(&self, node: &str) -> Result<ClusterState, Diagnostic> {
        let proxy = self.proxy_config(node)?;
        Ok(assemble(
            self.services.clone(),
            self.endpoint_slices.clone(),
            self.legacy_endpoints.clone(),
            self.nodes.clone(),
            proxy,
        ))
    }

    /// [`Manifests::cluster_state`], moving the objects instead of copying them (a copy of
    /// a million Services and slices takes seconds).
    pub fn into_cluster_state(self, node: &str) -> Result<ClusterState, Diagnostic> {
        let proxy = self.proxy_config(node)?;
        Ok(assemble(
            self.services,
            self.endpoint_slices,
            self.legacy_endpoints,
            self.nodes,
            proxy,
        ))
    }

    /// The proxy settings of `node`, as [`Manifests::cluster_state`] describes them,
    /// without copying the Services and slices: what a node's engine needs besides the
    /// cluster's shared snapshot (a simulator of many nodes compiles the cluster once).
    pub fn proxy_config(&self, node: &str) -> Result<ProxyConfig, Diagnostic> {
        let (settings, problems) = self.proxy.clone().unwrap_or_default().settings();
        if let Some((field, message, _)) = problems.into_iter().find(|p| !p.2) {
            return Err(Diagnostic {
                file: String::new(),
                line: None,
                object: Some("KubeProxyConfiguration".into()),
                field: Some(field),
                message,
            });
        }
        let node_name = if node.is_empty() {
            settings.hostname_override.clone().unwrap_or_default()
        } else {
            node.to_string()
        };
        let Some(this) = self.nodes.iter().find(|n| n.name == node_name) else {
            let known = self.node_names();
            return Err(Diagnostic {
                file: String::new(),
                line: None,
                object: None,
                field: None,
                message: if known.is_empty() {
                    format!("node {node_name:?} not found: the manifests contain no Node")
                } else {
                    format!(
                        "node {node_name:?} not found; known nodes: {}",
                        known.join(", ")
                    )
                },
            });
        };
        let node_ips = this.addresses.clone();
        let cluster_cidrs = match &settings.detect_local {
            DetectLocal::ClusterCidr(cidrs) => cidrs.clone(),
            DetectLocal::NodeCidr => self.pod_cidrs.get(&node_name).cloned().unwrap_or_default(),
            DetectLocal::Unsupported => Vec::new(),
        };
        let node_port_addresses = match &settings.node_port_addresses {
            NodePortAddresses::All => Vec::new(),
            NodePortAddresses::Primary => {
                let primary = primary_ips(&node_ips);
                if primary.len() == node_ips.len() {
                    // Every node address is a primary one: the same as "all".
                    Vec::new()
                } else {
                    primary.into_iter().map(IpNet::from).collect()
                }
            }
            NodePortAddresses::Cidrs(nets) => nets.clone(),
        };
        let defaults = ProxyConfig::default();
        let proxy = ProxyConfig {
            node_name: node_name.clone(),
            node_ips,
            cluster_cidrs,
            service_cidrs: self.service_cidrs.clone(),
            masquerade_all: settings.masquerade_all,
            node_port_addresses,
            localhost_node_ports: settings.localhost_node_ports,
            mode: settings.mode,
            timeouts: settings.timeouts,
            conntrack_capacity: settings
                .conntrack_capacity
                .unwrap_or(defaults.conntrack_capacity),
            ..defaults
        };
        Ok(proxy)
    }
}
