//! Which endpoints of a service port can receive traffic, as kube-proxy's
//! `CategorizeEndpoints` decides it.
//!
//! Ready endpoints are used; when a class has no ready endpoint, its serving-and-terminating
//! endpoints are used instead, so connections drain gracefully to pods that are shutting down.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use crate::endpoint_list::{EndpointList, Endpoints};
use crate::model::{EndpointSlice, Protocol, ServiceName};

/// The usable endpoints of one service port in one address family, for every node at
/// once: compiled once for the whole cluster, each node reads its own local set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CategorizedEndpoints {
    /// For traffic policy Cluster: usable endpoints on every node.
    pub cluster: EndpointList,
    /// For traffic policy Local: each node's usable endpoints, sorted by node name; nodes
    /// without one are left out.
    pub local: Box<[LocalEndpoints]>,
    /// The serving endpoints' addresses that `cluster` does not hold, sorted ([`Self::serving`]).
    /// Usually none: a serving endpoint is left out of `cluster` only while it terminates
    /// beside ready ones, so keeping them all would repeat `cluster`.
    serving_beyond_cluster: Box<[IpAddr]>,
}

/// One node's usable endpoints for traffic policy Local.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEndpoints {
    /// The node's name (`nodeName` in the EndpointSlice).
    pub node: Arc<str>,
    /// Its usable endpoints, sorted.
    pub endpoints: EndpointList,
}

impl CategorizedEndpoints {
    /// The usable endpoints on node `node`, for traffic policy Local (empty when it has
    /// none).
    pub fn local_on(&self, node: &str) -> Endpoints<'_> {
        self.local
            .binary_search_by(|group| (*group.node).cmp(node))
            .map_or_else(|_| Endpoints::default(), |i| self.local[i].endpoints.view())
    }

    /// Every serving endpoint's address, terminating or not, sorted: UDP connections to any
    /// other address are stale (kube-proxy's conntrack cleanup).
    pub fn serving(&self) -> Vec<IpAddr> {
        let mut serving: Vec<IpAddr> = self.cluster.iter().map(|e| e.ip()).collect();
        serving.extend_from_slice(&self.serving_beyond_cluster);
        serving.sort_unstable();
        serving.dedup();
        serving
    }

    /// Whether `address` is a serving endpoint's ([`Self::serving`]), without building the
    /// list.
    pub fn is_serving(&self, address: IpAddr) -> bool {
        holds_ip(&self.cluster, address)
            || self.serving_beyond_cluster.binary_search(&address).is_ok()
    }

    /// Whether some endpoint is serving (a usable one is: the cluster set says it unless
    /// only terminating, not-ready endpoints serve).
    pub fn any_serving(&self) -> bool {
        !self.cluster.is_empty() || !self.serving_beyond_cluster.is_empty()
    }
}

/// Whether `endpoints`, sorted by address (so by IP first), hold one on `ip`.
fn holds_ip(endpoints: &EndpointList, ip: IpAddr) -> bool {
    match (endpoints.view(), ip) {
        (Endpoints::V4(list), IpAddr::V4(ip)) => list.binary_search_by(|e| e.ip().cmp(&ip)).is_ok(),
        (Endpoints::V6(list), IpAddr::V6(ip)) => list.binary_search_by(|e| e.ip().cmp(&ip)).is_ok(),
        _ => false,
    }
}

/// Which endpoints of a class are usable: the ready ones (`true`), else the
/// serving-and-terminating ones. A flag tested inline ([`Candidate::usable`]), where a
/// function pointer cost a call per endpoint.
fn ready_usable<'a>(mut class: impl Iterator<Item = &'a Candidate>) -> bool {
    class.any(|c| c.ready)
}

/// The usable endpoints of a class ([`ready_usable`]), collected with no list in between,
/// and the choice that made them.
fn usable<'a>(class: impl Iterator<Item = &'a Candidate> + Clone) -> (EndpointList, bool) {
    let ready = ready_usable(class.clone());
    let endpoints = EndpointList::new(class.filter(|c| c.usable(ready)).map(|c| c.address));
    (endpoints, ready)
}

struct Candidate {
    address: SocketAddr,
    ready: bool,
    serving: bool,
    serving_terminating: bool,
    /// Its node's name, by its place in [`Candidates::nodes`] (for local endpoints only).
    node: Option<u32>,
}

impl Candidate {
    /// Whether it is usable in its class, whose choice is `ready` ([`ready_usable`]).
    fn usable(&self, ready: bool) -> bool {
        if ready {
            self.ready
        } else {
            self.serving_terminating
        }
    }
}

/// Returns the one shared copy of a node name (see `node_names`).
pub type InternNodeName<'a> = dyn FnMut(&str) -> Arc<str> + 'a;

