//! The compiled table set: one hash lookup answers each question the packet path asks.
//!
//! Built by [`compile()`](crate::compile()); read by the engine. Service ports get small
//! integer ids that index a flat vector, so per-port state (round-robin cursors) is a plain
//! array.

mod settings;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::model::Protocol;
use crate::port_lines::PortLines;
pub use crate::service_port::{
    CompiledServicePort, EndpointClass, Frontend, FrontendKey, ServicePortId, ServicePortName,
};
pub use settings::NodeSettings;

/// Fixed hasher seeds: the same state compiles to the same tables on every run.
pub(crate) fn fixed_state() -> RandomState {
    RandomState::with_seeds(
        0x6b75_6265_6e61_7401,
        0x6b75_6265_6e61_7402,
        0x6b75_6265_6e61_7403,
        0x6b75_6265_6e61_7404,
    )
}

pub(crate) type FixedMap<K, V> = HashMap<K, V, RandomState>;

/// The compiled tables of one node: made by [`compile()`](crate::compile()), read through
/// [`Engine::tables`](crate::Engine::tables) or [`ServiceMap::tables`](crate::ServiceMap::tables).
///
/// Answers, with one hash lookup each, which service port a destination belongs to
/// ([`Tables::lookup`]) and everything about that port ([`Tables::port`]).
#[derive(Clone, Debug)]
pub struct Tables {
    ports: Vec<Option<CompiledServicePort>>,
    free_ports: Vec<u32>,
    frontends: FixedMap<FrontendKey, (ServicePortId, Frontend)>,
    /// (protocol, node port, is IPv6) → service port.
    node_ports: FixedMap<(Protocol, u16, bool), ServicePortId>,
    /// Cluster IPs with how many service ports use them, for the wrong-port check.
    cluster_ips: FixedMap<IpAddr, u32>,
    /// Compiled service ports per family: [IPv4, IPv6].
    ports_per_family: [usize; 2],
    settings: NodeSettings,
    /// The packet path's compact copy: a line per port, cluster IPs indexed.
    lines: PortLines,
}

impl Tables {
    /// No service port yet, with room for about `ports` of them.
    pub(crate) fn with_capacity(settings: NodeSettings, ports: usize) -> Tables {
        Tables {
            ports: Vec::with_capacity(ports),
            free_ports: Vec::new(),
            frontends: FixedMap::with_capacity_and_hasher(ports, fixed_state()),
            node_ports: FixedMap::with_hasher(fixed_state()),
            cluster_ips: FixedMap::with_capacity_and_hasher(ports, fixed_state()),
            ports_per_family: [0; 2],
            settings,
            lines: PortLines::with_capacity(ports),
        }
    }

    /// The packet path's compact copy: a line per service port, cluster IPs indexed.
    #[inline]
    pub(crate) fn lines(&self) -> &PortLines {
        &self.lines
    }

    /// The node-wide settings the tables were compiled with.
    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    /// The service port behind `address:port`, if a ClusterIP, external IP or
    /// load-balancer IP serves it.
    #[inline]
    pub fn frontend(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, Frontend)> {
        self.frontends
            .get(&FrontendKey {
                address,
                protocol,
                port,
            })
            .copied()
    }

