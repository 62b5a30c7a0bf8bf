//! Packets of tracked connections: the conntrack hit at the arriving hook (DNAT or the
//! whole reverse NAT), and masquerade at POSTROUTING.

use super::family::{Family, FamilyState};
use super::new_connection::Missed;
use super::process::apply;
use super::{Ahead, Core};
use crate::addr::Addr;
use crate::checksum::TupleChange;
use crate::conntrack::{Conntrack, Direction, Entry, Lookahead, State, Tuple};
use crate::meta::{Connection, PacketMeta};
use crate::packet::{self, Parsed};
use crate::time::Instant;
use crate::trace::{Trace, TraceStep};
use crate::transitions;
use crate::verdict::{Hook, Rewrite, Verdict};
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
        if let Some(found @ (index, ..)) = found {
            match continued(found, parsed, self.now) {
                Ok(hit) => {
                    if trace.enabled() {
                        let (direction, state) = (hit.direction, hit.state);
                        trace.step(TraceStep::ConntrackHit { direction, state });
                    }
                    return hit.apply(conntrack, packet, meta, self.now);
                }
                Err(reopened) => {
                    if reopened && trace.enabled() {
                        trace.step(TraceStep::ConntrackReopened);
                    }
                    conntrack.remove(index);
                }
            }
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

    /// The common packet on a short path of its own, ahead of [`Core::hook`]: plain IPv4
    /// TCP or UDP at an arriving hook, with right checksums, continuing the connection
    /// the batch's look-ahead found (and still valid: no key removed since). `None` for
    /// anything else, before anything changed: the packet then takes the whole path. Kept
    /// apart, the common case compiles to about half the instructions it takes inside the
    /// general path, where the rarer cases' state keeps most of it in memory.
    #[inline(always)]
    pub(super) fn continue_tracked<A: Addr>(
        &mut self,
        conntrack: &mut Conntrack<A>,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        ahead: &Lookahead,
    ) -> Option<Verdict> {
        let (mut packet, parsed) =
            packet::parse_plain_arriving::<A>(hook, packet, meta.checksum())?;
        let found = conntrack.confirm_ahead(&parsed.tuple, ahead)?;
        let hit = continued(found, &parsed, self.now).ok()?;
        meta.connection = Connection::NotMasqueraded;
        Some(hit.apply(conntrack, &mut packet, meta, self.now))
    }
}

/// A packet that continues its tracked connection: what the lookup found and what the
/// packet does to the connection, read before the entry is written.
struct Continued<A> {
    index: u32,
    direction: Direction,
    state: State,
    next: State,
    after: Tuple<A>,
    translation: (TupleChange, Rewrite),
    masqueraded: bool,
}

/// Whether a packet continues the connection its lookup `found`: `Err(reopened)` when the
/// entry's timer ran out by `now`, or the packet (a SYN) reopens a closing connection;
/// the packet is then new.
#[inline(always)]
fn continued<A: Addr>(
    (index, direction, entry): (u32, Direction, &Entry<A>),
    parsed: &Parsed<A>,
    now: Instant,
) -> Result<Continued<A>, bool> {
    let state = entry.state;
    let reopened = transitions::reopens(state, direction, parsed.tcp_flags);
    if entry.expires <= now || reopened {
        return Err(reopened);
    }
    Ok(Continued {
        index,
        direction,
        state,
        next: transitions::next(state, direction, parsed.tcp_flags, parsed.sctp_chunk),
        after: tracked(entry, direction, &parsed.tuple),
        translation: entry.translation(direction),
        masqueraded: direction == Direction::Original && entry.masquerade,
    })
}

impl<A: Addr> Continued<A> {
    /// Moves the connection on and rewrites the packet (DNAT, or the whole reverse NAT;
    /// masquerade waits for POSTROUTING, which the metadata tells).
    #[inline(always)]
    fn apply(
        self,
        conntrack: &mut Conntrack<A>,
        packet: &mut Datagram<A, &mut [u8]>,
        meta: &mut PacketMeta,
        now: Instant,
    ) -> Verdict {
        conntrack.touch(self.index, self.next, now);
        if self.masqueraded {
            meta.connection = Connection::masqueraded::<A>(self.index);
        }
        apply(packet, &self.after, self.translation, meta.checksum())
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
            let translation = (
                parsed.tuple.change_to(&after),
                parsed.tuple.rewrite_to(&after),
            );
            apply(packet, &after, translation, meta.checksum())
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
