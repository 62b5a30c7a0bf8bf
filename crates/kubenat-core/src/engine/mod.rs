//! The packet path: conntrack first, then the compiled service tables, then the rewrite.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::addr::Addr;
use crate::compile::{ServiceMap, Update};
use crate::conntrack::{Conntrack, Direction, Entry, InsertError, Tuple};
use crate::counters::Counters;
use crate::expiring::ExpiringMap;
use crate::flow_index::prefetch;
use crate::icmp;
use crate::model::{ClusterState, EndpointSelection, Protocol, ProxyConfig};
use crate::packet::{self, Fragment, Parsed, Transport};
use crate::policy::{self, Decision, Plan};
use crate::port_lines::frontend_hash;
use crate::reject::{self, ReplyError};
use crate::tables::{EndpointClass, ServicePortId, Tables};
use crate::time::Instant;
use crate::trace::{MasqueradeReason, NoTrace, Selection, Trace, TraceStep};
use crate::transitions;
use crate::verdict::{DropReason, Flow, Hook, Translation, Verdict};

/// The way a packet crosses the node, for callers that run both hooks in one call
/// ([`Engine::process_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Arriving and leaving again: PREROUTING, then POSTROUTING.
    Forward,
    /// Sent by the node itself: OUTPUT, then POSTROUTING.
    LocalOut,
}

/// How long the ports of a first fragment are remembered for the fragments after it
/// (Linux `ipfrag_time`).
const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A datagram's fragments share these.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragmentKey<A> {
    src: A,
    dst: A,
    protocol: u8,
    id: u32,
}

/// Per-family connection state.
struct FamilyState<A> {
    conntrack: Conntrack<A>,
    /// sessionAffinity ClientIP: (client, service port) -> endpoint.
    affinity: ExpiringMap<(A, ServicePortId), SocketAddr>,
    /// First fragments' ports, so later fragments follow their connection
    /// (netfilter reassembles; a per-packet engine remembers, as Cilium does).
    fragments: ExpiringMap<FragmentKey<A>, (u16, u16)>,
    /// The last packet through PREROUTING/OUTPUT: the tuple it left with and, when its
    /// connection is to be masqueraded, that connection. netfilter carries the connection
    /// with the packet (skb->ct), so POSTROUTING knows it even when two connections leave
    /// DNAT with the same tuple.
    last: Option<(Tuple<A>, Option<u32>)>,
}

impl<A: Addr> FamilyState<A> {
    /// Sized for `capacity` connections; a family no Service and no node address uses gets
    /// no table at all (its packets can meet no NAT rule, so they pass untracked).
    fn new(proxy: &ProxyConfig, in_use: bool) -> Self {
        let capacity = if in_use { proxy.conntrack_capacity } else { 0 };
        FamilyState {
            conntrack: Conntrack::new(capacity, proxy.timeouts),
            // Clients with live affinity are far fewer than connections.
            affinity: ExpiringMap::new((capacity / 8).max(1024)),
            fragments: ExpiringMap::new((capacity / 16).max(1024)),
            last: None,
        }
    }

    /// Gives a family that came into use its tables (an update, never a packet, does this).
    fn ensure_in_use(&mut self, proxy: &ProxyConfig, in_use: bool) {
        if in_use && self.conntrack.capacity() == 0 {
            *self = FamilyState::new(proxy, true);
        }
    }
}

