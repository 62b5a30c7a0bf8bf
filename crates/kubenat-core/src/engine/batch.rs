//! Batches: the tuples of many packets hashed and their table lines prefetched ahead of
//! processing, so the memory latency of one lookup overlaps the others'.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::{Ahead, Engine, Path};
use crate::conntrack::{Conntrack, Tuple};
use crate::flow_index::prefetch;
use crate::meta::PacketMeta;
use crate::model::Protocol;
use crate::packet;
use crate::port_lines::{PortLine, frontend_hash};
use crate::tables::{EndpointClass, ServicePortId};
use crate::time::Instant;
use crate::trace::NoTrace;
use crate::verdict::{Hook, Verdict};

impl Engine {
    /// Runs a batch through one hook at one time: `verdicts[i]` is the verdict of
    /// `packets[i]` with metadata `metas[i]`, as [`Engine::process_with`] gives it. Stops
    /// at the shortest of the three slices.
    ///
    /// Faster than one call per packet: like DPDK's bulk hash lookup, it first hashes every
    /// packet's tuple and prefetches the conntrack index buckets, then prefetches the
    /// entries those buckets name or, for a packet whose bucket names none (a new flow),
    /// the service index bucket of its destination, then that service port's line, and
    /// only then processes the packets, so the memory latency of one lookup overlaps the
    /// others'.
    pub fn process_batch(
        &mut self,
        hook: Hook,
        packets: &mut [&mut [u8]],
        metas: &mut [PacketMeta],
        now: Instant,
        verdicts: &mut [Verdict],
    ) {
        self.run_batch::<false>(hook, packets, metas, now, verdicts);
    }

    /// [`Engine::process_batch`] over both hooks of `path`, as [`Engine::process_path`]
    /// runs one packet: `verdicts[i]` is what `process_path` gives `packets[i]` with
    /// metadata `metas[i]`, counted once. For a datapath that hands the engine each packet
    /// once, between arriving and leaving (`kubenat run`).
    pub fn process_path_batch(
        &mut self,
        path: Path,
        packets: &mut [&mut [u8]],
        metas: &mut [PacketMeta],
        now: Instant,
        verdicts: &mut [Verdict],
    ) {
        self.run_batch::<true>(path.first_hook(), packets, metas, now, verdicts);
    }

    /// The batch through `hook`, and through POSTROUTING after it when `PATH`.
    #[inline(always)]
    fn run_batch<const PATH: bool>(
        &mut self,
        hook: Hook,
        packets: &mut [&mut [u8]],
        metas: &mut [PacketMeta],
        now: Instant,
        verdicts: &mut [Verdict],
    ) {
        // Five passes over each stride of packets, as DPDK's bulk lookup stages them: each
        // pass issues the loads the next one needs, a whole stride before it needs them.
        // Conntrack bucket; conntrack entry or service bucket; service line; the conntrack
        // bucket of the reply tuple the new connection will likely get; processing.
        const STRIDE: usize = 64;
        self.refresh();
        // What `hook` does for each packet, done once for the short path's sake.
        self.core.now = self.core.now.max(now);
        let n = packets.len().min(metas.len()).min(verdicts.len());
        let arriving = hook != Hook::Postrouting;
        // The batch's snapshot, held apart from the engine: the lines its look-ahead finds
        // stay borrowed while the engine processes the packets, which then need not find
        // them again.
        let cluster = Arc::clone(self.core.tables.cluster());
        let lines = cluster.lines();
        for start in (0..n).step_by(STRIDE) {
            let end = (start + STRIDE).min(n);
            let packets = &mut packets[start..end];
            let mut flows = [None; STRIDE];
            let mut services = [None; STRIDE];
            let mut ports = [None; STRIDE];
            if arriving {
                for (flow, packet) in flows.iter_mut().zip(&*packets) {
                    *flow = self.prefetch_index(packet);
                }
            }
            let mut aheads = [None; STRIDE];
            if arriving {
                self.v4.conntrack.begin_look_ahead();
                self.v6.conntrack.begin_look_ahead();
            }
            for (i, flow) in flows.iter().enumerate().take(packets.len()) {
                if let Some((v6, hash)) = *flow {
                    let ahead = match v6 {
                        false => self.v4.conntrack.look_ahead(hash),
                        true => self.v6.conntrack.look_ahead(hash),
                    };
                    if ahead.looks_new() {
                        services[i] = self.prefetch_service_index(packets[i], v6);
                    }
                    aheads[i] = Some(Ahead {
                        conntrack: ahead,
                        service: None,
                    });
                }
            }
            // The arrays are walked by reference: moved into the iterators, each pass
            // copied a whole array first.
            for ((port, service), ahead) in ports.iter_mut().zip(&services).zip(&mut aheads) {
                if let Some((hash, _)) = *service
                    && let Some((id, line)) = lines.prefetch_line(hash)
                    && let Some(turn) = self.core.turns.get(id, EndpointClass::Cluster)
                {
                    prefetch(turn);
                    *port = Some((id, line));
                    if let Some(ahead) = ahead {
                        ahead.service = Some(id);
                    }
                }
            }
            for (port, service) in ports.iter().zip(&services) {
                if let Some((id, line)) = *port
                    && let Some((_, Some(tuple))) = service
                {
                    self.prefetch_likely_reply(tuple, id, line);
                }
            }
            let metas = &mut metas[start..end];
            let verdicts = &mut verdicts[start..end];
            let packets = packets.iter_mut().zip(metas).zip(verdicts).zip(&aheads);
            for (i, (((packet, meta), verdict), ahead)) in packets.enumerate() {
                // The short path reads plain IPv4 only: an IPv6 packet (whose look-ahead
                // was the IPv6 table's) fails its first test.
                let continued = match ahead {
                    Some(ahead) if !ahead.conntrack.looks_new() => {
                        let conntrack = &mut self.v4.conntrack;
                        self.core
                            .continue_tracked(conntrack, hook, packet, meta, &ahead.conntrack)
                    }
                    Some(ahead) => self.core.open_plain(
                        &mut self.v4,
                        hook,
                        packet,
                        meta,
                        &ahead.conntrack,
                        ports[i],
                    ),
                    None => None,
                };
                // Written in place and counted there: nothing per packet is copied twice.
                *verdict = match continued {
                    Some(verdict) => verdict,
                    None => self.hook(hook, packet, meta, now, *ahead, &mut NoTrace),
                };
                if PATH {
                    *verdict = self.leave(*verdict, packet, meta, now, &mut NoTrace);
                }
                self.counters.record(verdict);
            }
        }
    }

