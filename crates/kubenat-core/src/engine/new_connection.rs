//! New connections: the service rules decide, an endpoint is chosen, the connection is
//! tracked (with a masquerade port when it needs one) and the packet rewritten.

use std::ops::RangeInclusive;

use super::Core;
use super::family::{Family, FamilyState};
use super::process::apply;
use super::select::select;
use crate::addr::Addr;
use crate::conntrack::{Conntrack, Direction, InsertError, Tuple};
use crate::meta::{Connection, PacketMeta};
use crate::model::Protocol;
use crate::packet::Parsed;
use crate::policy::{self, Decision};
use crate::tables::ServicePortId;
use crate::trace::{MasqueradeReason, Trace, TraceStep};
use crate::transitions;
use crate::verdict::{DropReason, Verdict};
use crate::wire::Datagram;

/// What the conntrack lookup of a new connection's packet leaves for
/// [`Core::new_connection`].
pub(super) struct Missed<A> {
    /// `parsed.tuple`, passed rather than read again: reading it again cost 12
    /// instructions per new flow.
    pub(super) tuple: Tuple<A>,
    /// Its conntrack hash: the lookup missed, so the insert need not look it up again.
    pub(super) hash: u64,
    /// The batch's candidate for the service port of its destination.
    pub(super) service: Option<ServicePortId>,
}

impl Core {
    /// A packet that belongs to no live connection (`missed`): the service rules decide; a
    /// Service's endpoint is chosen, the connection tracked and the packet rewritten.
    pub(super) fn new_connection<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        packet: &mut Datagram<A, &mut [u8]>,
        meta: &mut PacketMeta,
        parsed: &Parsed<A>,
        missed: Missed<A>,
        trace: &mut impl Trace,
    ) -> Verdict {
        let Missed {
            tuple,
            hash,
            service,
        } = missed;
        let conntrack = &mut family.conntrack;
        let Some(state) = transitions::initial(tuple.protocol, parsed.tcp_flags, parsed.sctp_chunk)
        else {
            // INVALID to netfilter: not tracked, not translated.
            return Verdict::Accept;
        };
        let Some(protocol) = Protocol::from_ip_number(tuple.protocol) else {
            return Verdict::Accept;
        };
        let tracked = conntrack.capacity() > 0;
        // Linux cannot allocate the connection before any rule runs: a full table drops.
        if tracked && conntrack.len() == conntrack.capacity() {
            conntrack.expire(self.now);
            if conntrack.len() == conntrack.capacity() {
                return Verdict::Drop(DropReason::ConntrackFull);
            }
        }
        let decision = policy::decide(
            &self.tables,
            tuple.src,
            tuple.dst,
            protocol,
            tuple.dport,
            service,
            trace,
        );
        // The plan taken straight out of the decision: through an `Option` first, its
        // cache line and more was copied twice.
        let plan = match decision {
            Decision::Service(plan) => plan,
            Decision::Drop(reason) => return Verdict::Drop(reason),
            Decision::Reject(reason) => return Verdict::Reject(reason),
            Decision::Pass if !tracked => return Verdict::Accept,
            Decision::Pass => {
                // Not a Service: tracked as the kernel would, so masquerade never reuses
                // its tuple.
                let reply = tuple.reversed();
                return match conntrack.insert_absent(tuple, hash, reply, false, state, self.now) {
                    Ok(_) => {
                        if trace.enabled() {
                            trace.step(TraceStep::ConntrackCreated { state });
                        }
                        Verdict::Accept
                    }
                    Err(InsertError::Full) => Verdict::Drop(DropReason::ConntrackFull),
                    Err(InsertError::Clash) => Verdict::Accept,
                };
            }
        };
        let (endpoint, selection, candidates) = select(
            &self.tables,
            &mut self.turns,
            self.now,
            family,
            &plan,
            &tuple,
        );
        let Some(endpoint_ip) = A::from_ip(endpoint.ip()) else {
            return Verdict::Drop(DropReason::TupleClash);
        };
        if trace.enabled() {
            trace.step(TraceStep::EndpointChosen {
                endpoint,
                class: plan.class,
                selection,
                candidates,
            });
        }
        let masquerade = plan
            .masquerade
            .or_else(|| (endpoint.ip() == tuple.src.into()).then_some(MasqueradeReason::Hairpin));
        let mut reply = Tuple {
            src: endpoint_ip,
            sport: endpoint.port(),
            dst: tuple.src,
            dport: tuple.sport,
            protocol: tuple.protocol,
        };
        if let Some(reason) = masquerade {
            if trace.enabled() {
                trace.step(TraceStep::Masquerade { reason });
            }
            let tables = &self.tables;
            let Some(address) = tables
                .settings()
                .masquerade_address(A::LEN == 16)
                .and_then(A::from_ip)
            else {
                return Verdict::Drop(DropReason::NoMasqueradeAddress);
            };
            reply.dst = address;
            match free_port(
                &mut self.rng,
                &self.proxy.masquerade_ports,
                &family.conntrack,
                reply,
            ) {
                Some(port) => reply.dport = port,
                None => return Verdict::Drop(DropReason::MasqueradePortsExhausted),
            }
        }
        let index = match family.conntrack.insert_absent(
            tuple,
            hash,
            reply,
            masquerade.is_some(),
            state,
            self.now,
        ) {
            Ok(index) => index,
            Err(error) => return Verdict::Drop(refused(error)),
        };
        if masquerade.is_some() {
            meta.connection = Connection::masqueraded::<A>(index);
        }
        if trace.enabled() {
            trace.step(TraceStep::ConntrackCreated { state });
        }
        let tables = &self.tables;
        if plan.line.affinity()
            && let Some(timeout) = tables.port(plan.port).affinity_timeout
        {
            family.affinity.set(
                (tuple.src, plan.port),
                endpoint,
                self.now + timeout,
                self.now,
            );
        }
        let after = Tuple {
            dst: endpoint_ip,
            dport: endpoint.port(),
            ..tuple
        };
        let translation = family
            .conntrack
            .entry(index)
            .translation(Direction::Original);
        apply(packet, &after, translation, meta.checksum())
    }
}

/// Why a Service's new connection is dropped when conntrack refuses it.
#[inline(always)]
pub(super) fn refused(error: InsertError) -> DropReason {
    match error {
        InsertError::Full => DropReason::ConntrackFull,
        InsertError::Clash => DropReason::TupleClash,
    }
}

/// A masquerade source port of `range` that makes `reply` unique: a random start (Linux
/// `fully-random`, from `rng`), then the next ports, up to 128 tries as netfilter bounds
/// it. Apart from [`Core`]: the plan borrows the tables meanwhile.
fn free_port<A: Addr>(
    rng: &mut u64,
    range: &RangeInclusive<u16>,
    conntrack: &Conntrack<A>,
    mut reply: Tuple<A>,
) -> Option<u16> {
    let (low, high) = (*range.start(), *range.end());
    if low > high {
        return None;
    }
    let size = u32::from(high - low) + 1;
    let start = (splitmix64(rng) % u64::from(size)) as u32;
    for attempt in 0..size.min(128) {
        let port = low + ((start + attempt) % size) as u16;
        reply.dport = port;
        if !conntrack.contains(&reply) {
            return Some(port);
        }
    }
    None
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
