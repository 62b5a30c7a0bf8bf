//! From one Service and its slices to compiled service ports: pure functions, run when the
//! state changes, never per packet. The [`ControlPlane`](crate::ControlPlane) calls them
//! for each Service that changed.

use std::net::IpAddr;

use crate::categorize::{InternNodeName, categorize};
use crate::control_plane::ControlPlane;
use crate::maglev;
use crate::model::{
    ClusterState, EndpointSelection, EndpointSlice, IpNet, Service, ServiceType, SessionAffinity,
    TrafficPolicy,
};
use crate::service_port::External;
use crate::tables::{
    CompiledServicePort, Frontend, FrontendKey, MaglevTables, ServicePortName, Tables,
};

/// What compiling depends on besides the objects: the cluster-wide part of the proxy
/// settings (every node shares the compiled tables, so nothing here is per node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompileSettings {
    pub selection: EndpointSelection,
    /// Seeds the Maglev permutations.
    pub seed: u64,
}

/// Compiles a whole state into tables.
///
/// Each Service gets one [`CompiledServicePort`] per
/// cluster IP and port, reachable through [`Tables::lookup`]. Headless Services (no cluster
/// IP) compile to nothing. Where two Services claim the same address, protocol and port,
/// or the same NodePort, the one compiled first keeps it (Services compile in
/// namespace/name order; after an [`Update`](crate::Update), the Service already holding it).
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
/// // nodob runs one of wp-service's two pods, but its traffic policies are Cluster: as in
/// // kube-proxy, local endpoints are worked out only for a Local policy.
/// assert!(tables.local_endpoints(id).is_empty());
/// // nginx's NodePort answers on the node's own address.
/// assert!(tables.lookup("192.168.0.102".parse().unwrap(), Protocol::Tcp, 30880).is_some());
/// ```
pub fn compile(state: &ClusterState) -> Tables {
    ControlPlane::new(state).tables()
}

fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// The service ports of one Service, one per (port, family). Headless Services (no cluster
/// IP) program nothing, as in kube-proxy. Node names go through `intern`.
pub(crate) fn compile_service(
    service: &Service,
    slices: &[EndpointSlice],
    settings: CompileSettings,
    intern: &mut InternNodeName<'_>,
) -> Vec<CompiledServicePort> {
    let mut out = Vec::with_capacity(service.cluster_ips.len() * service.ports.len());
    let externally_accessible =
        service.service_type != ServiceType::ClusterIp || !service.external_ips.is_empty();
    let external_policy_local =
        externally_accessible && service.external_traffic_policy == TrafficPolicy::Local;
    let internal_policy_local = service.internal_traffic_policy == TrafficPolicy::Local;
    // kube-proxy's UsesLocalEndpoints: only then are local endpoints worked out.
    let uses_local = internal_policy_local || external_policy_local;
    for &cluster_ip in &service.cluster_ips {
        let ipv6 = cluster_ip.is_ipv6();
        let source_ranges = source_ranges(service, cluster_ip);
        for port in &service.ports {
            let endpoints = categorize(
                slices,
                &service.name,
                &port.name,
                port.protocol,
                cluster_ip,
                uses_local.then_some(&mut *intern),
            );
            let maglev = match settings.selection {
                EndpointSelection::Maglev { table_size } if !endpoints.cluster.is_empty() => {
                    Some(Box::new(MaglevTables {
                        cluster: maglev::build_table(
                            endpoints.cluster.view(),
                            table_size,
                            settings.seed,
                        ),
                        local: endpoints
                            .local
                            .iter()
                            .map(|group| {
                                let local = group.endpoints.view();
                                maglev::build_table(local, table_size, settings.seed)
                            })
                            .collect(),
                    }))
                }
                EndpointSelection::Maglev { .. } | EndpointSelection::RoundRobin => None,
            };
            let key = |address: IpAddr| FrontendKey {
                address,
                protocol: port.protocol,
                port: port.port,
            };
            // The cluster IP is implied (`CompiledServicePort::frontends`).
            let mut other_frontends: Vec<(FrontendKey, Frontend)> = service
                .external_ips
                .iter()
                .filter(|ip| same_family(ip, &cluster_ip))
                .map(|&ip| (key(ip), Frontend::ExternalIp))
                .collect();
            if service.service_type == ServiceType::LoadBalancer {
                other_frontends.extend(
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
                external: External::new(other_frontends, source_ranges.clone()),
                node_port,
                external_policy_local,
                internal_policy_local,
                affinity_timeout: match service.session_affinity {
                    SessionAffinity::None => None,
                    SessionAffinity::ClientIp { timeout } => Some(timeout),
                },
                endpoints,
                maglev,
            });
        }
    }
    out
}

/// loadBalancerSourceRanges of the cluster IP's family. A `/0` range allows everyone, which
/// is the same as no range.
fn source_ranges(service: &Service, family: IpAddr) -> Box<[IpNet]> {
    let ranges: Vec<IpNet> = service
        .load_balancer_source_ranges
        .iter()
        .filter(|r| same_family(&r.addr(), &family))
        .copied()
        .collect();
    if ranges.iter().any(|r| r.prefix_len() == 0) {
        return Box::default();
    }
    ranges.into_boxed_slice()
}
