//! Cluster-state changes applied to a running engine.

use super::Engine;
use crate::addr::Addr;
use crate::compile::Update;
use crate::conntrack::Conntrack;
use crate::model::Protocol;
use crate::tables::Tables;

impl Engine {
    /// Applies a change to the cluster state. Established connections survive (a new
    /// state's conntrack timeouts apply from each connection's next packet; the table's
    /// capacity and the seed of masquerade port choice stay those the engine was made
    /// with, while an [`Update::Replace`] does rebuild Maglev tables with its own seed);
    /// UDP connections whose endpoint is no longer serving are flushed, as kube-proxy's
    /// conntrack cleanup does (TCP and SCTP keep going to their endpoint until they close,
    /// so terminating pods drain). Round-robin turns restart for the changed Service (for
    /// every Service on `Replace`). Returns the number of connections flushed.
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
    /// assert_eq!(engine.update(Update::UpsertEndpointSlice(Box::new(slice))), 1);
    /// assert_eq!(engine.connections(), 0);
    /// ```
    pub fn update(&mut self, update: Update) -> usize {
        let changed = self.core.map.apply(update);
        let proxy = self.core.map.proxy();
        self.v4.conntrack.set_timeouts(proxy.timeouts);
        self.v6.conntrack.set_timeouts(proxy.timeouts);
        let tables = self.core.map.tables();
        self.v4.ensure_in_use(proxy, tables.uses_family(false));
        self.v6.ensure_in_use(proxy, tables.uses_family(true));
        self.core.cursors.resize(tables.port_slots() * 2, 0);
        let touches_udp = match &changed {
            None => {
                self.core.cursors.fill(0);
                true
            }
            Some(name) => {
                let ids = self.core.map.ports_of(name);
                for id in ids {
                    self.core.cursors[id.0 as usize * 2] = 0;
                    self.core.cursors[id.0 as usize * 2 + 1] = 0;
                }
                ids.iter()
                    .any(|&id| tables.port(id).protocol == Protocol::Udp)
            }
        };
        // Only UDP connections are flushed: a change to a TCP/SCTP-only Service costs no
        // walk over the conntrack table.
        if !touches_udp {
            return 0;
        }
        flush_stale_udp(&mut self.v4.conntrack, tables)
            + flush_stale_udp(&mut self.v6.conntrack, tables)
    }
}

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
            let serving = &tables.port(id).endpoints.serving;
            !serving.is_empty() && !serving.contains(&e.reply.src.into())
        })
        .collect();
    for &i in &stale {
        conntrack.remove(i);
    }
    stale.len()
}
