//! What to simulate: the topology, the manifests, the applications and the traffic.
//! [`Scenario::notes`] is the course notes' company network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;
use kubenat_core::ServiceName;
use kubenat_k8s::Manifests;

use crate::apps::pc::Browse;
use crate::apps::wordpress::DbHost;
use crate::clock::Instant;

/// An application on a LAN machine.
#[derive(Clone, Debug, PartialEq)]
pub enum LanApp {
    /// A browser resolving its URL's host with `dns` and fetching it.
    Browser { dns: Ipv4Addr, browse: Browse },
    /// A TCP proxy spreading connections round robin over `backends`.
    Balancer {
        port: u16,
        backends: Vec<SocketAddr>,
    },
    /// A DNS server with static A records.
    Dns { records: Vec<(String, Ipv4Addr)> },
}

/// A machine on the company LAN.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub name: String,
    pub ip: Ipv4Addr,
    pub app: LanApp,
}

/// An application in a pod.
#[derive(Clone, Debug, PartialEq)]
pub enum PodApp {
    /// CoreDNS serving the cluster zone from the Services.
    ClusterDns,
    /// The ingress controller, for Ingresses of `class` (all when `None`).
    IngressController {
        class: Option<String>,
    },
    WordPress {
        db: DbHost,
    },
    MariaDb {
        port: u16,
        blogname: String,
    },
    /// A web server answering every request with a page naming the pod.
    Web {
        port: u16,
    },
    /// A browser in a pod: resolves its URL's host through the cluster DNS (with the pod's
    /// search list) and fetches it.
    Browser {
        browse: Browse,
    },
}

/// A pod, scheduled on a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub node: String,
    pub app: PodApp,
}

/// Something that happens to the cluster at a given time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The pod dies (a crash, `kubectl delete pod`): its controller recreates it on another
    /// node, with a new address.
    KillPod { pod: String },
    /// `kubectl drain`: the node is cordoned (takes no new pods) and every pod on it is
    /// evicted and recreated elsewhere. The node itself keeps forwarding (its NodePort
    /// still works).
    DrainNode { node: String },
    /// `kubectl rollout restart deployment`: the Deployment's pods are replaced one at a
    /// time (maxSurge 1, maxUnavailable 0). Each new pod, with a new address, joins the
    /// EndpointSlices in its old one's place when ready; the old one stops `endpointDelay`
    /// later. A Deployment `namespace/name` has the pods of that namespace named
    /// `name-<hash>-<id>` or `name-<id>`.
    Rollout { deployment: ServiceName },
    /// `kubectl scale deployment --replicas=N`: new pods (new names and addresses, on the
    /// least-loaded nodes) join the EndpointSlices when ready; surplus ones, the newest
    /// first, leave the slices at once and stop `endpointDelay` after every node applied
    /// that. Pods named `name-<ordinal>` scale as a StatefulSet's: new ones take the
    /// lowest free ordinals, the highest go first.
    Scale {
        deployment: ServiceName,
        replicas: u32,
    },
}

impl Action {
    /// Whether `pod` (in `namespace`) belongs to `deployment`: it is named
    /// `name-<hash>-<id>` or `name-<id>`.
    pub fn in_deployment(deployment: &ServiceName, namespace: &str, pod: &str) -> bool {
        namespace == deployment.namespace
            && pod
                .strip_prefix(deployment.name.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| !rest.is_empty() && rest.matches('-').count() <= 1)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::KillPod { pod } => write!(f, "kill pod {pod}"),
            Action::DrainNode { node } => write!(f, "drain node {node}"),
            Action::Rollout { deployment } => write!(f, "rollout deployment {deployment}"),
            Action::Scale {
                deployment,
                replicas,
            } => write!(f, "scale deployment {deployment} --replicas={replicas}"),
        }
    }
}

/// An [`Action`] at a time from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    pub at: Duration,
    pub action: Action,
}

/// How the simulated control plane (scheduler, ReplicaSet/StatefulSet controllers,
/// EndpointSlice controller, and the kube-proxies' sync) reacts to a pod's death.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlane {
    /// Nodes tainted `NoSchedule` (the control plane): pods already there stay, new ones
    /// go elsewhere.
    pub no_schedule: Vec<String>,
    /// From a pod's death until its endpoint is out of every node's rules (the EndpointSlice
    /// controller, then each kube-proxy's sync). Until then Services still send new
    /// connections to the dead address.
    pub endpoint_delay: Duration,
    /// From a pod's death until its replacement runs on another node and is ready (in its
    /// Services' EndpointSlices and in every node's rules).
    pub restart_delay: Duration,
    /// Each node's kube-proxy applies an EndpointSlice change at a random moment up to this
    /// long after it (its sync period); zero: every node at once.
    pub sync_delay: Duration,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            no_schedule: Vec::new(),
            endpoint_delay: Duration::from_secs(1),
            restart_delay: Duration::from_secs(3),
            sync_delay: Duration::ZERO,
        }
    }
}

/// A whole simulation's input.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    /// Services, EndpointSlices, Nodes, Ingresses, kube-proxy configuration.
    pub manifests: Manifests,
    pub lan: Ipv4Net,
    pub pod_network: Ipv4Net,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The Service pods send DNS queries to (kube-system/kube-dns).
    pub cluster_dns: ServiceName,
    pub machines: Vec<Machine>,
    pub pods: Vec<Pod>,
    pub lan_latency: Duration,
    pub veth_latency: Duration,
    /// The run stops here whatever happens.
    pub time_limit: Duration,
    /// Failures, in any order.
    pub events: Vec<TimedEvent>,
    pub control_plane: ControlPlane,
}

