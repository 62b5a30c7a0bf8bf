//! The event loop: packets in flight, host wake-ups and engine timers, in time order.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use kubenat_core::tables::ClusterTables;
use kubenat_core::{ClusterState, EndpointSlice, Engine, Update};

use crate::capture::{Capture, CaptureFile};
use crate::clock::{Instant, Rng};
use crate::control::{Controller, Death, ScaleOrder};
use crate::fabric::{Fabric, HostId, LinkId, NodeId, Port};
use crate::host::Host;
use crate::journey::Journal;
use crate::node::KubeNode;
use crate::queue::EventQueue;
use crate::report::{
    LinkStats, NodeStats, Place, Programming, ProgrammingLatency, Report, Summary,
};
use crate::scenario::{Action, ControlPlane, Pod, Scenario};
use crate::spawn::{PodFactory, lan_app};

/// Pods' default gateway (a link-local address, as Calico uses): with `Medium::Ip` it only
/// says "everything goes out of the veth".
const POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

enum Event {
    Arrive {
        to: Port,
        packet: Vec<u8>,
    },
    Wake(HostId),
    EngineTimer(NodeId),
    /// The scenario's timed event of this index.
    Scenario(usize),
    /// A dead pod's endpoint leaves the slices (index in [`Controller::pending`]).
    EndpointsGone(usize),
    /// A dead pod's replacement starts and is ready (index in [`Controller::pending`]).
    Ready(usize),
    /// A rollout (index in [`Controller::rollouts`]) replaces its next pod.
    RolloutStep(usize),
    /// A rollout's old pod (index in [`Controller::placements`]) stops.
    Stop {
        rollout: usize,
        placement: usize,
    },
    /// A scale-down's surplus pod (index in [`Controller::placements`]) stops.
    Retire {
        scaling: usize,
        placement: usize,
    },
    /// A node's kube-proxy applies EndpointSlice change `change` (index in
    /// [`Sim::programming`]): its engine adopts the snapshot made by that change.
    Program {
        node: NodeId,
        change: usize,
    },
}

/// A change of [`Sim::programming`] some nodes have yet to apply.
struct Unapplied {
    /// How many nodes.
    nodes: usize,
    /// The snapshot the change made, held until the last of them adopts it.
    snapshot: Option<Arc<ClusterTables>>,
    /// Events due an endpoint delay after the last of them adopts it (pods that left the
    /// slices stop then).
    after: Vec<Event>,
}

/// How far building a simulation got ([`Sim::build`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Building {
    /// `nodes` (each node's engine, the first compiling the cluster), then `pods`.
    pub step: &'static str,
    pub done: usize,
    pub total: usize,
}

/// Reports one step's progress every [`Teller::EVERY`] items and at its end.
struct Teller<'a> {
    progress: &'a mut dyn FnMut(Building),
    at: Building,
}

impl<'a> Teller<'a> {
    const EVERY: usize = 256;

    fn new(progress: &'a mut dyn FnMut(Building), step: &'static str, total: usize) -> Self {
        let at = Building {
            step,
            done: 0,
            total,
        };
        progress(at);
        Teller { progress, at }
    }

    fn one(&mut self) {
        self.at.done += 1;
        if self.at.done % Self::EVERY == 0 {
            (self.progress)(self.at);
        }
    }
}

impl Drop for Teller<'_> {
    fn drop(&mut self) {
        if self.at.done % Self::EVERY != 0 {
            (self.progress)(self.at);
        }
    }
}

