//! The packet path: conntrack first, then the compiled service tables, then the rewrite.

mod batch;
mod established;
mod family;
mod fragments;
mod hook;
mod new_connection;
mod offload;
mod open;
mod process;
mod reply;
mod select;
mod turns;
mod update;

pub use update::NotOwner;

use std::net::{Ipv4Addr, Ipv6Addr};

use std::sync::Arc;

use crate::conntrack::Lookahead;
use crate::control_plane::{ControlPlane, Publication};
use crate::counters::Counters;
use crate::model::{ClusterState, ProxyConfig};
use crate::tables::{ClusterTables, NodeSettings, ServicePortId, Tables};
use crate::time::Instant;
use crate::verdict::Hook;
use family::FamilyState;
use turns::Turns;

/// The way a packet crosses the node, for callers that run both hooks in one call
/// ([`Engine::process_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Arriving and leaving again: PREROUTING, then POSTROUTING.
    Forward,
    /// Sent by the node itself: OUTPUT, then POSTROUTING.
    LocalOut,
}

impl Path {
    /// The hook the path starts at.
    fn first_hook(self) -> Hook {
        match self {
            Path::Forward => Hook::Prerouting,
            Path::LocalOut => Hook::Output,
        }
    }
}

/// Where an engine's snapshots come from.
enum Source {
    /// Its own control plane ([`Engine::new`]), changed through [`Engine::update`].
    Own(Box<ControlPlane>),
    /// A shared control plane's publication ([`Engine::follow`]), checked between batches.
    Follow(Publication),
    /// Whatever the embedder hands [`Engine::adopt`].
    Adopted,
}

/// What a batch read ahead of one packet at an arriving hook: its conntrack look-ahead
/// and, for a packet that looked new, the service port its destination's index bucket
/// named first (a candidate the rules confirm, not a match).
#[derive(Clone, Copy, Debug)]
struct Ahead {
    conntrack: Lookahead,
    service: Option<ServicePortId>,
}

/// Everything but the per-family connection state.
struct Core {
    /// The cluster's snapshot with this node's settings.
    tables: Tables,
    source: Source,
    /// This node's proxy settings (conntrack, masquerade ports, seed).
    proxy: ProxyConfig,
    /// Round-robin turn per (service port, endpoint class).
    turns: Turns,
    /// Latest time seen: time never goes backwards inside the engine.
    now: Instant,
    /// splitmix64 state for masquerade ports.
    rng: u64,
}

/// One node's kube-proxy data plane: compiled tables plus connection tracking.
///
/// Sans-IO: packets and time come in as arguments; nothing here reads a clock, opens a
/// socket or allocates per packet, except that a new connection may grow the connection
/// tables (see [`Engine::conntrack_bytes`]; [`Engine::offload_memory`] moves that
/// allocation to another thread). IPv4 and IPv6 are both handled, each with its
/// own conntrack table of up to
/// [`ProxyConfig::conntrack_capacity`](crate::ProxyConfig::conntrack_capacity) connections.
///
/// An embedding loop:
///
/// 1. [`Engine::new`] with the node's [`ClusterState`];
/// 2. every packet through [`Engine::process`] at the hook where it is (or
///    [`Engine::process_path`] for both hooks at once); forward it on
///    [`Verdict::Accept`](crate::Verdict::Accept) and
///    [`Verdict::Translated`](crate::Verdict::Translated) (rewritten in place), discard it
///    on [`Verdict::Drop`](crate::Verdict::Drop), and on
///    [`Verdict::Reject`](crate::Verdict::Reject) send [`Engine::write_reject_reply`]'s
///    reply instead;
/// 3. API-server changes through [`Engine::update`];
/// 4. [`Engine::handle_timeout`] when [`Engine::poll_at`] says, to expire connections.
///
/// `now` must come from one monotonic clock (see [`Instant`]); an earlier time than one
/// already seen is taken as the latest seen.
///
/// ```
/// use kubenat_core::{ClusterState, Engine, Hook, Instant, Verdict};
///
/// let mut engine = Engine::new(&ClusterState::default());
/// // A UDP packet nobody's rules care about passes untouched.
/// let mut packet = Vec::new();
/// etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
///     .udp(5000, 53)
///     .write(&mut packet, b"hi")
///     .unwrap();
/// assert_eq!(engine.process(Hook::Prerouting, &mut packet, Instant::ZERO), Verdict::Accept);
/// assert_eq!(engine.counters().accepted, 1);
/// ```
pub struct Engine {
    core: Core,
    v4: FamilyState<Ipv4Addr>,
    v6: FamilyState<Ipv6Addr>,
    counters: Counters,
}

