//! The wires: links with a fixed latency, and who owns which address.
//!
//! Two kinds of link: the company LAN (one shared segment: nodes, the balancer, the PC,
//! the outside DNS) and one veth pair per pod between the pod and its node. The pod network
//! is routed between nodes over the LAN (host-gw style: the route to a pod is its node).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

/// Index of a host (an smoltcp stack: pod or LAN machine).
pub type HostId = usize;
/// Index of a Kubernetes node (a router with its engine).
pub type NodeId = usize;
/// Index of a link.
pub type LinkId = usize;

/// Where a link delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Port {
    Host(HostId),
    Node(NodeId),
}

/// One link and its counters.
#[derive(Clone, Debug)]
pub struct Link {
    pub name: String,
    /// A short name fit for a file (`lan`, `veth-nodoa-mariadb-0`), unique in the fabric.
    pub file: String,
    pub latency: Duration,
    pub packets: u64,
    pub bytes: u64,
}

/// How a host reaches the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uplink {
    /// Directly on the LAN.
    Lan,
    /// A pod: everything goes to its node over its veth.
    Veth { node: NodeId, link: LinkId },
}

/// A node's routing decision for a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRoute {
    /// A pod on this node, over its veth.
    Pod { host: HostId, link: LinkId },
    /// A pod on another node: to that node over the LAN.
    ViaNode { node: NodeId, link: LinkId },
    /// A machine on the LAN (or another node's own address).
    Lan { to: Port, link: LinkId },
    /// The node's own address.
    Local,
    /// Nobody owns it.
    Unreachable,
}

/// The topology and its links.
pub struct Fabric {
    pub links: Vec<Link>,
    pub lan: LinkId,
    pub lan_net: Ipv4Net,
    pub pod_net: Ipv4Net,
    lan_owners: BTreeMap<Ipv4Addr, Port>,
    /// Pod address -> (its node, its host, its veth).
    pods: BTreeMap<Ipv4Addr, (NodeId, HostId, LinkId)>,
    uplinks: Vec<Uplink>,
    /// Every link's file name, so a new one is made unique without a walk over the links.
    files: BTreeSet<String>,
    host_names: Vec<String>,
    node_names: Vec<String>,
    node_ips: Vec<Ipv4Addr>,
}

impl Fabric {
    /// An empty fabric with its LAN.
    pub fn new(lan_net: Ipv4Net, pod_net: Ipv4Net, lan_latency: Duration) -> Fabric {
        Fabric {
            links: vec![Link {
                name: format!("lan {lan_net}"),
                file: "lan".into(),
                latency: lan_latency,
                packets: 0,
                bytes: 0,
            }],
            lan: 0,
            lan_net,
            pod_net,
            lan_owners: BTreeMap::new(),
            pods: BTreeMap::new(),
            uplinks: Vec::new(),
            files: BTreeSet::from(["lan".to_string()]),
            host_names: Vec::new(),
            node_names: Vec::new(),
            node_ips: Vec::new(),
        }
    }

    /// Adds a node on the LAN; its id is the next [`NodeId`].
    pub fn add_node(&mut self, name: &str, ip: Ipv4Addr) -> NodeId {
        let id = self.node_names.len();
        self.node_names.push(name.to_string());
        self.node_ips.push(ip);
        self.lan_owners.insert(ip, Port::Node(id));
        id
    }

    /// Adds a machine on the LAN; its id is the next [`HostId`].
    pub fn add_lan_host(&mut self, name: &str, ip: Ipv4Addr) -> HostId {
        let id = self.host_names.len();
        self.host_names.push(name.to_string());
        self.uplinks.push(Uplink::Lan);
        self.lan_owners.insert(ip, Port::Host(id));
        id
    }