    /// Hashes a packet's tuple from a quick look at its headers and prefetches its
    /// conntrack index bucket; returns (is IPv6, hash). Only a hint: processing parses the
    /// packet properly.
    #[inline(always)]
    fn prefetch_index(&self, packet: &[u8]) -> Option<(bool, u64)> {
        match packet.first()? >> 4 {
            4 => {
                let hash = Conntrack::hash(&packet::peek_tuple::<Ipv4Addr>(packet)?);
                self.v4.conntrack.prefetch_index(hash);
                Some((false, hash))
            }
            6 => {
                let hash = Conntrack::hash(&packet::peek_tuple::<Ipv6Addr>(packet)?);
                self.v6.conntrack.prefetch_index(hash);
                Some((true, hash))
            }
            _ => None,
        }
    }

    /// Prefetches the service index bucket of a packet's destination (it looked new at
    /// the conntrack stage); returns the hash and, for IPv4, the tuple peeked (for
    /// [`Engine::prefetch_likely_reply`], which then need not peek again). A hint only,
    /// like [`Engine::prefetch_index`].
    #[inline(always)]
    fn prefetch_service_index(
        &self,
        packet: &[u8],
        v6: bool,
    ) -> Option<(u64, Option<Tuple<Ipv4Addr>>)> {
        let (address, protocol, port, v4) = if v6 {
            let t = packet::peek_tuple::<Ipv6Addr>(packet)?;
            (IpAddr::V6(t.dst), t.protocol, t.dport, None)
        } else {
            let t = packet::peek_tuple::<Ipv4Addr>(packet)?;
            (IpAddr::V4(t.dst), t.protocol, t.dport, Some(t))
        };
        let hash = frontend_hash(address, Protocol::from_ip_number(protocol)?, port);
        self.core.tables.lines().prefetch_index(hash);
        Some((hash, v4))
    }

    /// Prefetches the conntrack bucket of the reply tuple a new IPv4 connection (its
    /// peeked tuple `t`) to service port `id` (its `line`) gets when the line alone picks
    /// its endpoint, as the short path does ([`PortLine::plain_round_robin`]), and no
    /// masquerade applies (the common case; a wrong guess costs one useless load).
    #[inline(always)]
    fn prefetch_likely_reply(&self, t: &Tuple<Ipv4Addr>, id: ServicePortId, line: &PortLine) {
        if let Some(&turn) = self.core.turns.get(id, EndpointClass::Cluster)
            && let Some((endpoint, port)) = line.plain_round_robin(turn)
        {
            let reply = Tuple {
                src: endpoint,
                sport: port,
                dst: t.src,
                dport: t.sport,
                protocol: t.protocol,
            };
            self.v4.conntrack.prefetch_index(Conntrack::hash(&reply));
        }
    }
}