/// A running simulation.
pub struct Sim {
    pub now: Instant,
    queue: EventQueue<Event>,
    pub fabric: Fabric,
    pub hosts: Vec<Host>,
    pub nodes: Vec<KubeNode>,
    pub journal: Journal,
    /// The cluster's one control plane: every node's engine reads its snapshots.
    pub plane: kubenat_core::ControlPlane,
    pub events: u64,
    /// Packets a LAN machine sent to an address nobody owns, and packets that reached a
    /// stopped host.
    pub unrouted: u64,
    /// Captures of every link, when enabled ([`Sim::capture_to`]).
    pub capture: Option<Capture>,
    pub control: Controller,
    /// Everything with an address, in order of appearance; `host_place[h]` is host `h`'s.
    pub places: Vec<Place>,
    host_place: Vec<usize>,
    /// Every EndpointSlice change and when the last node applied it.
    pub programming: Vec<Programming>,
    /// Nodes yet to apply each change of [`Sim::programming`], and its snapshot.
    unapplied: Vec<Unapplied>,
    /// When each node's kube-proxy last synced: changes apply in order.
    synced: Vec<Instant>,
    /// Draws each node's sync delay (made on first use, so runs without one are unchanged).
    sync_rng: Option<Rng>,
    factory: PodFactory,
    actions: Vec<Action>,
    delays: ControlPlane,
}

fn first_v4(ips: &[IpAddr]) -> Option<Ipv4Addr> {
    ips.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    })
}

/// The scenario's timed events name pods and nodes that exist.
fn check_events(scenario: &Scenario) -> Result<(), String> {
    for e in &scenario.events {
        let known = match &e.action {
            Action::KillPod { pod } => scenario.pods.iter().any(|p| p.name == *pod),
            Action::DrainNode { node } => scenario.manifests.nodes.iter().any(|n| n.name == *node),
            Action::Rollout { deployment } | Action::Scale { deployment, .. } => scenario
                .pods
                .iter()
                .any(|p| Action::in_deployment(deployment, &p.namespace, &p.name)),
        };
        if !known {
            return Err(format!("event {}: not in the scenario", e.action));
        }
    }
    Ok(())
}

impl Sim {
    /// Builds the network of `scenario`.
    pub fn new(scenario: &Scenario) -> Result<Sim, String> {
        Sim::build(scenario, &mut |_| {})
    }