/// Picks the per-family state of an engine for the family `Self`.
trait Family: Addr {
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

/// Everything but the per-family connection state.
struct Core {
    map: ServiceMap,
    /// Round-robin turn per (service port, endpoint class).
    cursors: Vec<u32>,
    /// Latest time seen: time never goes backwards inside the engine.
    now: Instant,
    /// splitmix64 state for masquerade ports.
    rng: u64,
}

/// One node's kube-proxy data plane: compiled tables plus connection tracking.
///
/// Sans-IO: packets and time come in as arguments; nothing here reads a clock, opens a
/// socket or allocates per packet. IPv4 and IPv6 are both handled, each with its own
/// conntrack table of [`ProxyConfig::conntrack_capacity`](crate::ProxyConfig::conntrack_capacity)
/// connections.
///
/// An embedding loop:
///
/// 1. [`Engine::new`] with the node's [`ClusterState`];
/// 2. every packet through [`Engine::process`] at the hook where it is (or
///    [`Engine::process_path`] for both hooks at once); forward it on
///    [`Verdict::Accept`] and [`Verdict::Translated`] (rewritten in place), discard it on
///    [`Verdict::Drop`], and on [`Verdict::Reject`] send [`Engine::write_reject_reply`]'s
///    reply instead;
/// 3. API-server changes through [`Engine::update`];
/// 4. [`Engine::handle_timeout`] when [`Engine::poll_at`] says, to expire connections.
///
/// `now` must come from one monotonic clock (see [`Instant`]); an earlier time than one
/// already seen is taken as the latest seen.
///
/// ```
/// use kubenat_core::{ClusterState, Engine, Hook, Instant, Verdict};
///
/// let mut engine = Engine::new(&ClusterState::default());
/// // A UDP packet nobody's rules care about passes untouched.
/// let mut packet = Vec::new();
/// etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
///     .udp(5000, 53)
///     .write(&mut packet, b"hi")
///     .unwrap();
/// assert_eq!(engine.process(Hook::Prerouting, &mut packet, Instant::ZERO), Verdict::Accept);
/// assert_eq!(engine.counters().accepted, 1);
/// ```
pub struct Engine {
    core: Core,
    v4: FamilyState<Ipv4Addr>,
    v6: FamilyState<Ipv6Addr>,
    counters: Counters,
}

impl Engine {
    /// Compiles `state` and starts with empty connection tracking at [`Instant::ZERO`].
    /// Allocates the conntrack and session-affinity tables for
    /// [`ProxyConfig::conntrack_capacity`](crate::ProxyConfig::conntrack_capacity)
    /// connections up front, for each address family the state uses.
    pub fn new(state: &ClusterState) -> Engine {
        Engine::from_state(state.clone())
    }

    /// [`Engine::new`], taking the state instead of copying it (the engine keeps it for
    /// updates).
    pub fn from_state(state: ClusterState) -> Engine {
        let proxy = state.proxy.clone();
        let map = ServiceMap::from_state(state);
        let cursors = vec![0; map.tables().port_slots() * 2];
        let (v4_in_use, v6_in_use) = (
            map.tables().uses_family(false),
            map.tables().uses_family(true),
        );
        Engine {
            core: Core {
                map,
                cursors,
                now: Instant::ZERO,
                rng: proxy.seed,
            },
            v4: FamilyState::new(&proxy, v4_in_use),
            v6: FamilyState::new(&proxy, v6_in_use),
            counters: Counters::default(),
        }
    }

    /// The compiled tables.
    pub fn tables(&self) -> &Tables {
        self.core.map.tables()
    }

    /// Bytes of what the packet path reads for a new connection to a service: the compact
    /// service-port lines with their cluster-IP index (see [`Tables`]) and the round-robin
    /// turns. The full tables and the cluster state they are compiled from, which only
    /// updates, traces and the other frontends read, are not counted.
    pub fn packet_path_bytes(&self) -> usize {
        self.core.map.tables().lines.bytes() + std::mem::size_of_val(&self.core.cursors[..])
    }

    /// Counters per verdict and reason since the engine was made.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Tracked connections (both families), including expired ones not yet removed by
    /// [`Engine::handle_timeout`].
    pub fn connections(&self) -> usize {
        self.v4.conntrack.len() + self.v6.conntrack.len()
    }

