//! Fragments: a first fragment's ports are remembered so the fragments after it, which
//! carry none, follow its connection.

use std::time::Duration;

use super::Core;
use super::established::{masqueraded, tracked};
use super::family::FamilyState;
use crate::addr::Addr;
use crate::conntrack::Tuple;
use crate::packet::Parsed;
use crate::verdict::{DropReason, Hook, Verdict};
use crate::wire::Datagram;

/// How long the ports of a first fragment are remembered for the fragments after it
/// (Linux `ipfrag_time`).
const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A datagram's fragments share these.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct FragmentKey<A> {
    src: A,
    dst: A,
    protocol: u8,
    id: u32,
}

impl Core {
    /// Remembers a first fragment's ports for the fragments after it.
    pub(super) fn remember_first_fragment<A: Addr>(
        &self,
        family: &mut FamilyState<A>,
        parsed: &Parsed<A>,
    ) {
        let t = parsed.tuple;
        let key = FragmentKey {
            src: t.src,
            dst: t.dst,
            protocol: t.protocol,
            id: parsed.fragment_id,
        };
        let expires = self.now + FRAGMENT_TIMEOUT;
        family
            .fragments
            .set(key, (t.sport, t.dport), expires, self.now);
    }

    /// A fragment after the first: it carries no ports, so it follows the connection its
    /// first fragment belonged to, or is dropped when that was never seen.
    pub(super) fn later_fragment<A: Addr>(
        &self,
        family: &FamilyState<A>,
        hook: Hook,
        packet: &mut Datagram<A, &mut [u8]>,
        parsed: &Parsed<A>,
    ) -> Verdict {
        let t = parsed.tuple;
        let key = FragmentKey {
            src: t.src,
            dst: t.dst,
            protocol: t.protocol,
            id: parsed.fragment_id,
        };
        let Some((sport, dport)) = family.fragments.get(&key, self.now) else {
            return Verdict::Drop(DropReason::Fragment);
        };
        let tuple = Tuple { sport, dport, ..t };
        let conntrack = &family.conntrack;
        let after = match hook {
            Hook::Postrouting => conntrack
                .lookup_masqueraded(&tuple)
                .map(|i| masqueraded(conntrack.entry(i), &tuple)),
            Hook::Prerouting | Hook::Output => conntrack
                .lookup_live(&tuple, self.now)
                .map(|(i, direction)| tracked(conntrack.entry(i), direction, &tuple)),
        };
        match after {
            Some(after) if after != tuple => {
                // Addresses only: the transport header (and its checksum) is in the first
                // fragment.
                packet.set_addresses(after.src, after.dst);
                Verdict::Translated(tuple.rewrite_to(&after))
            }
            _ => Verdict::Accept,
        }
    }
}