    /// [`Sim::new`], telling `progress` how far it got (every few hundred nodes or pods,
    /// and at the end of each step): building 150,000 pods takes seconds.
    pub fn build(scenario: &Scenario, progress: &mut dyn FnMut(Building)) -> Result<Sim, String> {
        check_events(scenario)?;
        let factory = PodFactory::new(scenario)?;
        let mut rng = Rng::new(scenario.seed);
        let m = &scenario.manifests;
        let mut fabric = Fabric::new(scenario.lan, scenario.pod_network, scenario.lan_latency);
        let mut nodes = Vec::new();
        let mut places = Vec::new();
        let mut node_ids = BTreeMap::new();
        let mut plane = None;
        let mut tell = Teller::new(progress, "nodes", m.nodes.len());
        for node in &m.nodes {
            tell.one();
            let ip = first_v4(&node.addresses)
                .ok_or_else(|| format!("node {} has no IPv4 address", node.name))?;
            let mut proxy = m.proxy_config(&node.name).map_err(|d| d.to_string())?;
            proxy.seed = rng.next_u64();
            // The cluster compiles once, with the first node's settings: nothing in the
            // snapshot depends on the node (a Maglev table's seed is the cluster's).
            let plane = plane.get_or_insert_with(|| {
                let state = m.cluster_state(&node.name).map(|state| ClusterState {
                    proxy: proxy.clone(),
                    ..state
                });
                state.map(kubenat_core::ControlPlane::from_state)
            });
            let plane = plane.as_ref().map_err(|d| d.to_string())?;
            let engine = Engine::with_snapshot(plane.snapshot().clone(), &proxy);
            let id = fabric.add_node(&node.name, ip);
            node_ids.insert(node.name.clone(), id);
            places.push(Place {
                name: node.name.clone(),
                kind: "node",
                ip,
                node: None,
                since_ns: 0,
                until_ns: None,
            });
            nodes.push(KubeNode::new(id, &node.name, ip, engine));
        }
        drop(tell);
        let mut hosts = Vec::new();
        let mut host_place = Vec::new();
        for machine in &scenario.machines {
            let id = fabric.add_lan_host(&machine.name, machine.ip);
            debug_assert_eq!(id, hosts.len());
            host_place.push(places.len());
            places.push(Place {
                name: machine.name.clone(),
                kind: "machine",
                ip: machine.ip,
                node: None,
                since_ns: 0,
                until_ns: None,
            });
            hosts.push(Host::new(
                &machine.name,
                machine.ip,
                scenario.lan.prefix_len(),
                None,
                lan_app(&machine.app),
                rng.fork(),
            ));
        }
        let mut pod_hosts = Vec::new();
        let mut tell = Teller::new(progress, "pods", scenario.pods.len());
        for pod in &scenario.pods {
            tell.one();
            let &node = node_ids
                .get(&pod.node)
                .ok_or_else(|| format!("pod {} is on unknown node {}", pod.name, pod.node))?;
            if !scenario.pod_network.contains(&pod.ip) {
                return Err(format!(
                    "pod {} address {} is outside the pod network",
                    pod.name, pod.ip
                ));
            }
            let id = fabric.add_pod(&pod.name, pod.ip, node, scenario.veth_latency);
            debug_assert_eq!(id, hosts.len());
            pod_hosts.push(id);
            host_place.push(places.len());
            places.push(pod_place(pod, Instant::ZERO));
            hosts.push(Host::new(
                &pod.name,
                pod.ip,
                32,
                Some(POD_GATEWAY),
                factory.app(&pod.app, &pod.namespace),
                rng.fork(),
            ));
        }
        let node_names = m.nodes.iter().map(|n| n.name.clone()).collect();
        drop(tell);
        let control = Controller::new(scenario, node_names, &pod_hosts, rng.fork());
        let plane = match plane {
            Some(plane) => plane.map_err(|d| d.to_string())?,
            None => kubenat_core::ControlPlane::from_state(ClusterState::default()),
        };
        let mut sim = Sim {
            now: Instant::ZERO,
            queue: EventQueue::default(),
            fabric,
            hosts,
            nodes,
            journal: Journal::default(),
            plane,
            events: 0,
            unrouted: 0,
            capture: None,
            control,
            places,
            host_place,
            programming: Vec::new(),
            unapplied: Vec::new(),
            synced: vec![Instant::ZERO; m.nodes.len()],
            sync_rng: None,
            factory,
            actions: scenario.events.iter().map(|e| e.action.clone()).collect(),
            delays: scenario.control_plane.clone(),
        };
        for h in 0..sim.hosts.len() {
            sim.schedule_host(h, Instant::ZERO);
        }
        for (i, e) in scenario.events.iter().enumerate() {
            sim.queue.push(Instant::ZERO + e.at, Event::Scenario(i));
        }
        Ok(sim)
    }

    /// Streams every packet on every link from now on into one pcap per link in `dir`
    /// (see [`crate::capture`]).
    pub fn capture_to(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        self.capture = Some(Capture::new(dir)?);
        Ok(())
    }

    /// Ends the capture: every link's file complete, in link order (none if not capturing).
    pub fn finish_captures(&mut self) -> std::io::Result<Vec<CaptureFile>> {
        match self.capture.take() {
            Some(c) => c.finish(&self.fabric),
            None => Ok(Vec::new()),
        }
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
        if let Some(capture) = &mut self.capture {
            capture.record(link, &self.fabric.links[link].file, self.now, &packet);
        }
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
        self.handle(at, event);
        true
    }

