//! `kubectl scale deployment --replicas=N`, as the ReplicaSet controller does it. Missing
//! pods start at once, each scheduled as a dead pod's replacement is (the least-loaded
//! schedulable node, counting the pods just planned), and join the Deployment's
//! EndpointSlices when ready. Surplus pods, the newest first, leave the slices at once;
//! [`crate::sim::Sim`] stops them an endpoint delay after every node applied that, so no
//! connection in flight is cut.
//!
//! Pods named `name-<ordinal>` (`web-0`) scale as a StatefulSet's with parallel pod
//! management: new pods take the lowest free ordinals and the highest ordinals stop first.

use std::cmp::Reverse;

use super::*;

/// A Deployment being scaled.
#[derive(Clone, Debug)]
pub struct Scaling {
    /// Index in [`Controller::disruptions`].
    pub disruption: usize,
    /// New pods not ready yet and surplus pods not stopped yet.
    pub unfinished: usize,
}

/// What a scale leaves the simulation to do.
#[derive(Clone, Debug, Default)]
pub struct ScaleOrder {
    /// Index in [`Controller::scalings`].
    pub scaling: usize,
    /// New pods, to start after the restart delay (indexes in [`Controller::pending`]).
    pub starts: Vec<usize>,
    /// The slices the surplus pods left, to publish now.
    pub changed: Vec<EndpointSlice>,
    /// The surplus pods (indexes in [`Controller::placements`]), already out of the
    /// slices: to stop once every node applied `changed`.
    pub stops: Vec<usize>,
}

/// The ordinal of a StatefulSet-style pod of `deployment` (`web-2` -> 2).
fn ordinal(deployment: &ServiceName, pod: &str) -> Option<u64> {
    let rest = pod
        .strip_prefix(deployment.name.as_str())?
        .strip_prefix('-')?;
    rest.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| rest.parse().ok())?
}

impl Controller {
    /// Scales `action`'s Deployment to its replicas: records the disruption and gives what
    /// the simulation is to carry out.
    pub fn start_scale(&mut self, now: Instant, action: &Action) -> Result<ScaleOrder, String> {
        let Action::Scale {
            deployment,
            replicas,
        } = action
        else {
            return Err(format!("{action}: not a scale"));
        };
        let owned =
            |p: &Placement| Action::in_deployment(deployment, &p.pod.namespace, &p.pod.name);
        let running: Vec<usize> = (0..self.placements.len())
            .filter(|&i| self.placements[i].alive && owned(&self.placements[i]))
            .collect();
        // New pods are made like the newest one, running or not (the pod template).
        let template = self
            .placements
            .iter()
            .rposition(owned)
            .map(|i| self.placements[i].pod.clone())
            .ok_or_else(|| format!("{action}: the Deployment has no pod"))?;
        let slices = match running.last() {
            Some(&newest) => {
                let slices = self.slices_of(self.placements[newest].pod.ip);
                self.deployment_slices
                    .insert(deployment.clone(), slices.clone());
                slices
            }
            None => self
                .deployment_slices
                .get(deployment)
                .cloned()
                .unwrap_or_default(),
        };
        let wanted = *replicas as usize;
        let disruption = self.disrupt(now, action, wanted == running.len());
        let scaling = self.scalings.len();
        self.scalings.push(Scaling {
            disruption,
            unfinished: 0,
        });
        let mut order = ScaleOrder {
            scaling,
            ..ScaleOrder::default()
        };
        if wanted > running.len() {
            let taken: BTreeSet<String> = self
                .placements
                .iter()
                .filter(|p| p.alive && p.pod.namespace == template.namespace)
                .map(|p| p.pod.name.clone())
                .collect();
            let count = wanted - running.len();
            order.starts = self.scale_up(deployment, &template, &slices, taken, count, scaling);
        } else {
            let mut surplus = running;
            // The ReplicaSet controller stops the newest ready pods first; a StatefulSet
            // the highest ordinals.
            surplus
                .sort_by_key(|&i| Reverse((ordinal(deployment, &self.placements[i].pod.name), i)));
            surplus.truncate(surplus.len() - wanted);
            order.changed = self.scale_down(now, &surplus, disruption);
            order.stops = surplus;
        }
        self.scalings[scaling].unfinished = order.starts.len() + order.stops.len();
        Ok(order)
    }

