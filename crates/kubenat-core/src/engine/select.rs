//! Endpoint selection for a new connection: session affinity, round robin or Maglev.

use std::net::SocketAddr;

use super::Core;
use super::family::FamilyState;
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::model::EndpointSelection;
use crate::policy::Plan;
use crate::tables::EndpointClass;
use crate::trace::Selection;

impl Core {
    /// Picks the endpoint of a new connection: the client's remembered one under session
    /// affinity, else round robin or Maglev.
    pub(super) fn select<A: Addr>(
        &mut self,
        family: &FamilyState<A>,
        plan: &Plan,
        tuple: &Tuple<A>,
    ) -> (SocketAddr, Selection, usize) {
        let tables = self.map.tables();
        // The port's line answers the common case; the full tables the rest.
        let line = tables.lines().line(plan.port);
        let candidates = line.endpoint_count(plan.class);
        let endpoints = || tables.port(plan.port).endpoints_of(plan.class);
        if line.affinity()
            && let Some(remembered) = family.affinity.get(&(tuple.src, plan.port), self.now)
            && endpoints().contains(&remembered)
        {
            return (remembered, Selection::Affinity, candidates);
        }
        let (index, selection) = match self.map.proxy().selection {
            EndpointSelection::Maglev { .. }
                if !tables.port(plan.port).maglev_of(plan.class).is_empty() =>
            {
                let maglev = tables.port(plan.port).maglev_of(plan.class);
                let hash = crate::tables::fixed_state().hash_one(tuple);
                let slot = (hash % maglev.len() as u64) as u32;
                (
                    maglev[slot as usize] as usize,
                    Selection::Maglev {
                        slot,
                        of: maglev.len(),
                    },
                )
            }
            _ => {
                let class = match plan.class {
                    EndpointClass::Cluster => 0,
                    EndpointClass::Local => 1,
                };
                let cursor = &mut self.cursors[plan.port.0 as usize * 2 + class];
                let index = *cursor as usize % candidates;
                *cursor = cursor.wrapping_add(1);
                (
                    index,
                    Selection::RoundRobin {
                        index,
                        of: candidates,
                    },
                )
            }
        };
        let endpoint = line
            .endpoint(plan.class, index)
            .unwrap_or_else(|| endpoints()[index]);
        (endpoint, selection, candidates)
    }
}
