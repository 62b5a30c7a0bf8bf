//! Generated clusters, for runs at scale: any number of nodes, pods and Services, with
//! traffic that crosses the engines.
//!
//! Of the Services, one is the cluster DNS (`kube-system/kube-dns`, a CoreDNS pod per 16
//! nodes and at least two, as the cluster-proportional autoscaler deploys them) and the
//! others are web Services `default/svc-<k>`, each with at least one web server pod.
//! The remaining pods, half of the rest, are clients: each picks a Service at random,
//! resolves `svc-<k>` through the cluster DNS (its node DNATs the query to a CoreDNS pod)
//! and makes HTTP requests to the Service's cluster IP (its node DNATs them to a web pod).
//! Pods are spread round robin over the nodes; every node's engine reads the one snapshot
//! of the whole service map the simulation's control plane compiles, and its conntrack
//! table is sized for a node's traffic through the generated KubeProxyConfiguration, as an
//! operator would.
//!
//! `churn=N` rolls out N web Deployments (`default/svc-<k>`, spread over the Services)
//! while the clients' requests are under way, each node's kube-proxy syncing up to 500 ms
//! after each EndpointSlice change: the report counts the requests lost and the network
//! programming latency.
//!
//! ```
//! use kubenat_sim::generate::ClusterSize;
//!
//! let size: ClusterSize = "nodes=3,pods=12,services=3".parse().unwrap();
//! let scenario = kubenat_sim::Scenario::generated(size, 7).unwrap();
//! let report = kubenat_sim::run(&scenario);
//! assert_eq!(report.summary.requests, 5);
//! assert_eq!(report.summary.succeeded, 5);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::Ipv4Net;
use kubenat_core::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Node, Protocol, Service,
    ServiceName, ServicePort, TargetPort,
};
use kubenat_k8s::{ConntrackConfiguration, IpNet, KubeProxyConfiguration, Manifests};

use crate::apps::pc::Browse;
use crate::clock::{Instant, Rng};
use crate::scenario::{Action, ControlPlane, Pod, PodApp, Scenario, TimedEvent};

/// How big a generated cluster is, and how much of it changes while traffic flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterSize {
    pub nodes: usize,
    pub pods: usize,
    /// Services in all, the cluster DNS included.
    pub services: usize,
    /// Web Deployments rolled out during the run (`churn=N`, default 0).
    pub churn: usize,
}

impl FromStr for ClusterSize {
    type Err = String;

    /// `nodes=1000,pods=10000,services=1000`, every key once, in any order, and
    /// optionally `churn=N`.
    fn from_str(text: &str) -> Result<ClusterSize, String> {
        let (mut nodes, mut pods, mut services, mut churn) = (None, None, None, None);
        for part in text.split(',') {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("{part:?}: expected KEY=NUMBER (nodes=1000,pods=10000,services=1000)")
            })?;
            let slot = match key.trim() {
                "nodes" => &mut nodes,
                "pods" => &mut pods,
                "services" => &mut services,
                "churn" => &mut churn,
                other => {
                    return Err(format!(
                        "{other:?}: expected nodes, pods, services or churn"
                    ));
                }
            };
            if slot.is_some() {
                return Err(format!("{key} given twice"));
            }
            let number = value
                .trim()
                .parse()
                .map_err(|_| format!("{key}={value}: expected a whole number"))?;
            *slot = Some(number);
        }
        match (nodes, pods, services) {
            (Some(nodes), Some(pods), Some(services)) => Ok(ClusterSize {
                nodes,
                pods,
                services,
                churn: churn.unwrap_or(0),
            }),
            _ => Err("expected nodes=N,pods=N,services=N".into()),
        }
    }
}

impl fmt::Display for ClusterSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes={},pods={},services={}",
            self.nodes, self.pods, self.services
        )?;
        match self.churn {
            0 => Ok(()),
            n => write!(f, ",churn={n}"),
        }
    }
}

