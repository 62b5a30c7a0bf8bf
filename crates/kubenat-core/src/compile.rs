//! From one Service and its slices to compiled service ports: pure functions, run when the
//! state changes, never per packet. The [`ControlPlane`](crate::ControlPlane) calls them
//! for each Service that changed.

use std::net::IpAddr;

use crate::categorize::{Candidates, InternNodeName, categorize_with};
use crate::control_plane::ControlPlane;
use crate::maglev;
use crate::model::{
    ClusterState, EndpointSelection, EndpointSlice, IpNet, Service, ServiceName, ServicePort,
    ServiceType, SessionAffinity, TrafficPolicy,
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
/// IP) program nothing, as in kube-proxy. Node names go through `intern`. The Service's
/// names move into the ports (see [`name_ports`]), leaving it with empty ones; it is
/// borrowed, not taken, so that a caller's copy is not moved for the call. `slices` are
/// all its own. The ports are appended to `out`, which a caller compiling many Services keeps,
/// with `candidates`, so that each Service does not allocate its own.
pub(crate) fn compile_service(
    service: &mut Service,
    slices: &[EndpointSlice],
    settings: CompileSettings,
    intern: &mut InternNodeName<'_>,
    candidates: &mut Candidates,
    out: &mut Vec<CompiledServicePort>,
) {
    let first = out.len();
    out.reserve(service.cluster_ips.len() * service.ports.len());
    let externally_accessible =
        service.service_type != ServiceType::ClusterIp || !service.external_ips.is_empty();
    let external_policy_local =
        externally_accessible && service.external_traffic_policy == TrafficPolicy::Local;
    let internal_policy_local = service.internal_traffic_policy == TrafficPolicy::Local;
    // kube-proxy's UsesLocalEndpoints: only then are local endpoints worked out.
    let uses_local = internal_policy_local || external_policy_local;
    let has_external = !service.external_ips.is_empty()
        || !service.load_balancer_ips.is_empty()
        || !service.load_balancer_source_ranges.is_empty();
    for &cluster_ip in &service.cluster_ips {
        let ipv6 = cluster_ip.is_ipv6();
        for port in &service.ports {
            let endpoints = categorize_with(
                candidates,
                slices.iter(),
                (&port.name, port.protocol, cluster_ip),
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
            // Most Services have no other frontend and no source range: nothing to
            // collect then.
            let external = match has_external {
                true => external(service, cluster_ip, port),
                false => None,
            };
            let node_port = match service.service_type {
                ServiceType::ClusterIp => None,
                ServiceType::NodePort | ServiceType::LoadBalancer => port.node_port,
            };
            out.push(CompiledServicePort {
                name: ServicePortName {
                    service: no_name(),
                    port: String::new(),
                },
                protocol: port.protocol,
                ipv6,
                cluster_ip,
                port: port.port,
                external,
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
    name_ports(&mut out[first..], service);
}

/// What leads to `port` of `service` in `cluster_ip`'s family beside the cluster IP, which
/// is implied (`CompiledServicePort::frontends`), and who may come that way.
fn external(service: &Service, cluster_ip: IpAddr, port: &ServicePort) -> Option<Box<External>> {
    let key = |address: IpAddr| FrontendKey {
        address,
        protocol: port.protocol,
        port: port.port,
    };
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
    External::new(other_frontends, source_ranges(service, cluster_ip))
}

/// A name to be filled in, without an allocation.
fn no_name() -> ServiceName {
    ServiceName {
        namespace: String::new(),
        name: String::new(),
    }
}

/// Names `ports`, compiled from `service` (for each cluster IP, each of its ports in
/// order): the last port compiled takes the Service's own name, the ports of the last
/// cluster IP their port's own name, the others copies. Moved rather than copied, the
/// strings cost neither an allocation here nor a free when the Service is dropped.
fn name_ports(ports: &mut [CompiledServicePort], service: &mut Service) {
    let Some((last, others)) = ports.split_last_mut() else {
        return;
    };
    let name = &mut service.name;
    let name = ServiceName {
        namespace: std::mem::take(&mut name.namespace),
        name: std::mem::take(&mut name.name),
    };
    for compiled in others.iter_mut() {
        compiled.name.service = name.clone();
    }
    last.name.service = name;
    let service_ports = &mut service.ports;
    let moved = ports.len() - service_ports.len();
    for (k, compiled) in ports[..moved].iter_mut().enumerate() {
        compiled.name.port = service_ports[k % service_ports.len()].name.clone();
    }
    for (compiled, port) in ports[moved..].iter_mut().zip(service_ports) {
        compiled.name.port = std::mem::take(&mut port.name);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, ServicePort, TargetPort};

    /// Each port is named after its Service and its own port, whichever strings moved.
    #[test]
    fn every_port_of_every_family_is_named() {
        let port = |name: &str, number| ServicePort {
            name: name.into(),
            protocol: Protocol::Tcp,
            port: number,
            target_port: TargetPort::Number(number),
            node_port: None,
        };
        let mut service = Service {
            name: ServiceName::new("ns", "web"),
            cluster_ips: vec!["10.96.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            ports: vec![port("http", 80), port("https", 443), port("admin", 8080)],
            ..Service::default()
        };
        let settings = CompileSettings {
            selection: EndpointSelection::RoundRobin,
            seed: 0,
        };
        let intern = &mut |name: &str| name.into();
        let mut ports = Vec::new();
        let candidates = &mut Candidates::default();
        compile_service(&mut service, &[], settings, intern, candidates, &mut ports);
        let names: Vec<(String, u16, bool)> = ports
            .iter()
            .map(|p| (p.name.to_string(), p.port, p.ipv6))
            .collect();
        let expected: Vec<(String, u16, bool)> = [false, true]
            .into_iter()
            .flat_map(|ipv6| {
                [("http", 80), ("https", 443), ("admin", 8080)]
                    .map(|(name, number)| (format!("ns/web:{name}"), number, ipv6))
            })
            .collect();
        assert_eq!(names, expected);
    }
}
