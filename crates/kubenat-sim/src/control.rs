//! The simulated control plane: where pods run, the EndpointSlices, and what happens when a
//! pod dies. It decides; [`crate::sim::Sim`] carries the decisions out (stops the pod,
//! starts its replacement, hands the changed slices to every node's engine) at the times
//! the scenario's [`ControlPlane`] delays give.
//!
//! A dead pod's replacement goes to the schedulable node (not tainted `NoSchedule`, not
//! cordoned, not the one it died on) with the fewest running pods, the first in the
//! manifests' order on a tie, and gets the next unused address of the pod network: pod
//! addresses are never reused within a run, so a stale address is always dead.
//! Scaling a Deployment is [`Controller::start_scale`].

mod scale;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use kubenat_core::{Endpoint, EndpointConditions, EndpointSlice, ServiceName};

use crate::clock::{Instant, Rng};
use crate::disruption::{Change, Disruption, Move};
use crate::fabric::HostId;
use crate::scenario::{Action, ControlPlane, Pod, Scenario};

pub use scale::{ScaleOrder, Scaling};

/// A pod as placed: its spec (name, address, node) and the host running it.
#[derive(Clone, Debug)]
pub struct Placement {
    pub pod: Pod,
    pub host: HostId,
    pub alive: bool,
}

/// A dead pod's replacement, decided when it died and started later; or a scale-up's new
/// pod.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Index in [`Controller::disruptions`] and in its [`Disruption::moves`].
    pub disruption: usize,
    pub index: usize,
    /// The dead pod's address (`None` for a scale-up's new pod).
    pub old_ip: Option<Ipv4Addr>,
    /// The slices (indexes in [`Controller::slices`]) the dead pod was an endpoint of, and
    /// the new one joins.
    pub slices: Vec<usize>,
    /// The replacement's spec; `None` when no node can take it.
    pub replacement: Option<Pod>,
    /// For a rollout's step: the rollout (index in [`Controller::rollouts`]) and the old
    /// pod (index in [`Controller::placements`]), which stops once its replacement is ready.
    pub rollout: Option<(usize, usize)>,
    /// For a scale-up's new pod: the scaling (index in [`Controller::scalings`]).
    pub scaling: Option<usize>,
}

/// A Deployment being rolled out, one pod at a time.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Index in [`Controller::disruptions`].
    pub disruption: usize,
    /// The old pods (indexes in [`Controller::placements`]) still to replace.
    pub remaining: VecDeque<usize>,
    /// Old pods being replaced: their replacement planned, and not stopped yet.
    pub stopping: usize,
    /// New pods are named `<prefix><id>` (`wordpress-<new hash>-`).
    pub prefix: String,
}