/// Nodes per CoreDNS replica (the dns-autoscaler's `nodesPerReplica`): every query of the
/// cluster lands on a CoreDNS pod's node, whose conntrack table must hold them.
const NODES_PER_DNS_POD: usize = 16;
/// CoreDNS replicas at the least, as kubeadm deploys them.
const MIN_DNS_PODS: usize = 2;
/// The port web Services and their pods listen on.
const WEB_PORT: u16 = 80;
/// Clients start their first request at a random moment within this span, so the load is
/// spread as in a running cluster rather than synchronized.
const START_SPREAD: Duration = Duration::from_secs(1);
/// Connections a node's table holds per pod on it. A node tracks its pods' connections
/// both ways, two per request for a client (the DNS query and the HTTP connection), kept up
/// to two minutes after they close (TIME_WAIT): room for tens of requests per client.
const CONNTRACK_PER_POD: usize = 64;
/// And per DNS query its CoreDNS pod takes: a few retries' worth.
const CONNTRACK_PER_QUERY: usize = 8;

/// With churn, each node's kube-proxy applies an EndpointSlice change up to this long after
/// it (kube-proxy's `minSyncPeriod` is 1 s), so programming latency has a spread to measure.
const CHURN_SYNC_DELAY: Duration = Duration::from_millis(500);
/// With churn, a rollout's new pod is ready this long after its step starts, so a
/// Deployment of a few pods rolls out while the clients' requests are under way.
const CHURN_RESTART_DELAY: Duration = Duration::from_millis(200);

/// Where pods get their addresses: two million, room for 150,000 pods and as many
/// recreated ones and more, right below the Service range it must not overlap.
const POD_NETWORK: &str = "10.64.0.0/11";
/// Where Services get their cluster IPs (kubeadm's default).
const SERVICE_NETWORK: &str = "10.96.0.0/12";

/// Connections each node tracks at most (`conntrack.min`, one value for the cluster as in
/// its KubeProxyConfiguration): sized for the busiest node, a power of two, at least 1024.
/// A thousand small engines do not each allocate the 262,144-entry default.
///
/// The busiest CoreDNS pod takes more than an even share: every node's round robin starts
/// at the first endpoint, so with `c` clients a node the first `c` CoreDNS pods each take
/// a query from every node (at 5,000 nodes, 5,000 queries where an even share is 240).
fn conntrack_per_node(
    nodes: usize,
    pods_per_node: usize,
    clients: usize,
    dns_pods: usize,
) -> usize {
    let even = clients.div_ceil(dns_pods);
    let in_step = nodes * clients.div_ceil(nodes).div_ceil(dns_pods);
    (CONNTRACK_PER_POD * pods_per_node + (CONNTRACK_PER_QUERY * even).max(in_step))
        .next_power_of_two()
        .max(1024)
}

fn net(text: &str) -> Ipv4Net {
    text.parse().expect("literal network")
}

/// The `i`-th address after `base`, when `network` holds it (and it is not its broadcast).
fn nth(network: Ipv4Net, base: Ipv4Addr, i: usize) -> Option<Ipv4Addr> {
    let ip = Ipv4Addr::from(u32::from(base).checked_add(u32::try_from(i).ok()?)?);
    (network.contains(&ip) && ip != network.broadcast()).then_some(ip)
}

fn web_service(k: usize, ip: Ipv4Addr) -> Service {
    Service {
        name: ServiceName::new("default", format!("svc-{k}")),
        cluster_ips: vec![IpAddr::V4(ip)],
        ports: vec![ServicePort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: WEB_PORT,
            target_port: TargetPort::Number(WEB_PORT),
            node_port: None,
        }],
        ..Service::default()
    }
}

fn dns_service(ip: Ipv4Addr) -> Service {
    let port = |name: &str, protocol| ServicePort {
        name: name.into(),
        protocol,
        port: 53,
        target_port: TargetPort::Number(53),
        node_port: None,
    };
    Service {
        name: ServiceName::new("kube-system", "kube-dns"),
        cluster_ips: vec![IpAddr::V4(ip)],
        ports: vec![port("dns", Protocol::Udp), port("dns-tcp", Protocol::Tcp)],
        ..Service::default()
    }
}

