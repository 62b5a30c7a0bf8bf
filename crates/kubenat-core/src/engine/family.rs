//! The per-family connection state: conntrack, session affinity and fragments.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::fragments::FragmentKey;
use crate::addr::Addr;
use crate::conntrack::Conntrack;
use crate::expiring::ExpiringMap;
use crate::model::ProxyConfig;
use crate::tables::ServicePortId;

/// Per-family connection state.
pub(super) struct FamilyState<A> {
    pub(super) conntrack: Conntrack<A>,
    /// sessionAffinity ClientIP: (client, service port) -> endpoint.
    pub(super) affinity: ExpiringMap<(A, ServicePortId), SocketAddr>,
    /// First fragments' ports, so later fragments follow their connection
    /// (netfilter reassembles; a per-packet engine remembers, as Cilium does).
    pub(super) fragments: ExpiringMap<FragmentKey<A>, (u16, u16)>,
    /// Whether the conntrack table gets its memory off the packet path
    /// ([`crate::offload`]).
    pub(super) offloaded: bool,
}

impl<A: Addr> FamilyState<A> {
    /// Capped at `capacity` connections (the tables grow as they come); a family no
    /// Service and no node address uses gets no table at all (its packets can meet no NAT
    /// rule, so they pass untracked).
    pub(super) fn new(proxy: &ProxyConfig, in_use: bool) -> Self {
        let capacity = if in_use { proxy.conntrack_capacity } else { 0 };
        FamilyState {
            conntrack: Conntrack::new(capacity, proxy.timeouts),
            // Clients with live affinity are far fewer than connections.
            affinity: ExpiringMap::new((capacity / 8).max(1024)),
            fragments: ExpiringMap::new((capacity / 16).max(1024)),
            offloaded: false,
        }
    }

    /// Has the conntrack table ask for its memory ahead, once the family is in use.
    pub(super) fn offload_memory(&mut self) {
        self.offloaded = true;
        self.conntrack.offload_memory();
    }

    /// Room for `connections` connections, affinity clients and fragment heads, each up
    /// to its table's capacity; nothing for a family not in use.
    pub(super) fn reserve(&mut self, connections: usize) {
        if self.conntrack.capacity() == 0 {
            return;
        }
        self.conntrack.reserve(connections);
        self.affinity.reserve(connections);
        self.fragments.reserve(connections);
    }

    /// Bytes held by the conntrack, affinity and fragment tables.
    pub(super) fn bytes(&self) -> usize {
        self.conntrack.bytes() + self.affinity.bytes() + self.fragments.bytes()
    }

    /// Gives a family that came into use its tables (an update, never a packet, does this).
    pub(super) fn ensure_in_use(&mut self, proxy: &ProxyConfig, in_use: bool) {
        if in_use && self.conntrack.capacity() == 0 {
            let offloaded = self.offloaded;
            *self = FamilyState::new(proxy, true);
            if offloaded {
                self.offload_memory();
            }
        }
    }
}

/// Picks the per-family state of an engine for the family `Self`.
pub(super) trait Family: Addr {
    fn state<'a>(
        v4: &'a mut FamilyState<Ipv4Addr>,
        v6: &'a mut FamilyState<Ipv6Addr>,
    ) -> &'a mut FamilyState<Self>;
}

impl Family for Ipv4Addr {
    fn state<'a>(
        v4: &'a mut FamilyState<Ipv4Addr>,
        _: &'a mut FamilyState<Ipv6Addr>,
    ) -> &'a mut FamilyState<Self> {
        v4
    }
}

impl Family for Ipv6Addr {
    fn state<'a>(
        _: &'a mut FamilyState<Ipv4Addr>,
        v6: &'a mut FamilyState<Ipv6Addr>,
    ) -> &'a mut FamilyState<Self> {
        v6
    }
}
