//! Endpoint selection for a new connection: session affinity, round robin or Maglev.

use std::net::SocketAddr;

use super::Turns;
use super::family::FamilyState;
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::policy::Plan;
use crate::tables::{EndpointClass, Tables};
use crate::time::Instant;
use crate::trace::Selection;

/// Picks the endpoint of a new connection: the client's remembered one under session
/// affinity, else round robin or Maglev (`turns`: the round-robin turns). Apart
/// from [`Core`](super::Core): the plan borrows the tables while the turns change.
pub(super) fn select<A: Addr>(
    tables: &Tables,
    turns: &mut Turns,
    now: Instant,
    family: &FamilyState<A>,
    plan: &Plan<'_>,
    tuple: &Tuple<A>,
) -> (SocketAddr, Selection, usize) {
    let node = &tables.settings().node_name;
    // The port's line answers the common case; the full tables the rest.
    let line = plan.line;
    let endpoints = || tables.endpoints_of(plan.port, plan.class);
    let candidates = match plan.class {
        EndpointClass::Cluster => line.cluster_endpoints(),
        EndpointClass::Local => endpoints().len(),
    };
    if line.affinity()
        && let Some(remembered) = family.affinity.get(&(tuple.src, plan.port), now)
        && endpoints().contains(remembered)
    {
        return (remembered, Selection::Affinity, candidates);
    }
    // Round robin compiles no Maglev tables.
    let maglev = || tables.port(plan.port).maglev_of(plan.class, node);
    let (index, selection) = match line.maglev() {
        true if !maglev().is_empty() => {
            let maglev = maglev();
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
            // Every port of the snapshot has its turns (taken with it); a spare keeps a
            // port past them from panicking.
            let mut spare = 0;
            let cursor = turns.get_mut(plan.port, plan.class).unwrap_or(&mut spare);
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
    let endpoint = match plan.class {
        EndpointClass::Cluster => line.cluster_endpoint(index),
        EndpointClass::Local => None,
    }
    .or_else(|| endpoints().get(index))
    .expect("the index is below the endpoint count");
    (endpoint, selection, candidates)
}