/// An empty slice for `service`, with its ports.
fn slice_of(service: &Service) -> EndpointSlice {
    EndpointSlice {
        name: format!("{}-1", service.name.name),
        service: service.name.clone(),
        ports: service
            .ports
            .iter()
            .map(|p| EndpointPort {
                name: p.name.clone(),
                protocol: p.protocol,
                port: p.port,
            })
            .collect(),
        endpoints: Vec::new(),
    }
}

impl Scenario {
    /// A generated cluster of `size` (see [`crate::generate`]), each client making one
    /// request (more with [`Scenario::with_requests`]). Errors say which number cannot be.
    pub fn generated(size: ClusterSize, seed: u64) -> Result<Scenario, String> {
        let ClusterSize {
            nodes,
            pods,
            services,
            churn,
        } = size;
        let lan = net("192.168.0.0/16");
        let (pod_network, service_network) = (net(POD_NETWORK), net(SERVICE_NETWORK));
        if nodes == 0 {
            return Err("nodes=0: a cluster needs a node".into());
        }
        let first_node = Ipv4Addr::new(192, 168, 1, 1);
        if nth(lan, first_node, nodes - 1).is_none() {
            return Err(format!("nodes={nodes}: more than the LAN {lan} holds"));
        }
        if services < 2 {
            return Err(format!(
                "services={services}: at least 2 (the cluster DNS and one web Service)"
            ));
        }
        let web_services = services - 1;
        let dns_pods = (nodes / NODES_PER_DNS_POD).max(MIN_DNS_PODS);
        let clients = pods.saturating_sub(dns_pods) / 2;
        let web_pods = pods.saturating_sub(dns_pods + clients);
        if churn > web_services {
            return Err(format!(
                "churn={churn}: more than the {web_services} web Deployments"
            ));
        }
        if clients == 0 || web_pods < web_services {
            return Err(format!(
                "pods={pods}: {nodes} nodes and {services} services need at least {} pods \
                 ({dns_pods} for the cluster DNS, one per web Service and as many clients)",
                dns_pods.saturating_add(web_services.saturating_mul(2))
            ));
        }
        let first_pod = Ipv4Addr::new(10, 64, 0, 2);
        let first_service = Ipv4Addr::new(10, 96, 1, 0);
        // Half the pod network stays free for the pods the control plane recreates. Web
        // Services are fewer than pods, so the service network (a million addresses) holds
        // them.
        if nth(pod_network, first_pod, pods.saturating_mul(2)).is_none() {
            return Err(format!(
                "pods={pods}: more than the pod network {pod_network} holds"
            ));
        }
        let node_name = |p: usize| format!("node-{}", p % nodes + 1);
        let mut rng = Rng::new(seed);

        let dns = dns_service(Ipv4Addr::new(10, 96, 0, 10));
        let mut all_services = vec![dns];
        all_services.extend((1..=web_services).map(|k| {
            web_service(
                k,
                nth(service_network, first_service, k - 1).expect("checked above"),
            )
        }));
        let mut slices: Vec<EndpointSlice> = all_services.iter().map(slice_of).collect();
        let mut all_pods = Vec::with_capacity(pods);
        let mut add_pod = |name: String, namespace: &str, service: Option<usize>, app: PodApp| {
            let p = all_pods.len();
            let ip = nth(pod_network, first_pod, p).expect("checked above");
            if let Some(s) = service {
                slices[s].endpoints.push(Endpoint {
                    addresses: vec![IpAddr::V4(ip)],
                    conditions: EndpointConditions::default(),
                    node_name: Some(node_name(p)),
                });
            }
            all_pods.push(Pod {
                name,
                namespace: namespace.into(),
                ip,
                node: node_name(p),
                app,
            });
        };
        for j in 0..dns_pods {
            add_pod(
                format!("coredns-{j}"),
                "kube-system",
                Some(0),
                PodApp::ClusterDns,
            );
        }
        for w in 0..web_pods {
            let k = w % web_services + 1;
            let app = PodApp::Web { port: WEB_PORT };
            add_pod(
                format!("svc-{k}-{}", w / web_services),
                "default",
                Some(k),
                app,
            );
        }
        for c in 0..clients {
            let k = rng.below(web_services as u64) + 1;
            let browse = Browse {
                host: format!("svc-{k}"),
                path: format!("/from/client-{c}"),
                port: WEB_PORT,
                requests: 1,
                start: Instant::ZERO
                    + Duration::from_micros(rng.below(START_SPREAD.as_micros() as u64)),
                gap: Duration::from_millis(100),
                timeout: Duration::from_secs(10),
            };
            add_pod(
                format!("client-{c}"),
                "default",
                None,
                PodApp::Browser { browse },
            );
        }

        let conntrack = conntrack_per_node(nodes, pods.div_ceil(nodes), clients, dns_pods);
        let manifests = Manifests {
            services: all_services,
            endpoint_slices: slices,
            nodes: (0..nodes)
                .map(|i| Node {
                    name: node_name(i),
                    addresses: vec![IpAddr::V4(nth(lan, first_node, i).expect("checked above"))],
                })
                .collect(),
            service_cidrs: vec![IpNet::V4(service_network)],
            proxy: Some(KubeProxyConfiguration {
                cluster_cidr: Some(pod_network.to_string()),
                conntrack: Some(ConntrackConfiguration {
                    max_per_core: Some(1),
                    min: Some(conntrack as i64),
                    ..ConntrackConfiguration::default()
                }),
                ..KubeProxyConfiguration::default()
            }),
            ..Manifests::default()
        };
        // Rollouts of Deployments spread over the Services, started while the clients'
        // first requests are under way.
        let events = (0..churn)
            .map(|i| TimedEvent {
                at: START_SPREAD * (i as u32 + 1) / (churn as u32 + 1),
                action: Action::Rollout {
                    deployment: ServiceName::new(
                        "default",
                        format!("svc-{}", i * web_services / churn + 1),
                    ),
                },
            })
            .collect();
        let control_plane = match churn {
            0 => ControlPlane::default(),
            _ => ControlPlane {
                sync_delay: CHURN_SYNC_DELAY,
                restart_delay: CHURN_RESTART_DELAY,
                ..ControlPlane::default()
            },
        };
        let churned = match churn {
            0 => String::new(),
            n => format!(", {n} rollouts"),
        };
        Ok(Scenario {
            name: format!("generated: {nodes} nodes, {pods} pods, {services} services{churned}"),
            seed,
            manifests,
            lan,
            pod_network,
            cluster_domain: "cluster.local".into(),
            cluster_dns: ServiceName::new("kube-system", "kube-dns"),
            machines: Vec::new(),
            pods: all_pods,
            lan_latency: Duration::from_micros(200),
            veth_latency: Duration::from_micros(20),
            time_limit: Duration::from_secs(60),
            events,
            control_plane,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_say_why() {
        assert_eq!(
            "services=3, nodes=1,pods=9".parse(),
            Ok(ClusterSize {
                nodes: 1,
                pods: 9,
                services: 3,
                churn: 0,
            })
        );
        for (bad, says) in [
            ("nodes=1,pods=9", "expected nodes=N"),
            ("nodes=1,pods=9,services=x", "whole number"),
            ("nodes=1,nodes=2,pods=9,services=3", "twice"),
            ("cpus=4", "expected nodes, pods, services or churn"),
            ("", "expected KEY=NUMBER"),
        ] {
            let error = bad.parse::<ClusterSize>().unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn impossible_sizes_are_errors() {
        for (size, says) in [
            ("nodes=0,pods=10,services=2", "needs a node"),
            ("nodes=1,pods=10,services=1", "at least 2"),
            ("nodes=1,pods=5,services=4", "at least 8 pods"),
            (
                "nodes=64,pods=8,services=4",
                "at least 10 pods (4 for the cluster DNS",
            ),
            ("nodes=70000,pods=10,services=2", "more than the LAN"),
            (
                "nodes=2,pods=20,services=3,churn=3",
                "more than the 2 web Deployments",
            ),
            (
                "nodes=1,pods=1100000,services=2",
                "more than the pod network 10.64.0.0/11 holds",
            ),
        ] {
            let error = Scenario::generated(size.parse().unwrap(), 1).unwrap_err();
            assert!(error.contains(says), "{size}: {error}");
        }
    }

    /// The pod network, the Service range and the LAN are apart, and every address the
    /// generator hands out is in its own.
    #[test]
    fn pod_service_and_node_addresses_never_overlap() {
        let (pods, services) = (net(POD_NETWORK), net(SERVICE_NETWORK));
        let lan = net("192.168.0.0/16");
        for (a, b) in [(pods, services), (pods, lan), (services, lan)] {
            assert!(
                !a.contains(&b.network()) && !b.contains(&a.network()),
                "{a} {b}"
            );
        }
        let size = "nodes=300,pods=3000,services=300".parse().unwrap();
        let scenario = Scenario::generated(size, 1).unwrap();
        assert_eq!(scenario.pod_network, pods);
        assert!(scenario.pods.iter().all(|p| pods.contains(&p.ip)));
        let m = &scenario.manifests;
        assert_eq!(m.service_cidrs, [IpNet::V4(services)]);
        for ip in m.services.iter().flat_map(|s| &s.cluster_ips) {
            assert!(
                matches!(ip, IpAddr::V4(ip) if services.contains(ip)),
                "{ip}"
            );
        }
        for ip in m.nodes.iter().flat_map(|n| &n.addresses) {
            assert!(matches!(ip, IpAddr::V4(ip) if lan.contains(ip)), "{ip}");
        }
    }

    /// The size of issue 12 builds (its simulation is another matter: memory), and quickly.
    #[test]
    fn five_thousand_nodes_and_150k_pods_build() {
        let size = "nodes=5000,pods=150000,services=10000".parse().unwrap();
        let started = std::time::Instant::now();
        let scenario = Scenario::generated(size, 1).unwrap();
        let took = started.elapsed();
        let m = &scenario.manifests;
        assert_eq!(
            (m.nodes.len(), scenario.pods.len(), m.services.len()),
            (5000, 150_000, 10_000)
        );
        let last = scenario.pods.last().unwrap().ip;
        assert!(net(POD_NETWORK).contains(&last), "{last}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn every_web_service_has_a_pod_and_pods_spread_over_the_nodes() {
        let size = "nodes=4,pods=20,services=5".parse().unwrap();
        let scenario = Scenario::generated(size, 1).unwrap();
        let m = &scenario.manifests;
        assert_eq!(
            (m.nodes.len(), scenario.pods.len(), m.services.len()),
            (4, 20, 5)
        );
        assert!(m.endpoint_slices.iter().all(|s| !s.endpoints.is_empty()));
        for node in &m.nodes {
            let here = scenario.pods.iter().filter(|p| p.node == node.name).count();
            assert_eq!(here, 5, "{}", node.name);
        }
        let clients = scenario
            .pods
            .iter()
            .filter(|p| matches!(p.app, PodApp::Browser { .. }))
            .count();
        assert_eq!(clients, 9);
        assert_eq!(scenario.expected_requests(), 9);
        let state = m.cluster_state("node-1").unwrap();
        assert_eq!(state.proxy.conntrack_capacity, 1024);
        // 10,000 pods on 1,000 nodes: 640 for a node's pods, 1,000 for the first CoreDNS
        // pods' queries (one from each node; an even share of 4,999 clients' queries over
        // 62 replicas is 81, 648 with retries).
        assert_eq!(conntrack_per_node(1000, 10, 4999, 62), 2048);
        // 150,000 on 5,000: 1,920 and 5,000 (not 8 x 240).
        assert_eq!(conntrack_per_node(5000, 30, 74_844, 312), 8192);
    }
}
