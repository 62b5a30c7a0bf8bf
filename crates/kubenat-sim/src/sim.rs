//! The event loop: packets in flight, host wake-ups and engine timers, in time order.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use kubenat_core::Engine;

use crate::apps::App;
use crate::apps::balancer::Balancer;
use crate::apps::dns::{DnsServer, ResolverConfig, Zone};
use crate::apps::ingress::{IngressController, RoutingTable};
use crate::apps::mariadb::MariaDb;
use crate::apps::pc::Pc;
use crate::apps::wordpress::WordPress;
use crate::clock::{Instant, Rng};
use crate::fabric::{Fabric, HostId, LinkId, NodeId, Port};
use crate::host::Host;
use crate::journey::{Journal, LinkStats, NodeStats, Report, Summary};
use crate::node::KubeNode;
use crate::queue::EventQueue;
use crate::scenario::{LanApp, PodApp, Scenario};

/// Pods' default gateway (a link-local address, as Calico uses): with `Medium::Ip` it only
/// says "everything goes out of the veth".
const POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

enum Event {
    Arrive { to: Port, packet: Vec<u8> },
    Wake(HostId),
    EngineTimer(NodeId),
}

/// A running simulation.
pub struct Sim {
    pub now: Instant,
    queue: EventQueue<Event>,
    pub fabric: Fabric,
    pub hosts: Vec<Host>,
    pub nodes: Vec<KubeNode>,
    pub journal: Journal,
    pub events: u64,
    /// Packets a LAN machine sent to an address nobody owns.
    pub unrouted: u64,
}

fn first_v4(ips: &[IpAddr]) -> Option<Ipv4Addr> {
    ips.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    })
}

impl Sim {
    /// Builds the network of `scenario`.
    pub fn new(scenario: &Scenario) -> Result<Sim, String> {
        let mut rng = Rng::new(scenario.seed);
        let m = &scenario.manifests;
        let mut fabric = Fabric::new(scenario.lan, scenario.pod_network, scenario.lan_latency);
        let mut nodes = Vec::new();
        let mut node_ids = BTreeMap::new();
        for node in &m.nodes {
            let ip = first_v4(&node.addresses)
                .ok_or_else(|| format!("node {} has no IPv4 address", node.name))?;
            let mut state = m.cluster_state(&node.name).map_err(|d| d.to_string())?;
            state.proxy.seed = rng.next_u64();
            let id = fabric.add_node(&node.name, ip);
            node_ids.insert(node.name.clone(), id);
            nodes.push(KubeNode {
                id,
                name: node.name.clone(),
                ip,
                engine: Engine::new(&state),
                unrouted: 0,
                scheduled: None,
            });
        }
        let mut hosts = Vec::new();
        for machine in &scenario.machines {
            let app: Box<dyn App> = match &machine.app {
                LanApp::Browser { dns, browse } => {
                    Box::new(Pc::new(browse.clone(), ResolverConfig::plain(*dns)))
                }
                LanApp::Balancer { port, backends } => {
                    Box::new(Balancer::new(*port, backends.clone()))
                }
                LanApp::Dns { records } => Box::new(DnsServer::new(Zone::records(
                    records.iter().map(|(n, ip)| (n.as_str(), *ip)),
                ))),
            };
            let id = fabric.add_lan_host(&machine.name, machine.ip);
            debug_assert_eq!(id, hosts.len());
            hosts.push(Host::new(
                &machine.name,
                machine.ip,
                scenario.lan.prefix_len(),
                None,
                app,
                rng.fork(),
            ));
        }
        let dns_ip = m
            .services
            .iter()
            .find(|s| s.name == scenario.cluster_dns)
            .and_then(|s| first_v4(&s.cluster_ips))
            .ok_or_else(|| format!("no cluster DNS Service {}", scenario.cluster_dns))?;
        for pod in &scenario.pods {
            let &node = node_ids
                .get(&pod.node)
                .ok_or_else(|| format!("pod {} is on unknown node {}", pod.name, pod.node))?;
            if !scenario.pod_network.contains(&pod.ip) {
                return Err(format!(
                    "pod {} address {} is outside the pod network",
                    pod.name, pod.ip
                ));
            }
            let resolver = ResolverConfig::pod(&pod.namespace, dns_ip, &scenario.cluster_domain);
            let app: Box<dyn App> = match &pod.app {
                PodApp::ClusterDns => Box::new(DnsServer::new(Zone::cluster(
                    &m.services,
                    &scenario.cluster_domain,
                ))),
                PodApp::IngressController { class } => Box::new(IngressController::new(
                    RoutingTable::new(&m.ingresses, &m.services, class.as_deref()),
                )),
                PodApp::WordPress { db } => Box::new(WordPress::new(db.clone(), resolver)),
                PodApp::MariaDb { port, blogname } => Box::new(MariaDb::new(*port, blogname)),
            };
            let id = fabric.add_pod(&pod.name, pod.ip, node, scenario.veth_latency);
            debug_assert_eq!(id, hosts.len());
            hosts.push(Host::new(
                &pod.name,
                pod.ip,
                32,
                Some(POD_GATEWAY),
                app,
                rng.fork(),
            ));
        }
        let mut sim = Sim {
            now: Instant::ZERO,
            queue: EventQueue::default(),
            fabric,
            hosts,
            nodes,
            journal: Journal::default(),
            events: 0,
            unrouted: 0,
        };
        for h in 0..sim.hosts.len() {
            sim.schedule_host(h, Instant::ZERO);
        }
        Ok(sim)
    }

