//! The packet path's compact copy of the service tables: what a new connection to a
//! cluster IP needs, one cache line per service port, found through a cache-line index.
//!
//! [`Tables`](crate::tables::Tables) keeps everything about a service port for inspection
//! and updates, spread over several heap blocks. A new connection to a cluster IP reads
//! only this: one probe of a [`FlowIndex`] bucket (prefetchable a batch ahead, as the
//! conntrack index is), then one 64-byte [`PortLine`] holding the policy flags, the
//! cluster-wide endpoint count and up to four IPv4 endpoints inline. Other frontends
//! (external, load-balancer IPs, NodePorts), IPv6 endpoints, larger endpoint sets and
//! node-local endpoints (which differ per node, and the lines are shared by every node)
//! fall back to the full tables, which stay the reference.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::addr::Addr;
use crate::categorize::Endpoints;
use crate::chunks::Chunks;
use crate::flow_index::{FlowIndex, prefetch};
use crate::model::Protocol;
use crate::service_port::{CompiledServicePort, ServicePortId};

/// IPv4 endpoints a line holds inline.
const INLINE: usize = 4;

/// internalTrafficPolicy Local.
const INTERNAL_LOCAL: u8 = 1;
/// externalTrafficPolicy Local on an externally reachable Service.
const EXTERNAL_LOCAL: u8 = 16;
/// sessionAffinity ClientIP.
const AFFINITY: u8 = 2;
/// The cluster-wide endpoints are all inline.
const ENDPOINTS_INLINE: u8 = 4;
/// The line describes a compiled port (slots of freed ports are cleared).
const IN_USE: u8 = 8;
/// The port has Maglev tables (endpoint selection Maglev).
const MAGLEV: u8 = 32;

/// One service port as a new connection to its cluster IP sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct PortLine {
    cluster_ip: IpAddr,
    port: u16,
    protocol: Protocol,
    flags: u8,
    cluster_endpoints: u32,
    /// The first `cluster_endpoints` IPv4 endpoints, when `ENDPOINTS_INLINE`.
    endpoints: [(Ipv4Addr, u16); INLINE],
}

const UNUSED_LINE: PortLine = PortLine {
    cluster_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    port: 0,
    protocol: Protocol::Tcp,
    flags: 0,
    cluster_endpoints: 0,
    endpoints: [(Ipv4Addr::UNSPECIFIED, 0); INLINE],
};

impl PortLine {
    fn new(port: &CompiledServicePort) -> PortLine {
        let cluster = &port.endpoints.cluster;
        let mut line = PortLine {
            cluster_ip: port.cluster_ip,
            port: port.port,
            protocol: port.protocol,
            flags: IN_USE,
            cluster_endpoints: u32::try_from(cluster.len()).unwrap_or(u32::MAX),
            endpoints: UNUSED_LINE.endpoints,
        };
        if port.internal_policy_local {
            line.flags |= INTERNAL_LOCAL;
        }
        if port.external_policy_local {
            line.flags |= EXTERNAL_LOCAL;
        }
        if port.affinity_timeout.is_some() {
            line.flags |= AFFINITY;
        }
        if port.maglev.is_some() {
            line.flags |= MAGLEV;
        }
        if let Endpoints::V4(cluster) = cluster.view()
            && cluster.len() <= INLINE
        {
            for (slot, endpoint) in line.endpoints.iter_mut().zip(cluster) {
                *slot = (*endpoint.ip(), endpoint.port());
            }
            line.flags |= ENDPOINTS_INLINE;
        }
        line
    }

    /// internalTrafficPolicy Local.
    pub fn internal_policy_local(&self) -> bool {
        self.flags & INTERNAL_LOCAL != 0
    }

    /// externalTrafficPolicy Local on an externally reachable Service.
    pub fn external_policy_local(&self) -> bool {
        self.flags & EXTERNAL_LOCAL != 0
    }

    /// sessionAffinity ClientIP.
    pub fn affinity(&self) -> bool {
        self.flags & AFFINITY != 0
    }

    /// Endpoint selection Maglev: the port has Maglev tables.
    pub fn maglev(&self) -> bool {
        self.flags & MAGLEV != 0
    }

    /// How many endpoints a connection of class Cluster picks from.
    pub fn cluster_endpoints(&self) -> usize {
        self.cluster_endpoints as usize
    }

    /// kube-proxy's `hasEndpoints` (a node's local endpoints are among the cluster's).
    pub fn has_endpoints(&self) -> bool {
        self.cluster_endpoints > 0
    }

