//! Packets of tracked connections: the conntrack hit at the arriving hook (DNAT or the
//! whole reverse NAT), and masquerade at POSTROUTING.

use super::family::{Family, FamilyState};
use super::{Core, apply};
use crate::addr::Addr;
use crate::conntrack::{Conntrack, Direction, Entry, Tuple};
use crate::packet::Parsed;
use crate::trace::{Trace, TraceStep};
use crate::transitions;
use crate::verdict::Verdict;

impl Core {
    /// TCP, UDP and SCTP arriving or sent locally: conntrack first, then the service rules
    /// ([`Core::new_connection`]).
    pub(super) fn ports<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        packet: &mut [u8],
        parsed: &Parsed<A>,
        trace: &mut impl Trace,
    ) -> Verdict {
        let tuple = parsed.tuple;
        let conntrack = &mut family.conntrack;
        if let Some((index, direction, &entry)) = conntrack.lookup_entry(&tuple) {
            let expired = entry.expires <= self.now;
            let reopened = transitions::reopens(entry.state, direction, parsed.tcp_flags);
            if !expired && !reopened {
                if trace.enabled() {
                    trace.step(TraceStep::ConntrackHit {
                        direction,
                        state: entry.state,
                    });
                }
                let state =
                    transitions::next(entry.state, direction, parsed.tcp_flags, parsed.sctp_chunk);
                conntrack.touch(index, state, self.now);
                let after = tracked(&entry, direction, &tuple);
                let masquerade =
                    (direction == Direction::Original && entry.masquerade).then_some(index);
                family.last = Some((after, masquerade));
                return apply(packet, parsed, &after);
            }
            if reopened && trace.enabled() {
                trace.step(TraceStep::ConntrackReopened);
            }
            conntrack.remove(index);
        }
        if trace.enabled() {
            trace.step(TraceStep::ConntrackMiss);
        }
        self.new_connection(family, packet, parsed, tuple, trace)
    }
}

/// POSTROUTING: masquerade connections marked for it. The packet's connection is the one
/// the arriving hook just handled when the tuples agree (as netfilter's skb->ct), else the
/// masqueraded connection that leaves DNAT with this tuple.
pub(super) fn masquerade<A: Addr>(
    conntrack: &Conntrack<A>,
    last: Option<(Tuple<A>, Option<u32>)>,
    packet: &mut [u8],
    parsed: &Parsed<A>,
) -> Verdict {
    let index = match last {
        Some((tuple, index)) if tuple == parsed.tuple => index,
        _ => conntrack.lookup_masqueraded(&parsed.tuple),
    };
    match index {
        Some(index) => apply(
            packet,
            parsed,
            &masqueraded(conntrack.entry(index), &parsed.tuple),
        ),
        None => Verdict::Accept,
    }
}

/// A tracked packet's tuple after the arriving hook: DNAT for the original direction
/// (masquerade waits for POSTROUTING), the whole reverse NAT for replies.
pub(super) fn tracked<A: Addr>(
    entry: &Entry<A>,
    direction: Direction,
    tuple: &Tuple<A>,
) -> Tuple<A> {
    match direction {
        Direction::Original => Tuple {
            dst: entry.reply.src,
            dport: entry.reply.sport,
            ..*tuple
        },
        Direction::Reply => entry.original.reversed(),
    }
}

/// An original-direction tuple after masquerade.
pub(super) fn masqueraded<A: Addr>(entry: &Entry<A>, tuple: &Tuple<A>) -> Tuple<A> {
    Tuple {
        src: entry.reply.dst,
        sport: entry.reply.dport,
        ..*tuple
    }
}