    /// The service port behind a NodePort on destination `address`, if NodePorts answer
    /// on that address ([`NodeSettings::serves_node_ports_on`]).
    #[inline]
    pub fn node_port(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<ServicePortId> {
        if !self.settings.serves_node_ports_on(address) {
            return None;
        }
        self.node_ports
            .get(&(protocol, port, address.is_ipv6()))
            .copied()
    }

    /// The service port a new connection to `address:port` is for, and how it got there:
    /// [`Tables::frontend`] first, then [`Tables::node_port`].
    #[inline]
    pub fn lookup(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, Frontend)> {
        self.frontend(address, protocol, port).or_else(|| {
            self.node_port(address, protocol, port)
                .map(|id| (id, Frontend::NodePort))
        })
    }

    /// Whether `address` is the cluster IP of some compiled service port (on any port).
    pub fn is_cluster_ip(&self, address: IpAddr) -> bool {
        self.cluster_ips.contains_key(&address)
    }

    /// Whether `address` is inside [`NodeSettings::service_cidrs`].
    pub fn in_service_cidrs(&self, address: IpAddr) -> bool {
        self.settings
            .service_cidrs
            .iter()
            .any(|c| c.contains(&address))
    }

    /// A compiled service port. Panics on an id not handed out by these tables.
    #[inline]
    pub fn port(&self, id: ServicePortId) -> &CompiledServicePort {
        self.ports[id.0 as usize]
            .as_ref()
            .expect("service port id from these tables")
    }

    /// Upper bound of the ids handed out, for arrays indexed by [`ServicePortId`].
    pub fn port_slots(&self) -> usize {
        self.ports.len()
    }

    /// Every compiled service port, in id order.
    pub fn ports(&self) -> impl Iterator<Item = (ServicePortId, &CompiledServicePort)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (ServicePortId(i as u32), p)))
    }

    /// Whether the family (IPv6 or IPv4) has a node address or a service port here.
    pub fn uses_family(&self, ipv6: bool) -> bool {
        self.settings.node_ips.iter().any(|ip| ip.is_ipv6() == ipv6)
            || self.ports_per_family[usize::from(ipv6)] > 0
    }

    /// Every frontend, sorted, for printing.
    pub fn sorted_frontends(&self) -> Vec<(FrontendKey, ServicePortId, Frontend)> {
        let mut v: Vec<_> = self
            .frontends
            .iter()
            .map(|(k, &(id, f))| (*k, id, f))
            .collect();
        v.sort();
        v
    }

    /// Every NodePort as (protocol, port, is IPv6, service port), sorted, for printing.
    pub fn sorted_node_ports(&self) -> Vec<(Protocol, u16, bool, ServicePortId)> {
        let mut v: Vec<_> = self
            .node_ports
            .iter()
            .map(|(&(proto, port, v6), &id)| (proto, port, v6, id))
            .collect();
        v.sort();
        v
    }
}

/// Changes: the only way in, so the copies (ports, frontends, NodePorts, cluster IPs,
/// family counts, lines) stay in step.
impl Tables {
    /// Removes the service ports `ids` (handed out by [`Tables::insert_ports`]) from every
    /// table that holds them.
    pub(crate) fn remove_ports(&mut self, ids: Vec<ServicePortId>) {
        // Freed in reverse so a recompile takes the same ids back in the same order.
        for id in ids.into_iter().rev() {
            let Some(port) = self.ports[id.0 as usize].take() else {
                continue;
            };
            self.lines.remove(id, &port);
            for (key, _) in &port.frontends {
                if self
                    .frontends
                    .get(key)
                    .is_some_and(|(owner, _)| *owner == id)
                {
                    self.frontends.remove(key);
                }
            }
            if let Some(node_port) = port.node_port {
                let key = (port.protocol, node_port, port.ipv6);
                if self.node_ports.get(&key) == Some(&id) {
                    self.node_ports.remove(&key);
                }
            }
            // Cluster IPs are reference-counted by the ports that use them.
            if let Some(n) = self.cluster_ips.get_mut(&port.cluster_ip) {
                *n -= 1;
                if *n == 0 {
                    self.cluster_ips.remove(&port.cluster_ip);
                }
            }
            self.ports_per_family[usize::from(port.ipv6)] -= 1;
            self.free_ports.push(id.0);
        }
    }

    /// Adds a Service's compiled ports to every table (the full tables and the packet path's
    /// lines, kept in step); returns their ids.
    pub(crate) fn insert_ports(&mut self, ports: Vec<CompiledServicePort>) -> Vec<ServicePortId> {
        let mut ids = Vec::with_capacity(ports.len());
        for port in ports {
            let slot = match self.free_ports.pop() {
                Some(slot) => slot,
                None => {
                    self.ports.push(None);
                    (self.ports.len() - 1) as u32
                }
            };
            let id = ServicePortId(slot);
            let mut owns_cluster_ip = false;
            for &(key, frontend) in &port.frontends {
                // First definition wins on a clash, as an API server would refuse the second.
                if let hashbrown::hash_map::Entry::Vacant(vacant) = self.frontends.entry(key) {
                    vacant.insert((id, frontend));
                    owns_cluster_ip |= frontend == Frontend::ClusterIp;
                }
            }
            // The packet path's index mirrors the cluster-IP frontends this port owns.
            self.lines.insert(id, &port, owns_cluster_ip);
            if let Some(node_port) = port.node_port {
                self.node_ports
                    .entry((port.protocol, node_port, port.ipv6))
                    .or_insert(id);
            }
            *self.cluster_ips.entry(port.cluster_ip).or_insert(0) += 1;
            self.ports_per_family[usize::from(port.ipv6)] += 1;
            self.ports[slot as usize] = Some(port);
            ids.push(id);
        }
        ids
    }
}
