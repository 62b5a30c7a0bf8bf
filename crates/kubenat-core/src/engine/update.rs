//! Cluster-state changes applied to a running engine.

use std::sync::Arc;

use super::{Engine, Source};
use crate::addr::Addr;
use crate::conntrack::Conntrack;
use crate::control_plane::Update;
use crate::model::{Protocol, ProxyConfig};
use crate::tables::{Changed, ClusterTables, NodeSettings, Tables};

impl Engine {
    /// Applies a change to the cluster state. Established connections survive (a new
    /// state's conntrack timeouts apply from each connection's next packet; the table's
    /// capacity and the seed of masquerade port choice stay those the engine was made
    /// with, while an [`Update::Replace`] does rebuild Maglev tables with its own seed);
    /// UDP connections whose endpoint is no longer serving are flushed, as kube-proxy's
    /// conntrack cleanup does (TCP and SCTP keep going to their endpoint until they close,
    /// so terminating pods drain). Round-robin turns restart for the changed Service (for
    /// every Service on `Replace`). Returns the number of connections flushed, or
    /// [`NotOwner`] for an engine that follows a shared control plane (change that one).
    ///
    /// ```
    /// use kubenat_core::{Engine, Hook, Instant, ServiceName, Update, Verdict, reference};
    ///
    /// let mut engine = Engine::new(&reference::cluster("nodoa"));
    /// // A pod asks kube-dns (10.10.1.10:53 over UDP) and is DNATed to 10.10.0.10:53.
    /// let mut query = Vec::new();
    /// etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 10], 64)
    ///     .udp(33000, 53)
    ///     .write(&mut query, b"query")
    ///     .unwrap();
    /// assert!(matches!(
    ///     engine.process(Hook::Prerouting, &mut query, Instant::ZERO),
    ///     Verdict::Translated(_)
    /// ));
    ///
    /// // The DNS pod is replaced: the EndpointSlice now lists 10.10.0.11.
    /// let mut slice = reference::cluster("nodoa")
    ///     .endpoint_slices
    ///     .into_iter()
    ///     .find(|s| s.service == ServiceName::new("kube-system", "kube-dns"))
    ///     .unwrap();
    /// slice.endpoints[0].addresses = vec!["10.10.0.11".parse().unwrap()];
    /// // The UDP flow to the old pod is flushed, so the next query reaches the new one.
    /// assert_eq!(engine.update(Update::UpsertEndpointSlice(Box::new(slice))), Ok(1));
    /// assert_eq!(engine.connections(), 0);
    /// ```
    pub fn update(&mut self, update: Update) -> Result<usize, NotOwner> {
        let Source::Own(plane) = &mut self.core.source else {
            return Err(NotOwner);
        };
        let replace = matches!(update, Update::Replace(_));
        // The snapshot read so far stays until the next is taken: the control plane writes
        // to tables of its own, and the engine's snapshot says which changes it has seen.
        plane.apply(update);
        let cluster = plane.snapshot().clone();
        if replace {
            // A resync brings new node settings and timeouts.
            self.core.proxy = ProxyConfig {
                conntrack_capacity: self.core.proxy.conntrack_capacity,
                seed: self.core.proxy.seed,
                ..plane.proxy().clone()
            };
            self.core.tables = Tables::new(
                self.core.tables.cluster().clone(),
                Arc::new(NodeSettings::from_proxy(&self.core.proxy)),
            );
            self.v4.conntrack.set_timeouts(self.core.proxy.timeouts);
            self.v6.conntrack.set_timeouts(self.core.proxy.timeouts);
        }
        Ok(self.take(cluster))
    }

    /// Reads `cluster` from now on: a snapshot of the cluster this engine's node is part
    /// of, as a [`ControlPlane`](crate::ControlPlane) published it. Round-robin turns
    /// restart for the service ports that changed since the snapshot read so far, and
    /// UDP connections to endpoints no longer serving are flushed, as [`Engine::update`]
    /// does; returns how many. An engine with a control plane of its own gives it up (its
    /// [`Engine::update`] then refuses changes).
    pub fn adopt(&mut self, cluster: Arc<ClusterTables>) -> usize {
        if matches!(self.core.source, Source::Own(_)) {
            self.core.source = Source::Adopted;
        }
        self.take(cluster)
    }

    /// Takes the latest snapshot of the publication the engine follows, if it changed.
    #[inline]
    pub(super) fn refresh(&mut self) {
        if let Source::Follow(publication) = &self.core.source
            && publication.generation() != self.core.tables.cluster().generation()
        {
            let latest = publication.load();
            self.take(latest);
        }
    }

    fn take(&mut self, cluster: Arc<ClusterTables>) -> usize {
        let since = self.core.tables.cluster().generation();
        let mut flush = false;
        let mut everything = false;
        let turns = &mut self.core.turns;
        turns.resize(cluster.port_slots());
        let remembered = cluster.each_change_since(since, |change| match change {
            Changed::All => everything = true,
            Changed::Ports { ids, udp } => {
                for &id in ids.iter() {
                    turns.reset(id);
                }
                flush |= udp;
            }
        });
        if everything || !remembered {
            turns.reset_all();
            flush = true;
        }
        self.core.tables.set_cluster(cluster);
        let tables = &self.core.tables;
        self.v4
            .ensure_in_use(&self.core.proxy, tables.uses_family(false));
        self.v6
            .ensure_in_use(&self.core.proxy, tables.uses_family(true));
        // Only UDP connections are flushed: a change to a TCP/SCTP-only Service costs no
        // walk over the conntrack table.
        if !flush {
            return 0;
        }
        flush_stale_udp(&mut self.v4.conntrack, tables)
            + flush_stale_udp(&mut self.v6.conntrack, tables)
    }
}

/// [`Engine::update`] on an engine that follows a shared control plane
/// ([`Engine::follow`], [`Engine::with_snapshot`], [`Engine::adopt`]): apply the change to
/// that control plane instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOwner;

impl std::fmt::Display for NotOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "this engine follows a shared control plane: apply the change to the control plane",
        )
    }
}

impl std::error::Error for NotOwner {}

/// Removes UDP connections to a service whose endpoint address is no longer serving,
/// unless the service has no serving endpoint at all (kube-proxy's `CleanStaleEntries`).
fn flush_stale_udp<A: Addr>(conntrack: &mut Conntrack<A>, tables: &Tables) -> usize {
    let stale: Vec<u32> = conntrack
        .indices()
        .filter(|&i| {
            let e = conntrack.entry(i);
            if e.original.protocol != Protocol::Udp.ip_number() {
                return false;
            }
            let Some((id, _)) =
                tables.lookup(e.original.dst.into(), Protocol::Udp, e.original.dport)
            else {
                return false;
            };
            let endpoints = &tables.port(id).endpoints;
            endpoints.any_serving() && !endpoints.is_serving(e.reply.src.into())
        })
        .collect();
    for &i in &stale {
        conntrack.remove(i);
    }
    stale.len()
}