    /// Runs one packet through one hook. `packet` is raw IP (for a frame, pass the slice
    /// after the link header); it is rewritten in place when translated, checksums
    /// included, and never changes length. A packet that is neither IPv4 nor IPv6 is
    /// dropped ([`DropReason::MalformedIpHeader`]).
    ///
    /// A forwarded packet goes through [`Hook::Prerouting`] then [`Hook::Postrouting`];
    /// one the node sends through [`Hook::Output`] then [`Hook::Postrouting`]. DNAT and
    /// reverse NAT happen in the first hook, masquerade in the second.
    ///
    /// ```
    /// use kubenat_core::{Engine, Hook, Instant, Verdict, reference};
    ///
    /// fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn_ack: bool) -> Vec<u8> {
    ///     let mut builder =
    ///         etherparse::PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, 1, 64240);
    ///     builder = if syn_ack { builder.syn().ack(2) } else { builder.syn() };
    ///     let mut packet = Vec::new();
    ///     builder.write(&mut packet, &[]).unwrap();
    ///     packet
    /// }
    ///
    /// // nodoa's kube-proxy. A pod on it connects to mariadb-service (10.10.1.101:3307),
    /// // whose only endpoint is 10.10.0.103:3306.
    /// let mut engine = Engine::new(&reference::cluster("nodoa"));
    /// let mut syn = tcp([10, 10, 0, 50], 40000, [10, 10, 1, 101], 3307, false);
    /// let verdict = engine.process(Hook::Prerouting, &mut syn, Instant::ZERO);
    /// let Verdict::Translated(t) = verdict else { panic!("DNAT expected") };
    /// assert_eq!(t.after.destination, "10.10.0.103:3306".parse().unwrap());
    /// // The packet itself was rewritten.
    /// let ip = etherparse::Ipv4HeaderSlice::from_slice(&syn).unwrap();
    /// assert_eq!(ip.destination(), [10, 10, 0, 103]);
    /// // A pod source is not masqueraded: POSTROUTING leaves it alone.
    /// assert_eq!(engine.process(Hook::Postrouting, &mut syn, Instant::ZERO), Verdict::Accept);
    ///
    /// // The endpoint's SYN-ACK comes back from the service address.
    /// let mut syn_ack = tcp([10, 10, 0, 103], 3306, [10, 10, 0, 50], 40000, true);
    /// let now = Instant::from_millis(1);
    /// let Verdict::Translated(t) = engine.process(Hook::Prerouting, &mut syn_ack, now) else {
    ///     panic!("reverse NAT expected");
    /// };
    /// assert_eq!(t.after.source, "10.10.1.101:3307".parse().unwrap());
    /// assert_eq!(engine.connections(), 1);
    /// ```
    #[inline]
    pub fn process(&mut self, hook: Hook, packet: &mut [u8], now: Instant) -> Verdict {
        self.process_traced(hook, packet, now, &mut NoTrace)
    }

    /// [`Engine::process`], recording every decision into `trace`.
    #[inline]
    pub fn process_traced(
        &mut self,
        hook: Hook,
        packet: &mut [u8],
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        let verdict = self.hook(hook, packet, now, trace);
        self.finish(verdict, trace)
    }

    /// Runs one packet through both hooks of `path` (DNAT on the way in, masquerade on the
    /// way out) and reports the combined change: [`Translation::before`] from the first
    /// hook, [`Translation::after`] from the second. Counted once. A drop or reject in the
    /// first hook skips the second.
    pub fn process_path(&mut self, path: Path, packet: &mut [u8], now: Instant) -> Verdict {
        self.process_path_traced(path, packet, now, &mut NoTrace)
    }

    /// [`Engine::process_path`], recording every decision into `trace`.
    pub fn process_path_traced(
        &mut self,
        path: Path,
        packet: &mut [u8],
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        let first = match path {
            Path::Forward => Hook::Prerouting,
            Path::LocalOut => Hook::Output,
        };
        let verdict = match self.hook(first, packet, now, trace) {
            Verdict::Accept => self.hook(Hook::Postrouting, packet, now, trace),
            Verdict::Translated(t) => match self.hook(Hook::Postrouting, packet, now, trace) {
                Verdict::Translated(second) => Verdict::Translated(Translation {
                    before: t.before,
                    after: second.after,
                    icmp_error: t.icmp_error,
                }),
                _ => Verdict::Translated(t),
            },
            stop => stop,
        };
        self.finish(verdict, trace)
    }