    /// Adds a pod on `node` with its own veth.
    pub fn add_pod(&mut self, name: &str, ip: Ipv4Addr, node: NodeId, latency: Duration) -> HostId {
        let id = self.host_names.len();
        let link = self.links.len();
        let file = self.unique_file(&format!("veth-{}-{name}", self.node_names[node]));
        self.files.insert(file.clone());
        self.links.push(Link {
            name: format!("veth {} <-> {name}", self.node_names[node]),
            file,
            latency,
            packets: 0,
            bytes: 0,
        });
        self.host_names.push(name.to_string());
        self.uplinks.push(Uplink::Veth { node, link });
        self.pods.insert(ip, (node, id, link));
        id
    }

    /// Takes a pod's address off the pod network (its veth is gone): nodes no longer route
    /// to it. Returns the pod's node, host and veth.
    pub fn remove_pod(&mut self, ip: Ipv4Addr) -> Option<(NodeId, HostId, LinkId)> {
        self.pods.remove(&ip)
    }

    /// The pod that owns `ip` now.
    pub fn pod_at(&self, ip: Ipv4Addr) -> Option<(NodeId, HostId, LinkId)> {
        self.pods.get(&ip).copied()
    }

    /// Node ids in order of addition.
    pub fn node_count(&self) -> usize {
        self.node_names.len()
    }

    /// `base` made file-safe and different from every link's file name so far.
    fn unique_file(&self, base: &str) -> String {
        let safe: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = safe.clone();
        let mut n = 1;
        while self.files.contains(&name) {
            n += 1;
            name = format!("{safe}-{n}");
        }
        name
    }

    /// Where a host's packet to `dst` goes first.
    pub fn from_host(&self, host: HostId, dst: Ipv4Addr) -> Option<(Port, LinkId)> {
        match self.uplinks[host] {
            Uplink::Veth { node, link } => Some((Port::Node(node), link)),
            // LAN machines know only the LAN: the pod network is not routed to them.
            Uplink::Lan => self.lan_owners.get(&dst).map(|&p| (p, self.lan)),
        }
    }

    /// A node's routing decision.
    pub fn from_node(&self, node: NodeId, dst: Ipv4Addr) -> NodeRoute {
        if self.node_ips[node] == dst {
            return NodeRoute::Local;
        }
        if let Some(&(owner, host, link)) = self.pods.get(&dst) {
            return if owner == node {
                NodeRoute::Pod { host, link }
            } else {
                NodeRoute::ViaNode {
                    node: owner,
                    link: self.lan,
                }
            };
        }
        match self.lan_owners.get(&dst) {
            Some(&to) if self.lan_net.contains(&dst) => NodeRoute::Lan { to, link: self.lan },
            _ => NodeRoute::Unreachable,
        }
    }

    /// Counts a packet on `link` and returns when it arrives.
    pub fn carry(&mut self, link: LinkId, len: usize) -> Duration {
        let l = &mut self.links[link];
        l.packets += 1;
        l.bytes += len as u64;
        l.latency
    }

    pub fn host_name(&self, host: HostId) -> &str {
        &self.host_names[host]
    }

    pub fn node_name(&self, node: NodeId) -> &str {
        &self.node_names[node]
    }

    pub fn node_ip(&self, node: NodeId) -> Ipv4Addr {
        self.node_ips[node]
    }

    /// A port's name.
    pub fn port_name(&self, port: Port) -> &str {
        match port {
            Port::Host(h) => self.host_name(h),
            Port::Node(n) => self.node_name(n),
        }
    }

    /// A routing decision as the journey shows it.
    pub fn describe(&self, route: NodeRoute) -> String {
        match route {
            NodeRoute::Pod { host, .. } => format!("pod {} (veth)", self.host_name(host)),
            NodeRoute::ViaNode { node, .. } => format!(
                "{} {} (pod network over the LAN)",
                self.node_name(node),
                self.node_ip(node)
            ),
            NodeRoute::Lan { to, .. } => format!("{} (LAN)", self.port_name(to)),
            NodeRoute::Local => "the node itself".into(),
            NodeRoute::Unreachable => "nowhere (no route)".into(),
        }
    }
}

impl fmt::Debug for Fabric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fabric")
            .field("links", &self.links.len())
            .field("hosts", &self.host_names)
            .field("nodes", &self.node_names)
            .finish()
    }
}