    /// Plans `count` new pods like `template` in `slices`, until one finds no node; gives
    /// those that did (indexes in [`Controller::pending`]).
    fn scale_up(
        &mut self,
        deployment: &ServiceName,
        template: &Pod,
        slices: &[usize],
        mut taken: BTreeSet<String>,
        count: usize,
        scaling: usize,
    ) -> Vec<usize> {
        let disruption = self.scalings[scaling].disruption;
        let mut planned = Vec::new();
        let mut starts = Vec::new();
        for _ in 0..count {
            let name = self.new_name(deployment, template, &taken);
            taken.insert(name.clone());
            let pod = self.schedule(template, name, None, &planned);
            planned.extend(pod.as_ref().map(|p| p.node.clone()));
            let pending = self.plan(disruption, None, slices.to_vec(), pod, None);
            self.pending[pending].scaling = Some(scaling);
            if self.pending[pending].replacement.is_none() {
                // No node or no address now means none for the rest either: one pending
                // move says so (a huge `replicas` costs no more).
                break;
            }
            starts.push(pending);
        }
        starts
    }

    /// A name for a new pod of `deployment` no running pod has: the lowest free ordinal
    /// for a StatefulSet-style template (`web-0`), else the template's stem with a new
    /// random suffix (`wordpress-5d8f7c9b6-x7k2p`).
    fn new_name(
        &mut self,
        deployment: &ServiceName,
        template: &Pod,
        taken: &BTreeSet<String>,
    ) -> String {
        if ordinal(deployment, &template.name).is_some() {
            let mut k = 0u64;
            while taken.contains(&format!("{}-{k}", deployment.name)) {
                k += 1;
            }
            return format!("{}-{k}", deployment.name);
        }
        let stem = template
            .name
            .rsplit_once('-')
            .map_or(template.name.as_str(), |(stem, _)| stem)
            .to_string();
        loop {
            let name = format!("{stem}-{}", self.suffix());
            if !taken.contains(&name) {
                return name;
            }
        }
    }

    /// The `surplus` pods leave their slices now (they are terminating: no longer counted
    /// as running, nor picked by another event); gives the slices changed.
    fn scale_down(
        &mut self,
        now: Instant,
        surplus: &[usize],
        disruption: usize,
    ) -> Vec<EndpointSlice> {
        let mut slices = BTreeSet::new();
        let mut ips = Vec::new();
        for &i in surplus {
            self.placements[i].alive = false;
            let pod = self.placements[i].pod.clone();
            let own = self.slices_of(pod.ip);
            let index = self.record_move(disruption, Change::Stopped, Some(&pod), None, &own);
            self.disruptions[disruption].moves[index].endpoints_removed_ns = Some(now.as_nanos());
            slices.extend(own);
            ips.push(IpAddr::V4(pod.ip));
        }
        self.remove_from(&slices.into_iter().collect::<Vec<_>>(), &ips)
    }

    /// One pod of `scaling` is ready or stopped: the scale is over with the last, if every
    /// new pod found a node.
    pub fn scaled(&mut self, now: Instant, scaling: usize) {
        let s = &mut self.scalings[scaling];
        s.unfinished -= 1;
        let d = &mut self.disruptions[s.disruption];
        let done = |m: &Move| m.change == Change::Stopped || m.ready_ns.is_some();
        if s.unfinished == 0 && d.moves.iter().all(done) {
            d.recovered_ns.get_or_insert(now.as_nanos());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_are_a_statefulset_pods_last_number() {
        let web = ServiceName::new("default", "web");
        for (pod, want) in [
            ("web-0", Some(0)),
            ("web-12", Some(12)),
            ("web-5d8f7c9b6-abcde", None),
            ("web-abcde", None),
            ("web-", None),
            ("web", None),
            ("webx-1", None),
            ("web-99999999999999999999999", None),
        ] {
            assert_eq!(ordinal(&web, pod), want, "{pod}");
        }
    }
}