    /// Cluster-wide endpoint `index`, when the line holds it (else read the full tables).
    pub fn cluster_endpoint(&self, index: usize) -> Option<SocketAddr> {
        if self.flags & ENDPOINTS_INLINE == 0 {
            return None;
        }
        let (ip, port) = self.endpoints[index];
        Some(SocketAddr::new(IpAddr::V4(ip), port))
    }

    /// The cluster-wide IPv4 endpoint a round-robin `turn` picks, when the line alone
    /// decides a new connection to its cluster IP: endpoints inline, and none of
    /// internalTrafficPolicy Local, session affinity or Maglev. `None` otherwise (the
    /// full rules then decide).
    #[inline(always)]
    pub fn plain_round_robin(&self, turn: u32) -> Option<(Ipv4Addr, u16)> {
        let count = self.cluster_endpoints;
        if self.flags & (ENDPOINTS_INLINE | INTERNAL_LOCAL | AFFINITY | MAGLEV) != ENDPOINTS_INLINE
            || count == 0
        {
            return None;
        }
        Some(self.endpoints[(turn % count) as usize])
    }

    /// Whether the line describes a compiled port with cluster IP `address:port` over
    /// `protocol`.
    pub fn is_frontend(&self, address: impl Into<IpAddr>, protocol: Protocol, port: u16) -> bool {
        self.flags & IN_USE != 0
            && self.cluster_ip == address.into()
            && self.port == port
            && self.protocol == protocol
    }
}

/// Lines per leaf of the persistent array: 32 lines, 2 KiB, so a change copies one short
/// run of lines (a million lines need four branch levels, the upper ones hot in cache).
/// 64-line leaves had the same four levels at a million lines, and an update at 1M spent
/// most of its cache misses copying the 4 KiB leaf (docs/benchmarks.md).
const LINE_LEAF: usize = 32;

/// Cluster-IP frontends to their service ports, and one [`PortLine`] per service port.
/// Shared between snapshots: the lines in a persistent array, the index copied only when a
/// change adds or removes a cluster IP.
pub(crate) struct PortLines {
    index: Arc<FlowIndex>,
    /// Keys in `index`, and how many it was sized for.
    keys: usize,
    capacity: usize,
    /// Indexed by [`ServicePortId`].
    lines: Chunks<PortLine, LINE_LEAF>,
}

impl std::fmt::Debug for PortLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortLines")
            .field("keys", &self.keys)
            .field("lines", &self.lines.len())
            .finish()
    }
}

/// The hash a cluster-IP frontend is indexed under: the address folded to 64 bits and
/// mixed with port and protocol under fixed keys (the same on every run).
#[inline]
pub(crate) fn frontend_hash(address: IpAddr, protocol: Protocol, port: u16) -> u64 {
    let folded = match address {
        IpAddr::V4(a) => u64::from(a.to_bits()),
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29)
        }
    };
    let key = (u64::from(port) << 8) | u64::from(protocol.ip_number());
    crate::conntrack::mix(
        crate::conntrack::mix(folded ^ 0x4528_21e6_38d0_1377, key ^ 0xbe54_66cf_34e9_0c6c),
        0xc0ac_29b7_c97c_50dd,
    )
}

impl PortLines {
    /// Sized for `ports` cluster-IP frontends; grows (rebuilding its index) past that.
    pub fn with_capacity(ports: usize) -> PortLines {
        let capacity = ports.max(16);
        PortLines {
            index: Arc::new(FlowIndex::new(capacity)),
            keys: 0,
            capacity,
            lines: Chunks::new(UNUSED_LINE),
        }
    }

    /// A read-only copy sharing everything ([`Chunks::snapshot`]).
    pub fn snapshot(&mut self) -> PortLines {
        PortLines {
            index: self.index.clone(),
            keys: self.keys,
            capacity: self.capacity,
            lines: self.lines.snapshot(),
        }
    }

    /// Makes `id`'s line describe `port`. Its cluster IP is indexed apart
    /// ([`PortLines::index`]): a port that replaces another keeps its frontend, and so the
    /// index as it is.
    pub fn set(&mut self, id: ServicePortId, port: &CompiledServicePort) {
        self.lines.set(id.0 as usize, PortLine::new(port));
    }

    /// Starts loading what [`PortLines::set`] of `id` reads and copies
    /// ([`Chunks::prefetch_path`]).
    pub fn prefetch_path(&self, id: ServicePortId) {
        self.lines.prefetch_path(id.0 as usize);
    }

