//! The simulated control plane: where pods run, the EndpointSlices, and what happens when a
//! pod dies. It decides; [`crate::sim::Sim`] carries the decisions out (stops the pod,
//! starts its replacement, hands the changed slices to every node's engine) at the times
//! the scenario's [`ControlPlane`] delays give.
//!
//! A dead pod's replacement goes to the schedulable node (not tainted `NoSchedule`, not
//! cordoned, not the one it died on) with the fewest running pods, the first in the
//! manifests' order on a tie, and gets the next unused address of the pod network: pod
//! addresses are never reused within a run, so a stale address is always dead.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use kubenat_core::{Endpoint, EndpointConditions, EndpointSlice};

use crate::clock::{Instant, Rng};
use crate::disruption::{Disruption, Move};
use crate::fabric::HostId;
use crate::scenario::{Action, ControlPlane, Pod, Scenario};

/// A pod as placed: its spec (name, address, node) and the host running it.
#[derive(Clone, Debug)]
pub struct Placement {
    pub pod: Pod,
    pub host: HostId,
    pub alive: bool,
}

/// A dead pod's replacement, decided when it died and started later.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Index in [`Controller::disruptions`] and in its [`Disruption::moves`].
    pub disruption: usize,
    pub index: usize,
    /// The dead pod's address.
    pub old_ip: Ipv4Addr,
    /// The slices (indexes in [`Controller::slices`]) the dead pod was an endpoint of.
    pub slices: Vec<usize>,
    /// The replacement's spec; `None` when no node can take it.
    pub replacement: Option<Pod>,
}

/// What the control plane knows.
pub struct Controller {
    pub slices: Vec<EndpointSlice>,
    pub placements: Vec<Placement>,
    pub pending: Vec<Pending>,
    pub disruptions: Vec<Disruption>,
    config: ControlPlane,
    nodes: Vec<String>,
    cordoned: BTreeSet<String>,
    pod_network: Ipv4Net,
    next_ip: u32,
    rng: Rng,
}

/// A pod to stop now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Death {
    /// Index in [`Controller::placements`].
    pub placement: usize,
    /// Index in [`Controller::pending`].
    pub pending: usize,
}