/// The notes' cluster as `kubectl get -o yaml` prints it.
pub const NOTES_CLUSTER_YAML: &str = include_str!("../../../examples/miempresa/cluster.yaml");
/// The notes' kube-proxy configuration.
pub const NOTES_KUBE_PROXY_YAML: &str = include_str!("../../../examples/miempresa/kube-proxy.yaml");

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("literal address")
}

impl Scenario {
    /// The notes' company network: nodo1 (control plane, CoreDNS), nodoa (WordPress 1),
    /// nodob (ingress controller, WordPress 2), nodoc (MariaDB); the external balancer at
    /// 192.168.0.10:80 over the nodes' NodePort 30880; an outside DNS (192.168.0.53) with
    /// `web1.miempresa.com -> 192.168.0.10`; the PC 192.168.0.200 making `requests` requests.
    pub fn notes(requests: u32) -> Scenario {
        let mut manifests =
            kubenat_k8s::parse_str("examples/miempresa/cluster.yaml", NOTES_CLUSTER_YAML)
                .expect("the example manifests parse");
        manifests.merge(
            kubenat_k8s::parse_str("examples/miempresa/kube-proxy.yaml", NOTES_KUBE_PROXY_YAML)
                .expect("the example kube-proxy configuration parses"),
        );
        let node_ports: Vec<SocketAddr> = [
            "192.168.0.100",
            "192.168.0.101",
            "192.168.0.102",
            "192.168.0.103",
        ]
        .iter()
        .map(|a| SocketAddr::new(IpAddr::V4(ip(a)), 30880))
        .collect();
        let wordpress = PodApp::WordPress {
            db: DbHost::Name("mariadb-service".into(), 3307),
        };
        let pod = |name: &str, namespace: &str, addr: &str, node: &str, app: PodApp| Pod {
            name: name.into(),
            namespace: namespace.into(),
            ip: ip(addr),
            node: node.into(),
            app,
        };
        Scenario {
            name: "notes: Comunicaciones en Kubernetes".into(),
            seed: 1,
            manifests,
            lan: "192.168.0.0/16".parse().expect("literal"),
            pod_network: "10.10.0.0/16".parse().expect("literal"),
            cluster_domain: "cluster.local".into(),
            cluster_dns: ServiceName::new("kube-system", "kube-dns"),
            machines: vec![
                Machine {
                    name: "balanceador".into(),
                    ip: ip("192.168.0.10"),
                    app: LanApp::Balancer {
                        port: 80,
                        backends: node_ports,
                    },
                },
                Machine {
                    name: "dns-externo".into(),
                    ip: ip("192.168.0.53"),
                    app: LanApp::Dns {
                        records: vec![("web1.miempresa.com".into(), ip("192.168.0.10"))],
                    },
                },
                Machine {
                    name: "MenchuPC".into(),
                    ip: ip("192.168.0.200"),
                    app: LanApp::Browser {
                        dns: ip("192.168.0.53"),
                        browse: Browse {
                            host: "web1.miempresa.com".into(),
                            path: "/".into(),
                            port: 80,
                            requests,
                            start: Instant::from_millis(10),
                            gap: Duration::from_millis(20),
                            timeout: Duration::from_secs(10),
                        },
                    },
                },
            ],
            pods: vec![
                pod(
                    "coredns-7db6d8ff4d-q9w2e",
                    "kube-system",
                    "10.10.0.10",
                    "nodo1",
                    PodApp::ClusterDns,
                ),
                pod(
                    "wordpress-5d8f7c9b6-abcde",
                    "default",
                    "10.10.0.102",
                    "nodoa",
                    wordpress.clone(),
                ),
                pod(
                    "ingress-nginx-controller-7c6b9d8f5-kx2lp",
                    "default",
                    "10.10.0.105",
                    "nodob",
                    PodApp::IngressController {
                        class: Some("nginx".into()),
                    },
                ),
                pod(
                    "wordpress-5d8f7c9b6-fghij",
                    "default",
                    "10.10.0.112",
                    "nodob",
                    wordpress,
                ),
                pod(
                    "mariadb-0",
                    "default",
                    "10.10.0.103",
                    "nodoc",
                    PodApp::MariaDb {
                        port: 3306,
                        blogname: "Mi Empresa".into(),
                    },
                ),
            ],
            lan_latency: Duration::from_micros(200),
            veth_latency: Duration::from_micros(20),
            time_limit: Duration::from_secs(120),
            events: Vec::new(),
            control_plane: ControlPlane {
                no_schedule: vec!["nodo1".into()],
                ..ControlPlane::default()
            },
        }
    }

    /// The same scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// The same scenario with every browser (on the LAN and in pods) making `requests`
    /// requests.
    pub fn with_requests(mut self, requests: u32) -> Scenario {
        let machines = self.machines.iter_mut().filter_map(|m| match &mut m.app {
            LanApp::Browser { browse, .. } => Some(browse),
            _ => None,
        });
        let pods = self.pods.iter_mut().filter_map(|p| match &mut p.app {
            PodApp::Browser { browse } => Some(browse),
            _ => None,
        });
        for browse in machines.chain(pods) {
            browse.requests = requests;
        }
        self
    }

    /// The same scenario with `action` at `at`.
    pub fn with_event(mut self, at: Duration, action: Action) -> Scenario {
        self.events.push(TimedEvent { at, action });
        self
    }

    /// Requests the browsers (on the LAN and in pods) will make in all.
    pub fn expected_requests(&self) -> u32 {
        let machines = self.machines.iter().map(|m| match &m.app {
            LanApp::Browser { browse, .. } => browse.requests,
            _ => 0,
        });
        let pods = self.pods.iter().map(|p| match &p.app {
            PodApp::Browser { browse } => browse.requests,
            _ => 0,
        });
        machines.chain(pods).sum()
    }
}