impl Engine {
    /// Compiles `state` into a control plane of the engine's own and starts with empty
    /// connection tracking at [`Instant::ZERO`]. The conntrack, session-affinity and
    /// fragment tables of each address family the state uses start at a few KiB and grow
    /// with the connections, up to
    /// [`ProxyConfig::conntrack_capacity`](crate::ProxyConfig::conntrack_capacity).
    pub fn new(state: &ClusterState) -> Engine {
        Engine::from_state(state.clone())
    }

    /// [`Engine::new`], taking the state instead of copying it (the engine's control plane
    /// keeps it for updates).
    pub fn from_state(state: ClusterState) -> Engine {
        let plane = ControlPlane::from_state(state);
        let proxy = plane.proxy().clone();
        let cluster = plane.snapshot().clone();
        Engine::with_source(cluster, proxy, Source::Own(Box::new(plane)))
    }

    /// An engine of the node `proxy` configures that reads the snapshots `publication`
    /// publishes: it takes the latest before each batch, so a batch sees exactly one
    /// generation, and connections it tracks keep their endpoints across changes. Costs
    /// its connection state and 8 bytes per service port (round-robin turns): the tables
    /// are shared.
    ///
    /// ```
    /// use kubenat_core::{ControlPlane, Engine, Hook, Instant, ServiceName, Update, Verdict};
    /// use kubenat_core::reference;
    ///
    /// let mut plane = ControlPlane::new(&reference::cluster("nodoa"));
    /// let publication = plane.publication();
    /// // Two nodes' engines, one compiled cluster.
    /// let mut nodoa = Engine::follow(publication.clone(), &reference::cluster("nodoa").proxy);
    /// let mut nodob = Engine::follow(publication, &reference::cluster("nodob").proxy);
    /// plane.apply(Update::RemoveService(ServiceName::new("default", "mariadb-service")));
    /// // Both take the change before their next packet: mariadb's cluster IP is free.
    /// for engine in [&mut nodoa, &mut nodob] {
    ///     let mut syn = Vec::new();
    ///     etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 101], 64)
    ///         .tcp(40000, 3307, 1, 64240)
    ///         .syn()
    ///         .write(&mut syn, &[])
    ///         .unwrap();
    ///     assert!(!matches!(
    ///         engine.process(Hook::Prerouting, &mut syn, Instant::ZERO),
    ///         Verdict::Translated(_)
    ///     ));
    ///     assert_eq!(engine.tables().cluster().generation(), 1);
    /// }
    /// ```
    pub fn follow(publication: Publication, proxy: &ProxyConfig) -> Engine {
        let cluster = publication.load();
        Engine::with_source(cluster, proxy.clone(), Source::Follow(publication))
    }

    /// An engine of the node `proxy` configures that reads `cluster` until the embedder
    /// hands it another with [`Engine::adopt`] (a simulator deciding when each node
    /// applies a change does this).
    pub fn with_snapshot(cluster: Arc<ClusterTables>, proxy: &ProxyConfig) -> Engine {
        Engine::with_source(cluster, proxy.clone(), Source::Adopted)
    }