/// Kubernetes' alphabet for generated name suffixes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Controller {
    /// The control plane of `scenario` with its pods placed on these hosts.
    pub fn new(scenario: &Scenario, nodes: Vec<String>, hosts: &[HostId], rng: Rng) -> Self {
        let placements: Vec<Placement> = scenario
            .pods
            .iter()
            .zip(hosts)
            .map(|(pod, &host)| Placement {
                pod: pod.clone(),
                host,
                alive: true,
            })
            .collect();
        let highest = placements
            .iter()
            .map(|p| u32::from(p.pod.ip))
            .max()
            .unwrap_or_else(|| u32::from(scenario.pod_network.network()));
        Controller {
            slices: scenario.manifests.endpoint_slices.clone(),
            placements,
            pending: Vec::new(),
            disruptions: Vec::new(),
            config: scenario.control_plane.clone(),
            nodes,
            cordoned: BTreeSet::new(),
            pod_network: scenario.pod_network,
            next_ip: highest.saturating_add(1),
            rng,
        }
    }

    /// Applies `action` at `now`: records the disruption and returns the pods to stop.
    pub fn act(&mut self, now: Instant, action: &Action) -> Result<Vec<Death>, String> {
        let victims: Vec<usize> = match action {
            Action::KillPod { pod } => {
                let i = self
                    .placements
                    .iter()
                    .rposition(|p| p.alive && p.pod.name == *pod)
                    .ok_or_else(|| format!("{action}: no such running pod"))?;
                vec![i]
            }
            Action::DrainNode { node } => {
                if !self.nodes.contains(node) {
                    return Err(format!("{action}: no such node"));
                }
                self.cordoned.insert(node.clone());
                (0..self.placements.len())
                    .filter(|&i| self.placements[i].alive && self.placements[i].pod.node == *node)
                    .collect()
            }
        };
        let disruption = self.disruptions.len();
        self.disruptions.push(Disruption {
            at_ns: now.as_nanos(),
            event: action.to_string(),
            moves: Vec::new(),
            recovered_ns: None,
            lost: Vec::new(),
            failed_after: Vec::new(),
        });
        if victims.is_empty() {
            self.disruptions[disruption].recovered_ns = Some(now.as_nanos());
        }
        let mut deaths = Vec::new();
        for placement in victims {
            self.placements[placement].alive = false;
            let old = self.placements[placement].pod.clone();
            let slices = self.slices_of(old.ip);
            let replacement = self.schedule(&old);
            let index = self.disruptions[disruption].moves.len();
            self.disruptions[disruption].moves.push(Move {
                pod: old.name.clone(),
                from_node: old.node.clone(),
                from_ip: old.ip,
                to_pod: replacement.as_ref().map(|p| p.name.clone()),
                to_node: replacement.as_ref().map(|p| p.node.clone()),
                to_ip: replacement.as_ref().map(|p| p.ip),
                slices: slices
                    .iter()
                    .map(|&s| {
                        let s = &self.slices[s];
                        format!("{}/{}", s.service.namespace, s.name)
                    })
                    .collect(),
                endpoints_removed_ns: None,
                ready_ns: None,
            });
            deaths.push(Death {
                placement,
                pending: self.pending.len(),
            });
            self.pending.push(Pending {
                disruption,
                index,
                old_ip: old.ip,
                slices,
                replacement,
            });
        }
        Ok(deaths)
    }

    /// The slices listing `ip`.
    fn slices_of(&self, ip: Ipv4Addr) -> Vec<usize> {
        (0..self.slices.len())
            .filter(|&i| {
                self.slices[i]
                    .endpoints
                    .iter()
                    .any(|e| e.addresses.contains(&IpAddr::V4(ip)))
            })
            .collect()
    }

    /// Where and as what a dead pod comes back: `None` when no node can take it or the pod
    /// network has no address left (the pod stays pending, as in Kubernetes).
    fn schedule(&mut self, old: &Pod) -> Option<Pod> {
        let running = |node: &str| {
            self.placements
                .iter()
                .filter(|p| p.alive && p.pod.node == node)
                .count()
        };
        let node = self
            .nodes
            .iter()
            .filter(|n| {
                **n != old.node
                    && !self.config.no_schedule.contains(n)
                    && !self.cordoned.contains(*n)
            })
            .min_by_key(|n| running(n))?
            .clone();
        let ip = Ipv4Addr::from(self.next_ip);
        if !self.pod_network.contains(&ip) || ip == self.pod_network.broadcast() {
            return None;
        }
        self.next_ip += 1;
        Some(Pod {
            name: self.replacement_name(&old.name),
            namespace: old.namespace.clone(),
            ip,
            node,
            app: old.app.clone(),
        })
    }

    /// A StatefulSet pod (`mariadb-0`) keeps its name; a ReplicaSet's gets a new random
    /// suffix (`wordpress-5d8f7c9b6-abcde` -> `wordpress-5d8f7c9b6-x7k2p`).
    fn replacement_name(&mut self, name: &str) -> String {
        match name.rsplit_once('-') {
            Some((_, ordinal)) if ordinal.bytes().all(|b| b.is_ascii_digit()) => name.into(),
            Some((stem, _)) => {
                let suffix: String = (0..5)
                    .map(|_| ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize] as char)
                    .collect();
                format!("{stem}-{suffix}")
            }
            None => format!("{name}-1"),
        }
    }

    /// A generator for a new pod's stack.
    pub fn fork_rng(&mut self) -> Rng {
        self.rng.fork()
    }

    /// The dead pod of `pending` leaves its slices; returns the slices changed.
    pub fn remove_endpoint(&mut self, now: Instant, pending: usize) -> Vec<EndpointSlice> {
        let p = &self.pending[pending];
        let (old, slices) = (IpAddr::V4(p.old_ip), p.slices.clone());
        self.disruptions[p.disruption].moves[p.index]
            .endpoints_removed_ns
            .get_or_insert(now.as_nanos());
        let mut changed = Vec::new();
        for s in slices {
            let slice = &mut self.slices[s];
            let before = slice.endpoints.len();
            slice.endpoints.retain(|e| !e.addresses.contains(&old));
            if slice.endpoints.len() != before {
                changed.push(slice.clone());
            }
        }
        changed
    }

    /// The replacement of `pending` is running and ready: it joins the dead pod's slices
    /// (taking the dead one's place if it is still listed). Returns the slices changed.
    pub fn add_endpoint(
        &mut self,
        now: Instant,
        pending: usize,
        host: HostId,
    ) -> Vec<EndpointSlice> {
        let p = &self.pending[pending];
        let Some(pod) = p.replacement.clone() else {
            return Vec::new();
        };
        let (old, slices, disruption) = (IpAddr::V4(p.old_ip), p.slices.clone(), p.disruption);
        let m = &mut self.disruptions[disruption].moves[p.index];
        m.ready_ns = Some(now.as_nanos());
        m.endpoints_removed_ns.get_or_insert(now.as_nanos());
        self.placements.push(Placement {
            pod: pod.clone(),
            host,
            alive: true,
        });
        let endpoint = Endpoint {
            addresses: vec![IpAddr::V4(pod.ip)],
            conditions: EndpointConditions {
                ready: true,
                serving: true,
                terminating: false,
            },
            node_name: Some(pod.node.clone()),
        };
        let mut changed = Vec::new();
        for s in slices {
            let slice = &mut self.slices[s];
            slice.endpoints.retain(|e| !e.addresses.contains(&old));
            slice.endpoints.push(endpoint.clone());
            changed.push(slice.clone());
        }
        let d = &mut self.disruptions[disruption];
        if d.moves.iter().all(|m| m.ready_ns.is_some()) {
            d.recovered_ns = Some(now.as_nanos());
        }
        changed
    }
}