    /// Runs a batch through one hook at one time: `verdicts[i]` is the verdict of
    /// `packets[i]`, as [`Engine::process`] gives it. Stops at the shorter of the two
    /// slices.
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
        now: Instant,
        verdicts: &mut [Verdict],
    ) {
        // A five-stage software pipeline, each stage DEPTH packets behind the one before:
        // conntrack bucket; conntrack entry or service bucket; service line; the conntrack
        // bucket of the reply tuple the new connection will likely get; processing.
        const STRIDE: usize = 64;
        const DEPTH: usize = 8;
        let n = packets.len().min(verdicts.len());
        let arriving = hook != Hook::Postrouting;
        for start in (0..n).step_by(STRIDE) {
            let len = (n - start).min(STRIDE);
            let mut flows = [None; STRIDE];
            let mut services = [None; STRIDE];
            let mut ports = [None; STRIDE];
            for step in 0..len + 4 * DEPTH {
                if arriving && step < len {
                    flows[step] = self.prefetch_index(packets[start + step]);
                }
                if let Some(i) = step.checked_sub(DEPTH).filter(|&i| i < len)
                    && let Some((v6, hash)) = flows[i]
                {
                    let tracked = match v6 {
                        false => self.v4.conntrack.prefetch_entry(hash),
                        true => self.v6.conntrack.prefetch_entry(hash),
                    };
                    if !tracked {
                        services[i] = self.prefetch_service_index(packets[start + i], v6);
                    }
                }
                if let Some(i) = step.checked_sub(2 * DEPTH).filter(|&i| i < len)
                    && let Some(hash) = services[i]
                    && let Some(id) = self.core.map.tables().lines.prefetch_line(hash)
                    && let Some(cursor) = self.core.cursors.get(id.0 as usize * 2)
                {
                    prefetch(cursor);
                    ports[i] = Some(id);
                }
                if let Some(i) = step.checked_sub(3 * DEPTH).filter(|&i| i < len)
                    && let Some(id) = ports[i]
                {
                    self.prefetch_likely_reply(packets[start + i], id);
                }
                if let Some(i) = step.checked_sub(4 * DEPTH).filter(|&i| i < len) {
                    // Written in place and counted there: a verdict is 144 bytes, and
                    // passing it through `finish` by value copied it twice per packet.
                    let verdict = &mut verdicts[start + i];
                    *verdict = self.hook(hook, packets[start + i], now, &mut NoTrace);
                    self.counters.record(verdict);
                }
            }
        }
    }

    /// Hashes a packet's tuple from a quick look at its headers and prefetches its
    /// conntrack index bucket; returns (is IPv6, hash). Only a hint: processing parses the
    /// packet properly.
    #[inline]
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
    /// the conntrack stage); returns the hash. A hint only, like [`Engine::prefetch_index`].
    #[inline]
    fn prefetch_service_index(&self, packet: &[u8], v6: bool) -> Option<u64> {
        let (address, protocol, port) = if v6 {
            let t = packet::peek_tuple::<Ipv6Addr>(packet)?;
            (IpAddr::V6(t.dst), t.protocol, t.dport)
        } else {
            let t = packet::peek_tuple::<Ipv4Addr>(packet)?;
            (IpAddr::V4(t.dst), t.protocol, t.dport)
        };
        let hash = frontend_hash(address, Protocol::from_ip_number(protocol)?, port);
        self.core.map.tables().lines.prefetch_index(hash);
        Some(hash)
    }

    /// Prefetches the conntrack bucket of the reply tuple a new IPv4 connection to
    /// service port `id` gets if round robin picks the next cluster-wide endpoint and no
    /// masquerade applies (the common case; a wrong guess costs one useless load).
    #[inline]
    fn prefetch_likely_reply(&self, packet: &[u8], id: ServicePortId) {
        let line = self.core.map.tables().lines.line(id);
        let count = line.endpoint_count(EndpointClass::Cluster);
        let Some(&turn) = self.core.cursors.get(id.0 as usize * 2) else {
            return;
        };
        if count == 0 || packet.first().map(|b| b >> 4) != Some(4) {
            return;
        }
        let index = turn as usize % count;
        if let Some(endpoint) = line.endpoint(EndpointClass::Cluster, index)
            && let IpAddr::V4(endpoint_ip) = endpoint.ip()
            && let Some(t) = packet::peek_tuple::<Ipv4Addr>(packet)
        {
            let reply = Tuple {
                src: endpoint_ip,
                sport: endpoint.port(),
                dst: t.src,
                dport: t.sport,
                protocol: t.protocol,
            };
            self.v4.conntrack.prefetch_index(Conntrack::hash(&reply));
        }
    }

    #[inline(always)]
    fn finish(&mut self, verdict: Verdict, trace: &mut impl Trace) -> Verdict {
        self.counters.record(&verdict);
        if trace.enabled() {
            trace.step(match verdict {
                Verdict::Accept => TraceStep::Accepted,
                Verdict::Translated(t) => TraceStep::Rewritten {
                    before: t.before,
                    after: t.after,
                },
                Verdict::Drop(reason) => TraceStep::Dropped(reason),
                Verdict::Reject(reason) => TraceStep::Rejected(reason),
            });
        }
        verdict
    }