/// Room for the endpoints [`categorize`] looks at, kept by a caller that categorizes many
/// service ports so that each does not allocate its own.
#[derive(Default)]
pub(crate) struct Candidates {
    list: Vec<Candidate>,
    /// The node names `list` points at: candidates own none, so clearing is no pass.
    nodes: Vec<Arc<str>>,
}

/// Collects the endpoints of `service`'s port `port_name`/`protocol` in the family of
/// `family_of` from `slices`, and splits them into the cluster-wide set and, for a Service
/// that uses local endpoints (`local` is `Some`: a Local traffic policy applies), each
/// node's local set; kube-proxy's `CategorizeEndpoints` computes local endpoints for such
/// Services only. Node names go through `local`, which interns them, so the compiled
/// tables keep one copy of each. The result is sorted and free of duplicates, so compiled
/// tables do not depend on the order slices arrived in.
pub fn categorize(
    slices: &[EndpointSlice],
    service: &ServiceName,
    port_name: &str,
    protocol: Protocol,
    family_of: IpAddr,
    local: Option<&mut InternNodeName<'_>>,
) -> CategorizedEndpoints {
    let of_service = slices.iter().filter(|s| &s.service == service);
    let port = (port_name, protocol, family_of);
    categorize_with(&mut Candidates::default(), of_service, port, local)
}

/// [`categorize`] over `slices`, all of the Service, with `candidates` as room (their
/// names need no comparing: the compile hands each Service its own slices).
pub(crate) fn categorize_with<'a>(
    candidates: &mut Candidates,
    slices: impl Iterator<Item = &'a EndpointSlice> + Clone,
    (port_name, protocol, family_of): (&str, Protocol, IpAddr),
    mut local: Option<&mut InternNodeName<'_>>,
) -> CategorizedEndpoints {
    let Candidates {
        list: candidates,
        nodes,
    } = candidates;
    candidates.clear();
    nodes.clear();
    candidates.reserve(slices.clone().map(|s| s.endpoints.len()).sum());
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == protocol)
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // kube-proxy programs only an endpoint's first address.
            let Some(&ip) = endpoint.addresses.first() else {
                continue;
            };
            if ip.is_ipv4() != family_of.is_ipv4() {
                continue;
            }
            let address = SocketAddr::new(ip, port.port);
            let c = endpoint.conditions;
            candidates.push(Candidate {
                address,
                ready: c.ready,
                serving: c.serving || c.ready,
                serving_terminating: c.serving && c.terminating,
                node: match (&mut local, endpoint.node_name.as_deref()) {
                    (Some(intern), Some(name)) => {
                        nodes.push(intern(name));
                        Some((nodes.len() - 1) as u32)
                    }
                    _ => None,
                },
            });
        }
    }
    // Sorted by address, the first of duplicates kept (a stable sort): what each class
    // collects below is then sorted too.
    candidates.sort_by_key(|c| c.address);
    candidates.dedup_by_key(|c| c.address);
    // Without `local`, no candidate has a node: nothing to group.
    let local = match local {
        Some(_) => by_node(candidates, nodes),
        None => Box::default(),
    };
    let (cluster, ready) = usable(candidates.iter());
    // Addresses sorted by IP first, so their IPs are sorted too: only duplicates to drop.
    // A candidate the cluster set took needs no search for its IP there.
    let mut beyond: Vec<IpAddr> = candidates
        .iter()
        .filter(|c| c.serving && !c.usable(ready) && !holds_ip(&cluster, c.address.ip()))
        .map(|c| c.address.ip())
        .collect();
    beyond.dedup();
    CategorizedEndpoints {
        cluster,
        local,
        serving_beyond_cluster: beyond.into_boxed_slice(),
    }
}