    fn with_source(cluster: Arc<ClusterTables>, proxy: ProxyConfig, source: Source) -> Engine {
        let tables = Tables::new(cluster, Arc::new(NodeSettings::from_proxy(&proxy)));
        let turns = Turns::new(tables.port_slots());
        let (v4_in_use, v6_in_use) = (tables.uses_family(false), tables.uses_family(true));
        Engine {
            v4: FamilyState::new(&proxy, v4_in_use),
            v6: FamilyState::new(&proxy, v6_in_use),
            core: Core {
                tables,
                source,
                turns,
                now: Instant::ZERO,
                rng: proxy.seed,
                proxy,
            },
            counters: Counters::default(),
        }
    }

    /// The compiled tables, as this node sees them.
    pub fn tables(&self) -> &Tables {
        &self.core.tables
    }

    /// Bytes of what the packet path reads for a new connection to a service: the compact
    /// service-port lines with their cluster-IP index (see [`Tables`]) and the round-robin
    /// turns. The full tables and the cluster state they are compiled from, which only
    /// updates, traces and the other frontends read, are not counted.
    pub fn packet_path_bytes(&self) -> usize {
        self.core.tables.lines().bytes() + self.core.turns.bytes()
    }

    /// Bytes this engine holds beyond the shared snapshot and its connection state: its
    /// round-robin turns and node settings.
    pub fn own_bytes(&self) -> usize {
        std::mem::size_of::<Engine>()
            + self.core.turns.bytes()
            + std::mem::size_of::<NodeSettings>()
    }

    /// Bytes of connection state (both families): the conntrack tables with their
    /// session-affinity and fragment tables. They follow the connections tracked at once:
    /// a new connection past the high-water mark may allocate (a 1,024-entry slab chunk,
    /// or an index twice the size, cleared and filled a few buckets per insert), amortized
    /// and never a copy of a table; removed and expired connections leave their slots for
    /// reuse. [`Engine::reserve_connections`] grows them ahead instead.
    ///
    /// ```
    /// use kubenat_core::{ClusterState, Engine};
    ///
    /// let mut state = ClusterState::default();
    /// state.proxy.conntrack_capacity = 1_000_000_000;
    /// // A ceiling, not a reservation.
    /// assert!(Engine::new(&state).conntrack_bytes() < 64 * 1024);
    /// ```
    pub fn conntrack_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }

    /// Grows the connection tables of each family in use now to hold `connections`
    /// connections (and as many session-affinity clients and fragment heads), each up to
    /// its capacity: for an embedder that wants no allocation on the packet path until
    /// the traffic passes that many connections at once.
    pub fn reserve_connections(&mut self, connections: usize) {
        self.v4.reserve(connections);
        self.v6.reserve(connections);
    }

    /// Counters per verdict and reason since the engine was made.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Tracked connections (both families), including expired ones not yet removed by
    /// [`Engine::handle_timeout`].
    pub fn connections(&self) -> usize {
        self.v4.conntrack.len() + self.v6.conntrack.len()
    }

    /// The most connections the engine tracks per family (the configured conntrack
    /// maximum; 0 for a family no Service and no node address uses).
    pub fn conntrack_capacity(&self) -> usize {
        self.v4
            .conntrack
            .capacity()
            .max(self.v6.conntrack.capacity())
    }
    /// The next time a connection expires: call [`Engine::handle_timeout`] then. `None`
    /// while no connection is tracked. Changes after every packet and update, so re-arm
    /// the timer after each call that may create or touch a connection.
    pub fn poll_at(&self) -> Option<Instant> {
        match (self.v4.conntrack.poll_at(), self.v6.conntrack.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires connections whose timers ran out by `now`; returns how many. The packet
    /// path also ignores expired connections (their next packet starts a new one) and a
    /// full table expires before refusing a new flow, but only this keeps
    /// [`Engine::connections`] current and frees session state promptly.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        self.core.now = self.core.now.max(now);
        self.v4.conntrack.expire(self.core.now) + self.v6.conntrack.expire(self.core.now)
    }
}
