//! From cluster state to tables: pure functions, run when the state changes, never per packet.
//!
//! [`compile()`] turns a whole [`ClusterState`] into [`Tables`]. [`ServiceMap`] keeps the
//! state indexed by Service so a delta ([`Update`]: one Service or one EndpointSlice
//! changed) recompiles only that Service's ports; [`Engine::update`](crate::Engine::update)
//! uses it.

use std::net::IpAddr;

use crate::categorize::categorize;
use crate::known::{Known, KnownServices};
use crate::maglev;
use crate::model::{
    ClusterState, EndpointSelection, EndpointSlice, IpNet, ProxyConfig, Service, ServiceName,
    ServiceType, SessionAffinity, TrafficPolicy,
};
use crate::tables::{
    CompiledServicePort, Frontend, FrontendKey, NodeSettings, ServicePortId, ServicePortName,
    Tables,
};

/// One change to the cluster state, as a watch on the API server would deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Replace everything (a resync).
    Replace(Box<ClusterState>),
    /// A Service was added or changed (matched by [`Service::name`]); it replaces the
    /// previous definition whole.
    UpsertService(Box<Service>),
    /// A Service was deleted. Its EndpointSlices are kept until they are removed too.
    RemoveService(ServiceName),
    /// An EndpointSlice was added or changed (matched by its Service and name).
    UpsertEndpointSlice(Box<EndpointSlice>),
    /// An EndpointSlice was deleted.
    RemoveEndpointSlice {
        /// The Service the slice belonged to ([`EndpointSlice::service`]).
        service: ServiceName,
        /// The slice's [`EndpointSlice::name`].
        name: String,
    },
}

/// The cluster state indexed by Service, with the tables compiled from it.
///
/// Most embedders use it through [`Engine`](crate::Engine); use it directly to inspect what
/// a sequence of updates compiles to without running packets.
///
/// ```
/// use kubenat_core::{ServiceMap, ServiceName, Update, reference};
///
/// let mut map = ServiceMap::new(&reference::cluster("nodo1"));
/// let dns = ServiceName::new("kube-system", "kube-dns");
/// assert_eq!(map.apply(Update::RemoveService(dns.clone())), Some(dns));
/// // kube-dns had two ports (UDP and TCP 53); three single-port Services remain.
/// assert_eq!(map.tables().ports().count(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct ServiceMap {
    proxy: ProxyConfig,
    /// Everything known under each Service name.
    services: KnownServices,
    tables: Tables,
}

impl Known {
    /// Drops `known`'s compiled ports from `tables` and compiles its current definition.
    fn recompile(&mut self, tables: &mut Tables, proxy: &ProxyConfig) {
        tables.remove_ports(std::mem::take(&mut self.ports));
        if let Some(service) = &self.service {
            self.ports = tables.insert_ports(compile_service(service, &self.slices, proxy));
        }
    }
}

impl ServiceMap {
    /// Compiles a whole state (a copy of it: [`ServiceMap::from_state`] takes it instead).
    pub fn new(state: &ClusterState) -> ServiceMap {
        ServiceMap::from_state(state.clone())
    }