/// What the control plane knows.
pub struct Controller {
    pub slices: Vec<EndpointSlice>,
    pub placements: Vec<Placement>,
    pub pending: Vec<Pending>,
    pub disruptions: Vec<Disruption>,
    pub rollouts: Vec<Rollout>,
    pub scalings: Vec<Scaling>,
    /// The slices a Deployment's pods join, remembered for scaling it up from zero.
    deployment_slices: BTreeMap<ServiceName, Vec<usize>>,
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
            rollouts: Vec::new(),
            scalings: Vec::new(),
            deployment_slices: BTreeMap::new(),
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
            Action::Rollout { .. } | Action::Scale { .. } => {
                return Err(format!("{action}: not a pod's death"));
            }
        };
        let disruption = self.disrupt(now, action, victims.is_empty());
        let mut deaths = Vec::new();
        for placement in victims {
            self.placements[placement].alive = false;
            let old = self.placements[placement].pod.clone();
            let name = self.replacement_name(&old.name);
            let replacement = self.schedule(&old, name, Some(&old.node), &[]);
            let slices = self.slices_of(old.ip);
            deaths.push(Death {
                placement,
                pending: self.plan(disruption, Some(&old), slices, replacement, None),
            });
        }
        Ok(deaths)
    }

    /// Records `action`'s disruption (over already when `nothing` happens) and gives its index.
    fn disrupt(&mut self, now: Instant, action: &Action, nothing: bool) -> usize {
        self.disruptions.push(Disruption {
            at_ns: now.as_nanos(),
            event: action.to_string(),
            moves: Vec::new(),
            recovered_ns: nothing.then_some(now.as_nanos()),
            lost: Vec::new(),
            failed_after: Vec::new(),
        });
        self.disruptions.len() - 1
    }

    /// Plans `old`'s replacement (or, without `old`, a new pod) in `slices` as a move of
    /// `disruption`; gives its index in [`Controller::pending`].
    fn plan(
        &mut self,
        disruption: usize,
        old: Option<&Pod>,
        slices: Vec<usize>,
        replacement: Option<Pod>,
        rollout: Option<(usize, usize)>,
    ) -> usize {
        let change = match old {
            Some(_) => Change::Replaced,
            None => Change::Started,
        };
        let index = self.record_move(disruption, change, old, replacement.as_ref(), &slices);
        self.pending.push(Pending {
            disruption,
            index,
            old_ip: old.map(|p| p.ip),
            slices,
            replacement,
            rollout,
            scaling: None,
        });
        self.pending.len() - 1
    }

    /// Adds a move from `old` to `new` in `slices` to `disruption`; gives its index.
    fn record_move(
        &mut self,
        disruption: usize,
        change: Change,
        old: Option<&Pod>,
        new: Option<&Pod>,
        slices: &[usize],
    ) -> usize {
        let moves = &mut self.disruptions[disruption].moves;
        moves.push(Move {
            change,
            pod: old.map(|p| p.name.clone()),
            from_node: old.map(|p| p.node.clone()),
            from_ip: old.map(|p| p.ip),
            to_pod: new.map(|p| p.name.clone()),
            to_node: new.map(|p| p.node.clone()),
            to_ip: new.map(|p| p.ip),
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
        moves.len() - 1
    }

    /// Starts rolling out `action`'s Deployment: gives the rollout's index, for
    /// [`Controller::rollout_step`].
    pub fn start_rollout(&mut self, now: Instant, action: &Action) -> Result<usize, String> {
        let Action::Rollout { deployment } = action else {
            return Err(format!("{action}: not a rollout"));
        };
        let remaining: VecDeque<usize> = (0..self.placements.len())
            .filter(|&i| {
                let p = &self.placements[i];
                p.alive && Action::in_deployment(deployment, &p.pod.namespace, &p.pod.name)
            })
            .collect();
        if remaining.is_empty() {
            return Err(format!("{action}: the Deployment has no running pod"));
        }
        let disruption = self.disrupt(now, action, false);
        let hash: String = (0..10)
            .map(|_| ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect();
        self.rollouts.push(Rollout {
            disruption,
            remaining,
            stopping: 0,
            prefix: format!("{}-{hash}-", deployment.name),
        });
        Ok(self.rollouts.len() - 1)
    }

    /// The rollout's next pod: its replacement planned (index in [`Controller::pending`]),
    /// `None` when every pod has been replaced.
    pub fn rollout_step(&mut self, now: Instant, rollout: usize) -> Option<usize> {
        while let Some(placement) = self.rollouts[rollout].remaining.pop_front() {
            if !self.placements[placement].alive {
                continue;
            }
            let old = self.placements[placement].pod.clone();
            let suffix = self.suffix();
            let name = format!("{}{suffix}", self.rollouts[rollout].prefix);
            let replacement = self.schedule(&old, name, None, &[]);
            let disruption = self.rollouts[rollout].disruption;
            let slices = self.slices_of(old.ip);
            let step = Some((rollout, placement));
            let pending = self.plan(disruption, Some(&old), slices, replacement, step);
            if self.pending[pending].replacement.is_some() {
                self.rollouts[rollout].stopping += 1;
                return Some(pending);
            }
        }
        self.settle(now, rollout);
        None
    }

    /// Whether every rollout and scaling is over (a run waits for them).
    pub fn settled(&self) -> bool {
        self.rollouts
            .iter()
            .all(|r| r.remaining.is_empty() && r.stopping == 0)
            && self.scalings.iter().all(|s| s.unfinished == 0)
    }

    /// A rollout's old pod stops.
    pub fn stopped(&mut self, now: Instant, rollout: usize, placement: usize) {
        self.placements[placement].alive = false;
        self.rollouts[rollout].stopping -= 1;
        self.settle(now, rollout);
    }

    /// A rollout is over when every pod is replaced and every old one stopped.
    fn settle(&mut self, now: Instant, rollout: usize) {
        let r = &self.rollouts[rollout];
        let d = &mut self.disruptions[r.disruption];
        if r.remaining.is_empty() && r.stopping == 0 && d.moves.iter().all(|m| m.ready_ns.is_some())
        {
            d.recovered_ns.get_or_insert(now.as_nanos());
        }
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
    /// network has no address left (the pod stays pending, as in Kubernetes). `planned`
    /// are the nodes of pods decided but not running yet, counted as running.
    fn schedule(
        &mut self,
        old: &Pod,
        name: String,
        avoid: Option<&str>,
        planned: &[String],
    ) -> Option<Pod> {
        // One pass over the placements, not one per node: 5,000 nodes × 150,000 pods
        // made each scheduling decision take seconds.
        let mut running: HashMap<&str, usize> = HashMap::new();
        let alive = self
            .placements
            .iter()
            .filter(|p| p.alive)
            .map(|p| &p.pod.node);
        for node in alive.chain(planned) {
            *running.entry(node.as_str()).or_default() += 1;
        }
        let running = |node: &str| running.get(node).copied().unwrap_or(0);
        let node = self
            .nodes
            .iter()
            .filter(|n| {
                Some(n.as_str()) != avoid
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
            name,
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
            Some((stem, _)) => format!("{stem}-{}", self.suffix()),
            None => format!("{name}-1"),
        }
    }

    /// Five random letters, as a ReplicaSet names its pods.
    fn suffix(&mut self) -> String {
        (0..5)
            .map(|_| ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    /// A generator for a new pod's stack.
    pub fn fork_rng(&mut self) -> Rng {
        self.rng.fork()
    }

    /// The dead pod of `pending` leaves its slices; returns the slices changed.
    pub fn remove_endpoint(&mut self, now: Instant, pending: usize) -> Vec<EndpointSlice> {
        let p = &self.pending[pending];
        let Some(old) = p.old_ip else {
            return Vec::new();
        };
        self.disruptions[p.disruption].moves[p.index]
            .endpoints_removed_ns
            .get_or_insert(now.as_nanos());
        let slices = p.slices.clone();
        self.remove_from(&slices, &[IpAddr::V4(old)])
    }

    /// `ips` leave `slices`; returns the slices changed.
    fn remove_from(&mut self, slices: &[usize], ips: &[IpAddr]) -> Vec<EndpointSlice> {
        let mut changed = Vec::new();
        for &s in slices {
            let slice = &mut self.slices[s];
            let before = slice.endpoints.len();
            slice
                .endpoints
                .retain(|e| !e.addresses.iter().any(|a| ips.contains(a)));
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
        let (old, slices, disruption) = (p.old_ip.map(IpAddr::V4), p.slices.clone(), p.disruption);
        let (rollout, scaling) = (p.rollout, p.scaling);
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
            if let Some(old) = &old {
                slice.endpoints.retain(|e| !e.addresses.contains(old));
            }
            slice.endpoints.push(endpoint.clone());
            changed.push(slice.clone());
        }
        // A rollout is over when its last old pod stops ([`Controller::stopped`]).
        if let Some(scaling) = scaling {
            self.scaled(now, scaling);
        }
        let d = &mut self.disruptions[disruption];
        if rollout.is_none() && scaling.is_none() && d.moves.iter().all(|m| m.ready_ns.is_some()) {
            d.recovered_ns = Some(now.as_nanos());
        }
        changed
    }
}