/// Each node's usable endpoints, from `candidates` sorted by address, whose node names
/// are in `nodes`.
fn by_node(candidates: &[Candidate], nodes: &[Arc<str>]) -> Box<[LocalEndpoints]> {
    let node = |c: &Candidate| c.node.map(|i| &nodes[i as usize]);
    let mut on_nodes: Vec<&Candidate> = candidates.iter().filter(|c| c.node.is_some()).collect();
    // By node, then address (the sort is stable).
    on_nodes.sort_by(|a, b| node(a).cmp(&node(b)));
    on_nodes
        .chunk_by(|a, b| node(a) == node(b))
        .filter_map(|group| {
            let (endpoints, _) = usable(group.iter().copied());
            let node = node(group[0])?.clone();
            (!endpoints.is_empty()).then_some(LocalEndpoints { node, endpoints })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, EndpointConditions, EndpointPort};

    fn endpoint(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        Endpoint {
            addresses: vec![ip.parse().unwrap()],
            conditions: EndpointConditions {
                ready,
                serving,
                terminating,
            },
            node_name: Some(node.to_string()),
        }
    }

    fn slice(endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            name: "s".into(),
            service: ServiceName::new("ns", "svc"),
            ports: vec![EndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
            }],
            endpoints,
        }
    }

    /// The endpoints of ns/svc's TCP port "http" in `slices`, for a node at 10.0.0.0.
    fn categorize_http(slices: &[EndpointSlice]) -> CategorizedEndpoints {
        categorize(
            slices,
            &ServiceName::new("ns", "svc"),
            "http",
            Protocol::Tcp,
            "10.0.0.0".parse().unwrap(),
            Some(&mut |name| Arc::from(name)),
        )
    }

    fn addrs(v: &[&str]) -> Vec<SocketAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn readiness_rules_per_class() {
        // (endpoints, expected cluster, expected local on node "a")
        let cases: Vec<(Vec<Endpoint>, Vec<&str>, Vec<&str>)> = vec![
            (
                vec![
                    endpoint("10.0.0.1", "a", true, true, false),
                    endpoint("10.0.0.2", "b", true, true, false),
                ],
                vec!["10.0.0.1:80", "10.0.0.2:80"],
                vec!["10.0.0.1:80"],
            ),
            // Ready endpoints win over serving-terminating ones.
            (
                vec![
                    endpoint("10.0.0.1", "a", false, true, true),
                    endpoint("10.0.0.2", "b", true, true, false),
                ],
                vec!["10.0.0.2:80"],
                vec!["10.0.0.1:80"],
            ),
            // No ready endpoint: fall back to serving and terminating; not-serving never.
            (
                vec![
                    endpoint("10.0.0.1", "a", false, true, true),
                    endpoint("10.0.0.2", "b", false, false, true),
                    endpoint("10.0.0.3", "b", false, true, false),
                ],
                vec!["10.0.0.1:80"],
                vec!["10.0.0.1:80"],
            ),
            (vec![], vec![], vec![]),
        ];
        for (endpoints, cluster, local) in cases {
            let s = slice(endpoints);
            let got = categorize_http(std::slice::from_ref(&s));
            assert_eq!(got.cluster.view().to_vec(), addrs(&cluster));
            assert_eq!(got.local_on("a").to_vec(), addrs(&local));
            // Serving endpoints are a superset of the usable ones.
            let serving = got.serving();
            assert!(got.cluster.iter().all(|e| serving.contains(&e.ip())));
            assert!(serving.iter().all(|&ip| got.is_serving(ip)));
            assert_eq!(got.any_serving(), !serving.is_empty());
        }
    }

    #[test]
    fn serving_addresses_come_sorted_once_each_whatever_the_slices_order() {
        let mut on_81 = slice(vec![
            endpoint("10.0.0.2", "a", false, false, false),
            endpoint("10.0.0.1", "a", true, true, false),
        ]);
        on_81.ports[0].port = 81;
        let on_80 = slice(vec![
            endpoint("10.0.0.3", "b", true, true, false),
            endpoint("10.0.0.1", "b", true, true, false),
        ]);
        let got = categorize_http(&[on_81, on_80]);
        assert_eq!(
            got.cluster.view().to_vec(),
            addrs(&["10.0.0.1:80", "10.0.0.1:81", "10.0.0.3:80"])
        );
        let ips: Vec<IpAddr> = ["10.0.0.1", "10.0.0.3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got.serving(), ips);
    }

    #[test]
    fn other_family_port_and_duplicates_are_ignored() {
        let mut s = slice(vec![
            endpoint("10.0.0.1", "a", true, true, false),
            endpoint("fd00::1", "a", true, true, false),
        ]);
        let twin = s.clone();
        s.ports[0].name = "other".into();
        let got = categorize_http(&[s, twin.clone(), twin]);
        assert_eq!(got.cluster.view().to_vec(), addrs(&["10.0.0.1:80"]));
    }

    #[test]
    fn the_first_slice_listing_an_address_gives_its_conditions() {
        let first = slice(vec![
            endpoint("10.0.0.2", "a", false, false, false),
            endpoint("10.0.0.1", "a", true, true, false),
        ]);
        let second = slice(vec![
            endpoint("10.0.0.1", "b", false, true, true),
            endpoint("10.0.0.2", "b", true, true, false),
            endpoint("10.0.0.3", "b", true, true, false),
        ]);
        let got = categorize_http(&[first, second]);
        // 10.0.0.2 is not ready as the first slice says; 10.0.0.1 is local and ready.
        assert_eq!(
            got.cluster.view().to_vec(),
            addrs(&["10.0.0.1:80", "10.0.0.3:80"])
        );
        assert_eq!(got.local_on("a").to_vec(), addrs(&["10.0.0.1:80"]));
        assert_eq!(got.local_on("b").to_vec(), addrs(&["10.0.0.3:80"]));
        assert_eq!(got.local_on("c").to_vec(), addrs(&[]));
    }
}