    /// Compiles a whole state, keeping it for later updates.
    pub fn from_state(state: ClusterState) -> ServiceMap {
        let ClusterState {
            mut services,
            endpoint_slices: mut slices,
            proxy,
            ..
        } = state;
        // Services compile in name order, so clashes resolve the same whatever the input
        // order; of two Services (or two slices) with one name, the last one listed wins.
        // Both lists sorted by Service name, they are joined in one pass, without lookups.
        // (A stable sort keeps listing order among equal names, and the input of
        // `kubectl get` is already in name order: one linear pass then.)
        services.sort_by(|a, b| a.name.cmp(&b.name));
        services.dedup_by(|later, earlier| {
            let same = later.name == earlier.name;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        slices.sort_by(|a, b| a.service.cmp(&b.service));
        let mut tables = Tables::with_capacity(node_settings(&proxy), services.len());
        let mut known = KnownServices::with_capacity(services.len());
        let mut slices = slices.into_iter().peekable();
        for service in services {
            let mut entry = Known::default();
            // Slices of Services that do not exist come first in name order: keep them.
            while let Some(slice) = slices.next_if(|s| s.service <= service.name) {
                if slice.service == service.name {
                    replace_slice(&mut entry.slices, slice);
                } else {
                    add_slice(&mut known, slice);
                }
            }
            entry.service = Some(service);
            entry.recompile(&mut tables, &proxy);
            known.insert_new(entry);
        }
        for slice in slices {
            add_slice(&mut known, slice);
        }
        ServiceMap {
            proxy,
            services: known,
            tables,
        }
    }

    /// The tables compiled from the current state.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The service ports compiled from the Service `name` (none when it is unknown or
    /// headless).
    pub fn ports_of(&self, name: &ServiceName) -> &[ServicePortId] {
        self.services
            .find(name)
            .map_or(&[], |slot| &self.services.get(slot).ports)
    }

    /// The proxy settings of the current state (those of the last [`Update::Replace`]).
    pub fn proxy(&self) -> &ProxyConfig {
        &self.proxy
    }

    /// Applies one change; returns the Service whose rules changed (all of them for
    /// [`Update::Replace`], as `None`).
    pub fn apply(&mut self, update: Update) -> Option<ServiceName> {
        let (name, slot) = match update {
            Update::Replace(state) => {
                *self = ServiceMap::from_state(*state);
                return None;
            }
            Update::UpsertService(service) => {
                let name = service.name.clone();
                let slot = match self.services.find(&name) {
                    Some(slot) => {
                        self.services.get_mut(slot).service = Some(*service);
                        slot
                    }
                    None => self.services.insert_new(Known {
                        service: Some(*service),
                        ..Known::default()
                    }),
                };
                (name, slot)
            }
            Update::RemoveService(name) => {
                let Some(slot) = self.services.find(&name) else {
                    return Some(name);
                };
                self.services.get_mut(slot).service = None;
                (name, slot)
            }
            Update::UpsertEndpointSlice(slice) => {
                let name = slice.service.clone();
                (name, add_slice(&mut self.services, *slice))
            }
            Update::RemoveEndpointSlice { service, name } => {
                let Some(slot) = self.services.find(&service) else {
                    return Some(service);
                };
                self.services
                    .get_mut(slot)
                    .slices
                    .retain(|s| s.name != name);
                (service, slot)
            }
        };
        self.services
            .get_mut(slot)
            .recompile(&mut self.tables, &self.proxy);
        self.services.remove_if_empty(slot, &name);
        Some(name)
    }
}

/// Files `slice` under its Service's entry (made if there is none); returns the slot.
fn add_slice(known: &mut KnownServices, slice: EndpointSlice) -> u32 {
    match known.find(&slice.service) {
        Some(slot) => {
            replace_slice(&mut known.get_mut(slot).slices, slice);
            slot
        }
        None => known.insert_new(Known {
            slices: vec![slice],
            ..Known::default()
        }),
    }
}

/// Puts `slice` in place of the one of the same name, or adds it.
fn replace_slice(slices: &mut Vec<EndpointSlice>, slice: EndpointSlice) {
    match slices.iter_mut().find(|s| s.name == slice.name) {
        Some(old) => *old = slice,
        None => slices.push(slice),
    }
}

/// Compiles a whole state into tables.
///
/// Each Service gets one [`CompiledServicePort`] per
/// cluster IP and port, reachable through [`Tables::lookup`]. Headless Services (no cluster
/// IP) compile to nothing. Where two Services claim the same address, protocol and port,
/// or the same NodePort, the one compiled first keeps it (Services compile in
/// namespace/name order; after an [`Update`], the Service already holding it).
///
/// ```
/// use kubenat_core::tables::Frontend;
/// use kubenat_core::{Protocol, compile, reference};
///
/// let tables = compile(&reference::cluster("nodob"));
/// let (id, frontend) = tables
///     .lookup("10.10.1.102".parse().unwrap(), Protocol::Tcp, 8080)
///     .expect("wp-service's cluster IP");
/// assert_eq!(frontend, Frontend::ClusterIp);
/// assert_eq!(tables.port(id).name.to_string(), "default/wp-service:http");
/// assert_eq!(tables.port(id).endpoints.cluster.len(), 2);
/// // nodob runs one of wp-service's two pods.
/// assert_eq!(tables.port(id).endpoints.local, ["10.10.0.112:80".parse().unwrap()]);
/// // nginx's NodePort answers on the node's own address.
/// assert!(tables.lookup("192.168.0.102".parse().unwrap(), Protocol::Tcp, 30880).is_some());
/// ```
pub fn compile(state: &ClusterState) -> Tables {
    ServiceMap::new(state).tables
}

fn node_settings(proxy: &ProxyConfig) -> NodeSettings {
    NodeSettings {
        node_ips: proxy.node_ips.clone(),
        cluster_cidrs: proxy.cluster_cidrs.clone(),
        service_cidrs: proxy.service_cidrs.clone(),
        node_port_addresses: proxy.node_port_addresses.clone(),
        masquerade_all: proxy.masquerade_all,
        mode: proxy.mode,
        localhost_node_ports: proxy.localhost_node_ports,
    }
}

fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// The service ports of one Service, one per (port, family). Headless Services (no cluster
/// IP) program nothing, as in kube-proxy.
fn compile_service(
    service: &Service,
    slices: &[EndpointSlice],
    proxy: &ProxyConfig,
) -> Vec<CompiledServicePort> {
    let mut out = Vec::with_capacity(service.cluster_ips.len() * service.ports.len());
    let externally_accessible =
        service.service_type != ServiceType::ClusterIp || !service.external_ips.is_empty();
    for &cluster_ip in &service.cluster_ips {
        let ipv6 = cluster_ip.is_ipv6();
        let source_ranges = source_ranges(service, cluster_ip, proxy);
        for port in &service.ports {
            let endpoints = categorize(
                slices,
                &service.name,
                &port.name,
                port.protocol,
                cluster_ip,
                &proxy.node_name,
            );
            let (maglev_cluster, maglev_local) = match proxy.selection {
                EndpointSelection::Maglev { table_size } => (
                    maglev::build_table(&endpoints.cluster, table_size, proxy.seed),
                    maglev::build_table(&endpoints.local, table_size, proxy.seed),
                ),
                EndpointSelection::RoundRobin => (Box::default(), Box::default()),
            };
            let key = |address: IpAddr| FrontendKey {
                address,
                protocol: port.protocol,
                port: port.port,
            };
            let mut frontends = vec![(key(cluster_ip), Frontend::ClusterIp)];
            frontends.extend(
                service
                    .external_ips
                    .iter()
                    .filter(|ip| same_family(ip, &cluster_ip))
                    .map(|&ip| (key(ip), Frontend::ExternalIp)),
            );
            if service.service_type == ServiceType::LoadBalancer {
                frontends.extend(
                    service
                        .load_balancer_ips
                        .iter()
                        .filter(|ip| same_family(ip, &cluster_ip))
                        .map(|&ip| (key(ip), Frontend::LoadBalancerIp)),
                );
            }
            let node_port = match service.service_type {
                ServiceType::ClusterIp => None,
                ServiceType::NodePort | ServiceType::LoadBalancer => port.node_port,
            };
            out.push(CompiledServicePort {
                name: ServicePortName {
                    service: service.name.clone(),
                    port: port.name.clone(),
                },
                protocol: port.protocol,
                ipv6,
                cluster_ip,
                port: port.port,
                frontends,
                node_port,
                external_policy_local: externally_accessible
                    && service.external_traffic_policy == TrafficPolicy::Local,
                internal_policy_local: service.internal_traffic_policy == TrafficPolicy::Local,
                affinity_timeout: match service.session_affinity {
                    SessionAffinity::None => None,
                    SessionAffinity::ClientIp { timeout } => Some(timeout),
                },
                source_ranges: source_ranges.clone(),
                endpoints,
                maglev_cluster,
                maglev_local,
            });
        }
    }
    out
}

/// loadBalancerSourceRanges of the cluster IP's family. A `/0` range allows everyone, which
/// is the same as no range; when a range holds a node address, the load-balancer IPs
/// themselves are allowed too (traffic the node sends to its own VIP), as kube-proxy does.
fn source_ranges(service: &Service, family: IpAddr, proxy: &ProxyConfig) -> Vec<IpNet> {
    let ranges: Vec<IpNet> = service
        .load_balancer_source_ranges
        .iter()
        .filter(|r| same_family(&r.addr(), &family))
        .copied()
        .collect();
    if ranges.is_empty() || ranges.iter().any(|r| r.prefix_len() == 0) {
        return Vec::new();
    }
    let allow_from_node = proxy
        .node_ips
        .iter()
        .any(|ip| ranges.iter().any(|r| r.contains(ip)));
    let mut allowed = ranges;
    if allow_from_node {
        allowed.extend(
            service
                .load_balancer_ips
                .iter()
                .filter(|ip| same_family(ip, &family))
                .map(|&ip| IpNet::from(ip)),
        );
    }
    allowed
}