    fn hook(
        &mut self,
        hook: Hook,
        packet: &mut [u8],
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        self.core.now = self.core.now.max(now);
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.core.hook(
                Ipv4Addr::state(&mut self.v4, &mut self.v6),
                hook,
                packet,
                trace,
            ),
            Some(6) => self.core.hook(
                Ipv6Addr::state(&mut self.v4, &mut self.v6),
                hook,
                packet,
                trace,
            ),
            _ => Verdict::Drop(DropReason::MalformedIpHeader),
        }
    }

    /// Writes into `out` the ICMP port-unreachable reply to a packet this engine rejected
    /// (call it before the buffer is reused) and returns the reply's length. The reply
    /// comes from the rejected packet's destination when that is a node address, else from
    /// the node's address of the family, as Linux picks the source of an ICMP error. `out`
    /// needs [`reject::MAX_REPLY_LEN`] bytes at most. The reply is a raw IP packet to send
    /// back towards the rejected packet's source; it does not go through the engine.
    ///
    /// ```
    /// use kubenat_core::reject::MAX_REPLY_LEN;
    /// use kubenat_core::{Engine, Hook, Instant, RejectReason, Verdict, reference};
    ///
    /// let mut engine = Engine::new(&reference::cluster("nodoa"));
    /// // mariadb-service's cluster IP has port 3307 only: nftables mode rejects port 80.
    /// let mut syn = Vec::new();
    /// etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 101], 64)
    ///     .tcp(40000, 80, 1, 64240)
    ///     .syn()
    ///     .write(&mut syn, &[])
    ///     .unwrap();
    /// let verdict = engine.process(Hook::Prerouting, &mut syn, Instant::ZERO);
    /// assert_eq!(verdict, Verdict::Reject(RejectReason::PortNotServed));
    ///
    /// let mut out = [0u8; MAX_REPLY_LEN];
    /// let len = engine.write_reject_reply(&syn, &mut out).unwrap();
    /// let reply = etherparse::SlicedPacket::from_ip(&out[..len]).unwrap();
    /// let Some(etherparse::NetSlice::Ipv4(ip)) = &reply.net else { panic!() };
    /// // From nodoa's address (the cluster IP is not a node address) back to the pod.
    /// assert_eq!(ip.header().source(), [192, 168, 0, 101]);
    /// assert_eq!(ip.header().destination(), [10, 10, 0, 50]);
    /// let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &reply.transport else { panic!() };
    /// assert_eq!(
    ///     icmp.icmp_type(),
    ///     etherparse::Icmpv4Type::DestinationUnreachable(
    ///         etherparse::icmpv4::DestUnreachableHeader::Port
    ///     )
    /// );
    /// ```
    pub fn write_reject_reply(&self, rejected: &[u8], out: &mut [u8]) -> Result<usize, ReplyError> {
        let destination = match rejected.first().map(|b| b >> 4) {
            Some(4) if rejected.len() >= 20 => IpAddr::V4(Ipv4Addr::read(&rejected[16..])),
            Some(6) if rejected.len() >= 40 => IpAddr::V6(Ipv6Addr::read(&rejected[24..])),
            _ => return Err(ReplyError::NotIp),
        };
        let settings = self.tables().settings();
        let source = if settings.is_local_ip(destination) {
            destination
        } else {
            settings
                .masquerade_address(destination.is_ipv6())
                .unwrap_or(destination)
        };
        reject::write_port_unreachable(rejected, source, out)
    }

    /// The next time a connection expires: call [`Engine::handle_timeout`] then. `None`
    /// while no connection is tracked. Changes after every packet and update, so re-arm
    /// the timer after each call that may create or touch a connection.
    pub fn poll_at(&self) -> Option<Instant> {
        match (self.v4.conntrack.poll_at(), self.v6.conntrack.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires connections whose timers ran out by `now`; returns how many. The packet
    /// path also ignores expired connections (their next packet starts a new one) and a
    /// full table expires before refusing a new flow, but only this keeps
    /// [`Engine::connections`] current and frees session state promptly.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        self.core.now = self.core.now.max(now);
        self.v4.conntrack.expire(self.core.now) + self.v6.conntrack.expire(self.core.now)
    }

    /// Applies a change to the cluster state. Established connections survive (a new
    /// state's conntrack timeouts apply from each connection's next packet; the table's
    /// capacity and the seed of masquerade port choice stay those the engine was made
    /// with, while an [`Update::Replace`] does rebuild Maglev tables with its own seed);
    /// UDP connections whose endpoint is no longer serving are flushed, as kube-proxy's
    /// conntrack cleanup does (TCP and SCTP keep going to their endpoint until they close,
    /// so terminating pods drain). Round-robin turns restart for the changed Service (for
    /// every Service on `Replace`). Returns the number of connections flushed.
    ///
    /// ```
    /// use kubenat_core::{Engine, Hook, Instant, ServiceName, Update, Verdict, reference};
    ///
    /// let mut engine = Engine::new(&reference::cluster("nodoa"));
    /// // A pod asks kube-dns (10.10.1.10:53 over UDP) and is DNATed to 10.10.0.10:53.
    /// let mut query = Vec::new();
    /// etherparse::PacketBuilder::ipv4([10, 10, 0, 50], [10, 10, 1, 10], 64)
    ///     .udp(33000, 53)
    ///     .write(&mut query, b"query")
    ///     .unwrap();
    /// assert!(matches!(
    ///     engine.process(Hook::Prerouting, &mut query, Instant::ZERO),
    ///     Verdict::Translated(_)
    /// ));
    ///
    /// // The DNS pod is replaced: the EndpointSlice now lists 10.10.0.11.
    /// let mut slice = reference::cluster("nodoa")
    ///     .endpoint_slices
    ///     .into_iter()
    ///     .find(|s| s.service == ServiceName::new("kube-system", "kube-dns"))
    ///     .unwrap();
    /// slice.endpoints[0].addresses = vec!["10.10.0.11".parse().unwrap()];
    /// // The UDP flow to the old pod is flushed, so the next query reaches the new one.
    /// assert_eq!(engine.update(Update::UpsertEndpointSlice(Box::new(slice))), 1);
    /// assert_eq!(engine.connections(), 0);
    /// ```
    pub fn update(&mut self, update: Update) -> usize {
        let changed = self.core.map.apply(update);
        let proxy = self.core.map.proxy();
        self.v4.conntrack.set_timeouts(proxy.timeouts);
        self.v6.conntrack.set_timeouts(proxy.timeouts);
        let tables = self.core.map.tables();
        self.v4.ensure_in_use(proxy, tables.uses_family(false));
        self.v6.ensure_in_use(proxy, tables.uses_family(true));
        self.core.cursors.resize(tables.port_slots() * 2, 0);
        let touches_udp = match &changed {
            None => {
                self.core.cursors.fill(0);
                true
            }
            Some(name) => {
                let ids = self.core.map.ports_of(name);
                for id in ids {
                    self.core.cursors[id.0 as usize * 2] = 0;
                    self.core.cursors[id.0 as usize * 2 + 1] = 0;
                }
                ids.iter()
                    .any(|&id| tables.port(id).protocol == Protocol::Udp)
            }
        };
        // Only UDP connections are flushed: a change to a TCP/SCTP-only Service costs no
        // walk over the conntrack table.
        if !touches_udp {
            return 0;
        }
        flush_stale_udp(&mut self.v4.conntrack, tables)
            + flush_stale_udp(&mut self.v6.conntrack, tables)
    }
}