    /// Lines for `ports` with ids 0, 1, ... in order, in place of none (a full build): the
    /// array built leaf by leaf. Their cluster IPs are indexed after, by
    /// [`PortLines::index`] as after [`PortLines::set`] (an index rebuilt between finds
    /// only the lines indexed so far).
    pub fn set_all<'a>(&mut self, ports: impl Iterator<Item = &'a CompiledServicePort>) {
        debug_assert_eq!(self.lines.len(), 0, "lines set before");
        self.lines = Chunks::from_items(UNUSED_LINE, ports.map(PortLine::new));
    }

    /// Indexes the cluster IP of `port`, whose line `id` is set.
    pub fn index(&mut self, id: ServicePortId, port: &CompiledServicePort) {
        if self.keys == self.capacity {
            self.grow();
        }
        let hash = frontend_hash(port.cluster_ip, port.protocol, port.port);
        if Arc::make_mut(&mut self.index).insert(hash, id.0) {
            self.keys += 1;
        } else {
            // Every bucket within reach is full: rebuild larger and retry once.
            self.grow();
            self.keys += usize::from(Arc::make_mut(&mut self.index).insert(hash, id.0));
        }
    }

    /// Forgets `id`'s line and index key (`port` is what was inserted for it).
    pub fn remove(&mut self, id: ServicePortId, port: &CompiledServicePort) {
        let hash = frontend_hash(port.cluster_ip, port.protocol, port.port);
        if self.index.find(hash, |value| value == id.0).is_some()
            && Arc::make_mut(&mut self.index).remove(hash, id.0)
        {
            self.keys -= 1;
        }
        if (id.0 as usize) < self.lines.len() {
            self.lines.set(id.0 as usize, UNUSED_LINE);
        }
    }

    /// Doubles the index: every key of a line in use is indexed again.
    fn grow(&mut self) {
        self.capacity *= 2;
        let mut index = FlowIndex::new(self.capacity);
        let mut keys = 0;
        for (id, line) in self.lines.iter().enumerate() {
            let hash = frontend_hash(line.cluster_ip, line.protocol, line.port);
            if line.flags & IN_USE != 0
                && self.index.find(hash, |value| value == id as u32).is_some()
            {
                keys += usize::from(index.insert(hash, id as u32));
            }
        }
        self.index = Arc::new(index);
        self.keys = keys;
    }

    /// [`PortLines::lookup`], trying `candidate` first: the port that a batch's
    /// look-ahead found first under the frontend's hash, confirmed here before it is
    /// taken. Inlined: the confirmation then compares an address whose family the caller
    /// knows.
    #[inline(always)]
    pub fn lookup_from<A: Addr>(
        &self,
        candidate: Option<ServicePortId>,
        address: A,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, &PortLine)> {
        if let Some(id) = candidate {
            let line = self.lines.get(id.0 as usize);
            if line.is_frontend(address, protocol, port) {
                return Some((id, line));
            }
        }
        self.lookup(address.into(), protocol, port)
    }

    /// The service port whose cluster IP is `address:port` over `protocol`, with its line.
    #[inline]
    pub fn lookup(
        &self,
        address: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Option<(ServicePortId, &PortLine)> {
        let hash = frontend_hash(address, protocol, port);
        // The line is found once: the walk down the persistent array is not free.
        let mut found = None;
        let id = self.index.find(hash, |id| {
            let line = self.lines.get(id as usize);
            let matches = line.is_frontend(address, protocol, port);
            if matches {
                found = Some(line);
            }
            matches
        })?;
        found.map(|line| (ServicePortId(id), line))
    }

    /// The line of `id` (a port compiled into these tables).
    #[inline]
    pub fn line(&self, id: ServicePortId) -> &PortLine {
        self.lines.get(id.0 as usize)
    }

    /// Starts loading the index bucket of a frontend hashed by [`frontend_hash`].
    #[inline(always)]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the line the (prefetched) bucket names for `hash`; returns its id
    /// and the line (what the next stage reads, without walking to it again).
    #[inline(always)]
    pub fn prefetch_line(&self, hash: u64) -> Option<(ServicePortId, &PortLine)> {
        let id = self.index.find(hash, |_| true)?;
        let line = self.lines.get(id as usize);
        prefetch(line);
        Some((ServicePortId(id), line))
    }

    /// Bytes held: the index and the lines.
    pub fn bytes(&self) -> usize {
        self.index.bytes() + self.lines.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<PortLine>(), 64);
        assert_eq!(std::mem::align_of::<PortLine>(), 64);
    }
}