    /// Handles `event`, due `at`.
    fn handle(&mut self, at: Instant, event: Event) {
        match event {
            Event::Arrive { to, packet } => match to {
                Port::Host(h) if !self.hosts[h].alive => self.unrouted += 1,
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
                if self.hosts[h].scheduled == Some(at) && self.hosts[h].alive {
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
            Event::Scenario(i) => self.act(i),
            Event::EndpointsGone(p) => {
                let changed = self.control.remove_endpoint(self.now, p);
                self.publish(changed);
            }
            Event::Ready(p) => {
                self.start_replacement(p);
                if let Some((rollout, placement)) = self.control.pending[p].rollout {
                    let stop = Event::Stop { rollout, placement };
                    self.queue.push(self.now + self.delays.endpoint_delay, stop);
                    self.rollout_step(rollout);
                }
            }
            Event::RolloutStep(r) => self.rollout_step(r),
            Event::Stop { rollout, placement } => {
                self.stop_pod(placement);
                self.control.stopped(self.now, rollout, placement);
            }
            Event::Retire { scaling, placement } => {
                self.stop_pod(placement);
                self.control.scaled(self.now, scaling);
            }
            Event::Program { node, change } => {
                let unapplied = &mut self.unapplied[change];
                unapplied.nodes -= 1;
                let snapshot = if unapplied.nodes == 0 {
                    self.programming[change].applied_ns = Some(self.now.as_nanos());
                    let after = std::mem::take(&mut unapplied.after);
                    let at = self.now + self.delays.endpoint_delay;
                    for event in after {
                        self.queue.push(at, event);
                    }
                    unapplied.snapshot.take()
                } else {
                    unapplied.snapshot.clone()
                };
                let snapshot = snapshot.expect("held until the last node adopts it");
                self.nodes[node].engine.adopt(snapshot);
                self.schedule_engine(node);
            }
        }
    }

    /// The rollout's next pod gets its replacement, ready after the restart delay.
    fn rollout_step(&mut self, rollout: usize) {
        if let Some(pending) = self.control.rollout_step(self.now, rollout) {
            let ready = self.now + self.delays.restart_delay;
            self.queue.push(ready, Event::Ready(pending));
        }
    }

    /// A scale's new pods are ready after the restart delay; its surplus pods leave the
    /// slices now and stop an endpoint delay after the last node applied that.
    fn scale(&mut self, order: ScaleOrder) {
        let ready = self.now + self.delays.restart_delay;
        for pending in order.starts {
            self.queue.push(ready, Event::Ready(pending));
        }
        let scaling = order.scaling;
        let stops = order
            .stops
            .into_iter()
            .map(|placement| Event::Retire { scaling, placement });
        match self.publish(order.changed) {
            Some(change) if self.programming[change].applied_ns.is_none() => {
                self.unapplied[change].after.extend(stops);
            }
            _ => {
                let at = self.now + self.delays.endpoint_delay;
                for stop in stops {
                    self.queue.push(at, stop);
                }
            }
        }
    }

    /// A pod's host stops: its packets go nowhere from now on.
    fn stop_pod(&mut self, placement: usize) {
        let p = &self.control.placements[placement];
        let (host, ip) = (p.host, p.pod.ip);
        self.hosts[host].alive = false;
        self.hosts[host].device.take_tx();
        self.fabric.remove_pod(ip);
        self.places[self.host_place[host]].until_ns = Some(self.now.as_nanos());
    }

    /// The scenario's event `i` happens: pods stop, their replacements are planned.
    fn act(&mut self, i: usize) {
        let action = self.actions[i].clone();
        let deaths = match &action {
            Action::Rollout { .. } => self
                .control
                .start_rollout(self.now, &action)
                .map(|r| self.queue.push(self.now, Event::RolloutStep(r)))
                .map(|()| Vec::new()),
            Action::Scale { .. } => self
                .control
                .start_scale(self.now, &action)
                .map(|order| self.scale(order))
                .map(|()| Vec::new()),
            _ => self.control.act(self.now, &action),
        };
        let deaths = match deaths {
            Ok(deaths) => deaths,
            Err(e) => {
                self.control
                    .disruptions
                    .push(crate::disruption::Disruption {
                        at_ns: self.now.as_nanos(),
                        event: format!("{action} (not done: {e})"),
                        moves: Vec::new(),
                        recovered_ns: Some(self.now.as_nanos()),
                        lost: Vec::new(),
                        failed_after: Vec::new(),
                    });
                return;
            }
        };
        for Death { placement, pending } in deaths {
            self.stop_pod(placement);
            let (gone, ready) = (self.delays.endpoint_delay, self.delays.restart_delay);
            self.queue
                .push(self.now + gone, Event::EndpointsGone(pending));
            if self.control.pending[pending].replacement.is_some() {
                self.queue.push(self.now + ready, Event::Ready(pending));
            }
        }
    }

    /// A replacement pod starts on its node and joins its Services' slices.
    fn start_replacement(&mut self, pending: usize) {
        let Some(pod) = self.control.pending[pending].replacement.clone() else {
            return;
        };
        let Some(node) = (0..self.nodes.len()).find(|&n| self.nodes[n].name == pod.node) else {
            return;
        };
        let id = self
            .fabric
            .add_pod(&pod.name, pod.ip, node, self.factory.veth_latency);
        debug_assert_eq!(id, self.hosts.len());
        let rng = self.control.fork_rng();
        self.hosts.push(Host::new(
            &pod.name,
            pod.ip,
            32,
            Some(POD_GATEWAY),
            self.factory.app(&pod.app, &pod.namespace),
            rng,
        ));
        self.host_place.push(self.places.len());
        self.places.push(pod_place(&pod, self.now));
        self.schedule_host(id, self.now);
        let changed = self.control.add_endpoint(self.now, pending, id);
        self.publish(changed);
    }

    /// The control plane compiles the changed slices into the next snapshot, and every
    /// node's kube-proxy applies it: at once, or each after its own random sync delay (in
    /// the order the changes were made). Gives the change's index in [`Sim::programming`],
    /// `None` when no slice changed.
    fn publish(&mut self, slices: Vec<EndpointSlice>) -> Option<usize> {
        if slices.is_empty() {
            return None;
        }
        let change = self.programming.len();
        self.programming.push(Programming {
            at_ns: self.now.as_nanos(),
            slices: slices
                .iter()
                .map(|s| format!("{}/{}", s.service.namespace, s.name))
                .collect(),
            applied_ns: None,
        });
        for slice in slices {
            self.plane
                .apply(Update::UpsertEndpointSlice(Box::new(slice)));
        }
        self.unapplied.push(Unapplied {
            nodes: self.nodes.len(),
            snapshot: Some(self.plane.snapshot().clone()),
            after: Vec::new(),
        });
        let sync = self.delays.sync_delay;
        for n in 0..self.nodes.len() {
            let delay = match sync.as_nanos() {
                0 => 0,
                max => {
                    let control = &mut self.control;
                    let rng = self.sync_rng.get_or_insert_with(|| control.fork_rng());
                    rng.below(max as u64 + 1)
                }
            };
            let at = (self.now + std::time::Duration::from_nanos(delay)).max(self.synced[n]);
            self.synced[n] = at;
            let program = Event::Program { node: n, change };
            if at == self.now {
                self.handle(at, program);
            } else {
                self.queue.push(at, program);
            }
        }
        Some(change)
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

    /// The report of the run: call it once, at the end (it takes the journeys).
    pub fn report(&mut self, scenario: &Scenario) -> Report {
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
        let journeys = std::mem::take(&mut self.journal).into_journeys();
        let mut disruptions = std::mem::take(&mut self.control.disruptions);
        for d in &mut disruptions {
            d.account(&journeys);
        }
        let mut served_by = BTreeMap::new();
        let mut sequence = Vec::new();
        for j in &journeys {
            if let Some(pod) = &j.outcome.served_by {
                *served_by.entry(pod.clone()).or_insert(0) += 1;
                sequence.push(pod.clone());
            }
        }
        let succeeded = journeys.iter().filter(|j| j.outcome.ok()).count();
        let lost = (!disruptions.is_empty()).then(|| {
            let ids: std::collections::BTreeSet<_> =
                disruptions.iter().flat_map(|d| &d.lost).collect();
            ids.len()
        });
        let programming = std::mem::take(&mut self.programming);
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
                lost,
                programming: ProgrammingLatency::of(&programming),
            },
            programming,
            journeys,
            disruptions,
            places: std::mem::take(&mut self.places),
        }
    }
}

fn pod_place(pod: &Pod, since: Instant) -> Place {
    Place {
        name: pod.name.clone(),
        kind: "pod",
        ip: pod.ip,
        node: Some(pod.node.clone()),
        since_ns: since.as_nanos(),
        until_ns: None,
    }
}