/// Removes UDP connections to a service whose endpoint address is no longer serving,
/// unless the service has no serving endpoint at all (kube-proxy's `CleanStaleEntries`).
fn flush_stale_udp<A: Addr>(conntrack: &mut Conntrack<A>, tables: &Tables) -> usize {
    let stale: Vec<u32> = conntrack
        .indices()
        .filter(|&i| {
            let e = conntrack.entry(i);
            if e.original.protocol != Protocol::Udp.ip_number() {
                return false;
            }
            let Some((id, _)) =
                tables.lookup(e.original.dst.into(), Protocol::Udp, e.original.dport)
            else {
                return false;
            };
            let serving = &tables.port(id).endpoints.serving;
            !serving.is_empty() && !serving.contains(&e.reply.src.into())
        })
        .collect();
    for &i in &stale {
        conntrack.remove(i);
    }
    stale.len()
}

fn flow<A: Addr>(tuple: &Tuple<A>) -> Flow {
    Flow {
        protocol: tuple.protocol,
        source: SocketAddr::new(tuple.src.into(), tuple.sport),
        destination: SocketAddr::new(tuple.dst.into(), tuple.dport),
    }
}

impl Core {
    fn hook<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        hook: Hook,
        packet: &mut [u8],
        trace: &mut impl Trace,
    ) -> Verdict {
        let parsed = match packet::parse::<A>(packet) {
            Ok(parsed) => parsed,
            Err(reason) => return Verdict::Drop(reason),
        };
        if trace.enabled() {
            trace.step(TraceStep::Received {
                hook,
                flow: flow(&parsed.tuple),
            });
        }
        match (parsed.transport, hook) {
            (Transport::Ports, _) if parsed.fragment == Fragment::Later => {
                self.later_fragment(family, hook, packet, &parsed)
            }
            (Transport::Ports, _) => {
                let verdict = match hook {
                    Hook::Postrouting => {
                        let last = family.last.take();
                        masquerade(&family.conntrack, last, packet, &parsed)
                    }
                    Hook::Prerouting | Hook::Output => {
                        // Until the rules say otherwise, the packet leaves unmarked: an
                        // untracked or invalid packet must not be taken at POSTROUTING
                        // for another connection that shares its tuple.
                        family.last = Some((parsed.tuple, None));
                        self.ports(family, packet, &parsed, trace)
                    }
                };
                if parsed.fragment == Fragment::First
                    && matches!(verdict, Verdict::Accept | Verdict::Translated(_))
                {
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
                verdict
            }
            (Transport::IcmpError, Hook::Prerouting | Hook::Output) => {
                match icmp::translate_error(&family.conntrack, packet, &parsed, self.now) {
                    Ok(Some((direction, after))) => {
                        if trace.enabled() {
                            trace.step(TraceStep::IcmpErrorRelated { direction });
                        }
                        Verdict::Translated(Translation {
                            before: flow(&parsed.tuple),
                            after: flow(&after),
                            icmp_error: true,
                        })
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
                if !matches!(parsed.tuple.protocol, packet::ICMPV4 | packet::ICMPV6) =>
            {
                self.portless(&parsed, trace)
            }
            _ => Verdict::Accept,
        }
    }

    /// A fragment after the first: it carries no ports, so it follows the connection its
    /// first fragment belonged to, or is dropped when that was never seen.
    fn later_fragment<A: Addr>(
        &self,
        family: &FamilyState<A>,
        hook: Hook,
        packet: &mut [u8],
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
                // Addresses only: the transport header (and its checksum) is in the first fragment.
                packet::rewrite(packet, parsed.l4_offset, 0, &tuple, &after, false);
                Verdict::Translated(Translation {
                    before: flow(&tuple),
                    after: flow(&after),
                    icmp_error: false,
                })
            }
            _ => Verdict::Accept,
        }
    }

    fn portless<A: Addr>(&self, parsed: &Parsed<A>, trace: &mut impl Trace) -> Verdict {
        match policy::decide_portless(self.map.tables(), parsed.tuple.dst.into(), trace) {
            Decision::Drop(reason) => Verdict::Drop(reason),
            Decision::Reject(reason) => Verdict::Reject(reason),
            Decision::Pass | Decision::Service(_) => Verdict::Accept,
        }
    }

    /// TCP, UDP and SCTP arriving or sent locally: conntrack first, then the service rules.
    fn ports<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        packet: &mut [u8],
        parsed: &Parsed<A>,
        trace: &mut impl Trace,
    ) -> Verdict {
        let tuple = parsed.tuple;
        let conntrack = &mut family.conntrack;
        if let Some((index, direction)) = conntrack.lookup(&tuple) {
            let entry = *conntrack.entry(index);
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
            self.map.tables(),
            tuple.src.into(),
            tuple.dst.into(),
            protocol,
            tuple.dport,
            trace,
        );
        let plan = match decision {
            Decision::Drop(reason) => return Verdict::Drop(reason),
            Decision::Reject(reason) => return Verdict::Reject(reason),
            Decision::Pass => None,
            Decision::Service(plan) => Some(plan),
        };
        let Some(plan) = plan else {
            if !tracked {
                return Verdict::Accept;
            }
            // Not a Service: tracked as the kernel would, so masquerade never reuses its tuple.
            return match conntrack.insert(tuple, tuple.reversed(), false, state, self.now) {
                Ok(_) => {
                    family.last = Some((tuple, None));
                    if trace.enabled() {
                        trace.step(TraceStep::ConntrackCreated { state });
                    }
                    Verdict::Accept
                }
                Err(InsertError::Full) => Verdict::Drop(DropReason::ConntrackFull),
                Err(InsertError::Clash) => Verdict::Accept,
            };
        };
        let (endpoint, selection, candidates) = self.select(family, &plan, &tuple);
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
            let tables = self.map.tables();
            let Some(address) = tables
                .settings()
                .masquerade_address(A::LEN == 16)
                .and_then(A::from_ip)
            else {
                return Verdict::Drop(DropReason::NoMasqueradeAddress);
            };
            reply.dst = address;
            match self.free_port(&family.conntrack, reply) {
                Some(port) => reply.dport = port,
                None => return Verdict::Drop(DropReason::MasqueradePortsExhausted),
            }
        }
        match family
            .conntrack
            .insert(tuple, reply, masquerade.is_some(), state, self.now)
        {
            Ok(index) => {
                let after = Tuple {
                    dst: endpoint_ip,
                    dport: endpoint.port(),
                    ..tuple
                };
                family.last = Some((after, masquerade.map(|_| index)));
            }
            Err(InsertError::Full) => return Verdict::Drop(DropReason::ConntrackFull),
            Err(InsertError::Clash) => return Verdict::Drop(DropReason::TupleClash),
        }
        if trace.enabled() {
            trace.step(TraceStep::ConntrackCreated { state });
        }
        let tables = self.map.tables();
        if tables.lines.line(plan.port).affinity()
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
        apply(packet, parsed, &after)
    }

    /// Picks the endpoint of a new connection: the client's remembered one under session
    /// affinity, else round robin or Maglev.
    fn select<A: Addr>(
        &mut self,
        family: &FamilyState<A>,
        plan: &Plan,
        tuple: &Tuple<A>,
    ) -> (SocketAddr, Selection, usize) {
        let tables = self.map.tables();
        // The port's line answers the common case; the full tables the rest.
        let line = tables.lines.line(plan.port);
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

    /// A masquerade source port that makes `reply` unique: a random start (Linux
    /// `fully-random`), then the next ports, up to 128 tries as netfilter bounds it.
    fn free_port<A: Addr>(&mut self, conntrack: &Conntrack<A>, mut reply: Tuple<A>) -> Option<u16> {
        let range = self.map.proxy().masquerade_ports.clone();
        let (low, high) = (*range.start(), *range.end());
        if low > high {
            return None;
        }
        let size = u32::from(high - low) + 1;
        let start = (splitmix64(&mut self.rng) % u64::from(size)) as u32;
        for attempt in 0..size.min(128) {
            let port = low + ((start + attempt) % size) as u16;
            reply.dport = port;
            if !conntrack.contains(&reply) {
                return Some(port);
            }
        }
        None
    }
}

/// POSTROUTING: masquerade connections marked for it. The packet's connection is the one
/// the arriving hook just handled when the tuples agree (as netfilter's skb->ct), else the
/// masqueraded connection that leaves DNAT with this tuple.
fn masquerade<A: Addr>(
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
fn tracked<A: Addr>(entry: &Entry<A>, direction: Direction, tuple: &Tuple<A>) -> Tuple<A> {
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
fn masqueraded<A: Addr>(entry: &Entry<A>, tuple: &Tuple<A>) -> Tuple<A> {
    Tuple {
        src: entry.reply.dst,
        sport: entry.reply.dport,
        ..*tuple
    }
}

/// Rewrites the packet to `after` if that changes anything.
fn apply<A: Addr>(packet: &mut [u8], parsed: &Parsed<A>, after: &Tuple<A>) -> Verdict {
    if *after == parsed.tuple {
        return Verdict::Accept;
    }
    packet::rewrite(
        packet,
        parsed.l4_offset,
        parsed.l4_len,
        &parsed.tuple,
        after,
        true,
    );
    Verdict::Translated(Translation {
        before: flow(&parsed.tuple),
        after: flow(after),
        icmp_error: false,
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
