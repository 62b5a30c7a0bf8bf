//! One packet through one hook: parsed, then routed by what it carries.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::established::masquerade;
use super::family::{Family, FamilyState};
use super::{Ahead, Core, Engine};
use crate::addr::Addr;
use crate::icmp;
use crate::meta::{Connection, PacketMeta};
use crate::packet::{self, Fragment, Parsed, Transport};
use crate::policy::{self, Decision};
use crate::time::Instant;
use crate::trace::{Trace, TraceStep};
use crate::verdict::{DropReason, Hook, Verdict};
use crate::wire::{ICMPV4, ICMPV6};

impl Engine {
    /// One packet through `hook`, on the family its version names, with what a batch
    /// looked up ahead of it in that family's conntrack (at an arriving hook).
    pub(super) fn hook(
        &mut self,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        now: Instant,
        ahead: Option<Ahead>,
        trace: &mut impl Trace,
    ) -> Verdict {
        self.core.now = self.core.now.max(now);
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.core.hook(
                Ipv4Addr::state(&mut self.v4, &mut self.v6),
                hook,
                packet,
                meta,
                ahead,
                trace,
            ),
            Some(6) => self.core.hook(
                Ipv6Addr::state(&mut self.v4, &mut self.v6),
                hook,
                packet,
                meta,
                ahead,
                trace,
            ),
            _ => Verdict::Drop(DropReason::MalformedIpHeader),
        }
    }
}

impl Core {
    /// Parses the packet and hands it to the job for what it carries at `hook`.
    fn hook<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        ahead: Option<Ahead>,
        trace: &mut impl Trace,
    ) -> Verdict {
        let (mut packet, parsed) = match packet::parse::<A, _>(packet) {
            Ok(read) => read,
            Err(reason) => return Verdict::Drop(reason),
        };
        let packet = &mut packet;
        if hook == Hook::Prerouting
            && let Err(reason) = packet::verify_arriving(packet, &parsed, meta.checksum())
        {
            meta.connection = Connection::NotMasqueraded;
            return Verdict::Drop(reason);
        }
        if trace.enabled() {
            trace.step(TraceStep::Received {
                hook,
                flow: parsed.tuple.flow(),
            });
        }
        match (parsed.transport, hook) {
            (Transport::Ports, _) if parsed.fragment == Fragment::Later => {
                self.later_fragment(family, hook, packet, &parsed)
            }
            (Transport::Ports, _) => {
                let verdict = match hook {
                    Hook::Postrouting => masquerade(&family.conntrack, meta, packet, &parsed),
                    Hook::Prerouting | Hook::Output => {
                        // Until the rules say otherwise, the packet leaves unmarked: an
                        // untracked or invalid packet must not be taken at POSTROUTING
                        // for another connection that shares its tuple.
                        meta.connection = Connection::NotMasqueraded;
                        self.ports(family, packet, meta, &parsed, ahead, trace)
                    }
                };
                if parsed.fragment == Fragment::First
                    && matches!(verdict, Verdict::Accept | Verdict::Translated(_))
                {
                    self.remember_first_fragment(family, &parsed);
                }
                verdict
            }
            (Transport::IcmpError, Hook::Prerouting | Hook::Output) => {
                match icmp::translate_error(&family.conntrack, packet, &parsed, self.now) {
                    Ok(Some((direction, after))) => {
                        if trace.enabled() {
                            trace.step(TraceStep::IcmpErrorRelated { direction });
                        }
                        Verdict::Translated(parsed.tuple.rewrite_to(&after).of_icmp_error())
                    }
                    Ok(None) => Verdict::Accept,
                    Err(reason) => Verdict::Drop(reason),
                }
            }
            // New packets without ports (echo requests, GRE, ESP...) still meet nftables
            // mode's guards on the service ranges; other ICMP (echo replies, neighbour
            // discovery) is never new.
            (Transport::EchoRequest, Hook::Prerouting | Hook::Output) => {
                self.portless(&parsed, trace)
            }
            (Transport::Other, Hook::Prerouting | Hook::Output)
                if !matches!(parsed.tuple.protocol, ICMPV4 | ICMPV6) =>
            {
                self.portless(&parsed, trace)
            }
            _ => Verdict::Accept,
        }
    }

    fn portless<A: Addr>(&self, parsed: &Parsed<A>, trace: &mut impl Trace) -> Verdict {
        match policy::decide_portless(&self.tables, parsed.tuple.dst.into(), trace) {
            Decision::Drop(reason) => Verdict::Drop(reason),
            Decision::Reject(reason) => Verdict::Reject(reason),
            Decision::Pass | Decision::Service(_) => Verdict::Accept,
        }
    }
}