    fn schedule_host(&mut self, h: HostId, at: Instant) {
        let host = &mut self.hosts[h];
        if host.scheduled.is_none_or(|s| at < s || s < self.now) {
            host.scheduled = Some(at);
            self.queue.push(at, Event::Wake(h));
        }
    }

    fn schedule_engine(&mut self, n: NodeId) {
        let node = &mut self.nodes[n];
        if let Some(at) = node.engine.poll_at()
            && node.scheduled.is_none_or(|s| at < s || s < self.now)
        {
            node.scheduled = Some(at);
            self.queue.push(at, Event::EngineTimer(n));
        }
    }

    fn send(&mut self, to: Port, link: LinkId, packet: Vec<u8>) {
        let latency = self.fabric.carry(link, packet.len());
        self.queue
            .push(self.now + latency, Event::Arrive { to, packet });
    }

    fn service_host(&mut self, h: HostId) {
        let (out, wake) = self.hosts[h].service(self.now, &mut self.journal);
        for packet in out {
            let Some(dst) = (packet.len() >= 20)
                .then(|| Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
            else {
                continue;
            };
            match self.fabric.from_host(h, dst) {
                Some((to, link)) => self.send(to, link, packet),
                None => self.unrouted += 1,
            }
        }
        if let Some(at) = wake {
            self.schedule_host(h, at);
        }
    }

    /// Handles the next event; false when none is left.
    pub fn step(&mut self) -> bool {
        let Some((at, event)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        self.events += 1;
        match event {
            Event::Arrive { to, packet } => match to {
                Port::Host(h) => {
                    self.hosts[h].device.push_rx(packet);
                    self.service_host(h);
                }
                Port::Node(n) => {
                    let out =
                        self.nodes[n].forward(packet, self.now, &self.fabric, &mut self.journal);
                    if let Some(out) = out {
                        self.send(out.to, out.link, out.packet);
                    }
                    self.schedule_engine(n);
                }
            },
            Event::Wake(h) => {
                if self.hosts[h].scheduled == Some(at) {
                    self.hosts[h].scheduled = None;
                    self.service_host(h);
                }
            }
            Event::EngineTimer(n) => {
                if self.nodes[n].scheduled == Some(at) {
                    self.nodes[n].scheduled = None;
                    self.nodes[n].engine.handle_timeout(self.now);
                    self.schedule_engine(n);
                }
            }
        }
        true
    }

    /// Runs until `done` holds (then `grace` longer, for connections to close), the queue
    /// empties or `limit` passes.
    pub fn run_until(
        &mut self,
        limit: Instant,
        grace: std::time::Duration,
        done: impl Fn(&Sim) -> bool,
    ) {
        let mut stop = limit;
        while self.queue.next_at().is_some_and(|t| t <= stop) {
            self.step();
            if stop == limit && done(self) {
                stop = limit.min(self.now + grace);
            }
        }
    }

    /// The report of what happened so far.
    pub fn report(self, scenario: &Scenario) -> Report {
        let links = self
            .fabric
            .links
            .iter()
            .map(|l| LinkStats {
                name: l.name.clone(),
                packets: l.packets,
                bytes: l.bytes,
            })
            .collect();
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                let c = n.engine.counters();
                NodeStats {
                    node: n.name.clone(),
                    accepted: c.accepted,
                    translated: c.translated,
                    dropped: c.dropped,
                    rejected: c.rejected,
                    connections: n.engine.connections(),
                    unrouted: n.unrouted,
                }
            })
            .collect();
        let unattributed = self.journal.unattributed;
        let journeys = self.journal.into_journeys();
        let mut served_by = BTreeMap::new();
        let mut sequence = Vec::new();
        for j in &journeys {
            if let Some(pod) = &j.outcome.served_by {
                *served_by.entry(pod.clone()).or_insert(0) += 1;
                sequence.push(pod.clone());
            }
        }
        let succeeded = journeys.iter().filter(|j| j.outcome.ok()).count();
        Report {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            summary: Summary {
                requests: journeys.len(),
                succeeded,
                failed: journeys.len() - succeeded,
                served_by,
                sequence,
                simulated_ns: self.now.as_nanos(),
                events: self.events,
                unattributed_hops: unattributed,
                links,
                nodes,
            },
            journeys,
        }
    }
}
