//! Packets of tracked connections: the conntrack hit at the arriving hook (DNAT or the
//! whole reverse NAT), and masquerade at POSTROUTING.

use super::family::{Family, FamilyState};
use super::new_connection::Missed;
use super::process::apply;
use super::{Ahead, Core};
use crate::addr::Addr;
use crate::conntrack::{Conntrack, Direction, Entry, Tuple};
use crate::meta::{Connection, PacketMeta};
use crate::packet::Parsed;
use crate::trace::{Trace, TraceStep};
use crate::transitions;
use crate::verdict::Verdict;
use crate::wire::Datagram;

impl Core {
    /// TCP, UDP and SCTP arriving or sent locally: conntrack first (from a batch's
    /// look-ahead where there is one), then the service rules ([`Core::new_connection`]).
    pub(super) fn ports<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        packet: &mut Datagram<A, &mut [u8]>,
        meta: &mut PacketMeta,
        parsed: &Parsed<A>,
        ahead: Option<Ahead>,
        trace: &mut impl Trace,
    ) -> Verdict {
        let tuple = parsed.tuple;
        let conntrack = &mut family.conntrack;
        let (found, hash) = match &ahead {
            Some(ahead) => (
                conntrack.lookup_ahead(&tuple, &ahead.conntrack),
                ahead.conntrack.hash(),
            ),
            None => {
                let hash = Conntrack::hash(&tuple);
                (conntrack.lookup_hashed(&tuple, hash), hash)
            }
        };
        if let Some((index, direction, entry)) = found {
            let expired = entry.expires <= self.now;
            let reopened = transitions::reopens(entry.state, direction, parsed.tcp_flags);
            if !expired && !reopened {
                // Read before `touch` writes the entry: the fields used, not a copy of it.
                let state = entry.state;
                let after = tracked(entry, direction, &tuple);
                let change = entry.change(direction);
                let masqueraded = direction == Direction::Original && entry.masquerade;
                if trace.enabled() {
                    trace.step(TraceStep::ConntrackHit { direction, state });
                }
                let next = transitions::next(state, direction, parsed.tcp_flags, parsed.sctp_chunk);
                conntrack.touch(index, next, self.now);
                if masqueraded {
                    meta.connection = Connection::masqueraded::<A>(index);
                }
                return apply(packet, parsed, &after, change, meta.checksum());
            }
            if reopened && trace.enabled() {
                trace.step(TraceStep::ConntrackReopened);
            }
            conntrack.remove(index);
        }
        if trace.enabled() {
            trace.step(TraceStep::ConntrackMiss);
        }
        let missed = Missed {
            tuple,
            hash,
            service: ahead.and_then(|ahead| ahead.service),
        };
        self.new_connection(family, packet, meta, parsed, missed, trace)
    }
}

/// POSTROUTING: masquerade connections marked for it. The packet's connection is the one
/// its metadata carries from the arriving hook (as netfilter's skb->ct) when that
/// connection still leaves DNAT with the packet's tuple; a packet that did not come through
/// an arriving hook with this metadata takes the masqueraded connection that leaves DNAT
/// with its tuple.
pub(super) fn masquerade<A: Addr>(
    conntrack: &Conntrack<A>,
    meta: &PacketMeta,
    packet: &mut Datagram<A, &mut [u8]>,
    parsed: &Parsed<A>,
) -> Verdict {
    let index = match meta.connection {
        Connection::NotMasqueraded => None,
        Connection::Masqueraded { v6, index }
            if v6 == (A::LEN == 16)
                && conntrack
                    .masqueraded(index)
                    .is_some_and(|entry| entry.post_dnat() == parsed.tuple) =>
        {
            Some(index)
        }
        _ => conntrack.lookup_masqueraded(&parsed.tuple),
    };
    match index {
        Some(index) => {
            let after = masqueraded(conntrack.entry(index), &parsed.tuple);
            let change = parsed.tuple.change_to(&after);
            apply(packet, parsed, &after, change, meta.checksum())
        }
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
