//! Changes to the compiled tables: the only way in.

use super::*;

/// Changes: the only way in, so the copies (ports, frontends, NodePorts, cluster IPs,
/// family counts, lines) stay in step.
impl ClusterTables {
    /// A read-only copy of the tables as they are, sharing everything with them; the
    /// writes after it copy what they touch.
    pub(crate) fn snapshot(&mut self) -> ClusterTables {
        ClusterTables {
            ports: self.ports.snapshot(),
            // Only the writer hands out ids.
            free_ports: Vec::new(),
            frontends: self.frontends.clone(),
            node_ports: self.node_ports.clone(),
            cluster_ips: self.cluster_ips.clone(),
            ports_per_family: self.ports_per_family,
            lines: self.lines.snapshot(),
            generation: self.generation,
            recent: self.recent.snapshot(),
        }
    }

    /// Starts loading what replacing the service ports `ids` reads and copies: their
    /// places in the ports and in the lines ([`Chunks::prefetch_path`]). Then, once the
    /// caller has done other work, [`ClusterTables::prefetch_compiled`].
    pub(crate) fn prefetch_places(&self, ids: &[ServicePortId]) {
        for &id in ids {
            self.ports.prefetch_path(id.0 as usize);
            self.lines.prefetch_path(id);
        }
    }

    /// Starts loading the compiled ports `ids`, which a replacement compares with the
    /// new ones: their places should be loaded by now.
    pub(crate) fn prefetch_compiled(&self, ids: &[ServicePortId]) {
        for &id in ids {
            if let Some(port) = self.ports.get(id.0 as usize) {
                crate::flow_index::prefetch_all(&**port);
            }
        }
    }

    /// Removes the service ports `ids` (handed out by [`Tables::insert_ports`]) from every
    /// table that holds them.
    pub(crate) fn remove_ports(&mut self, ids: &[ServicePortId]) {
        // Freed in reverse so a recompile takes the same ids back in the same order.
        for &id in ids.iter().rev() {
            let Some(port) = self.ports.get(id.0 as usize).clone() else {
                continue;
            };
            self.ports.set(id.0 as usize, None);
            self.lines.remove(id, &port);
            for (key, frontend) in port.frontends() {
                if self
                    .frontends
                    .get(&key)
                    .is_some_and(|(owner, _)| owner == id)
                {
                    Arc::make_mut(&mut self.frontends).release(&key, id, frontend);
                }
            }
            if let Some(node_port) = port.node_port {
                let key = (port.protocol, node_port, port.ipv6);
                if self.node_ports.get(&key) == Some(&id) {
                    Arc::make_mut(&mut self.node_ports).remove(&key);
                }
            }
            Arc::make_mut(&mut self.cluster_ips).remove(port.cluster_ip);
            self.ports_per_family[usize::from(port.ipv6)] -= 1;
            self.free_ports.push(id.0);
        }
    }

    /// Puts `ports` in place of the ports `ids` when each reaches the same frontends and
    /// NodePort as the one it replaces (an EndpointSlice change): only the ports and their
    /// lines change, no lookup map; `ports` is left empty. Leaves them when they differ,
    /// and says whether they were put.
    pub(crate) fn replace_ports(
        &mut self,
        ids: &[ServicePortId],
        ports: &mut Vec<CompiledServicePort>,
    ) -> bool {
        let same_place = ids.len() == ports.len()
            && ids
                .iter()
                .zip(ports.iter())
                .all(|(&id, new)| self.port(id).same_frontends(new));
        if !same_place {
            return false;
        }
        for (&id, port) in ids.iter().zip(ports.drain(..)) {
            self.lines.set(id, &port);
            self.ports.set(id.0 as usize, Some(Arc::new(port)));
        }
        true
    }

    /// Adds a Service's compiled ports to every table (the full tables and the packet path's
    /// lines, kept in step); returns their ids.
    pub(crate) fn insert_ports(
        &mut self,
        ports: impl Iterator<Item = CompiledServicePort>,
    ) -> PortIds {
        ports.map(|port| self.insert_port(port)).collect()
    }

    /// Adds the ports of a whole cluster to tables that hold none (a full build), with the
    /// ids [`ClusterTables::insert_ports`] would give them one by one: 0, 1, ... in order.
    /// The two arrays are built leaf by leaf rather than walked from the root per port.
    pub(crate) fn insert_all(&mut self, ports: Vec<Arc<CompiledServicePort>>) {
        debug_assert_eq!(self.ports.len(), 0, "ports inserted before");
        self.lines.set_all(ports.iter().map(|port| &**port));
        for (slot, port) in ports.iter().enumerate() {
            self.index_port(ServicePortId(slot as u32), port);
        }
        self.ports = Chunks::from_items(None, ports.into_iter().map(Some));
    }

    fn insert_port(&mut self, port: CompiledServicePort) -> ServicePortId {
        // A new slot is the next past the end, written once the port is in place below.
        let slot = match self.free_ports.pop() {
            Some(slot) => slot,
            None => self.ports.len() as u32,
        };
        let id = ServicePortId(slot);
        self.lines.set(id, &port);
        self.index_port(id, &port);
        self.ports.set(slot as usize, Some(Arc::new(port)));
        id
    }

    /// Enters port `id` (its line set) in the lookup maps and counts.
    fn index_port(&mut self, id: ServicePortId, port: &CompiledServicePort) {
        let mut owns_cluster_ip = false;
        for (key, frontend) in port.frontends() {
            // First definition wins on a clash, as an API server would refuse the second.
            // A map another snapshot shares is copied only for a claim that succeeds.
            let claimed = match Arc::get_mut(&mut self.frontends) {
                Some(frontends) => frontends.claim(key, id, frontend),
                None => {
                    self.frontends.get(&key).is_none()
                        && Arc::make_mut(&mut self.frontends).claim(key, id, frontend)
                }
            };
            if claimed {
                owns_cluster_ip |= frontend == Frontend::ClusterIp;
            }
        }
        // The packet path's index mirrors the cluster-IP frontends this port owns.
        if owns_cluster_ip {
            self.lines.index(id, port);
        }
        if let Some(node_port) = port.node_port {
            let key = (port.protocol, node_port, port.ipv6);
            if !self.node_ports.contains_key(&key) {
                Arc::make_mut(&mut self.node_ports).insert(key, id);
            }
        }
        Arc::make_mut(&mut self.cluster_ips).add(port.cluster_ip);
        self.ports_per_family[usize::from(port.ipv6)] += 1;
    }
}
