//! One packet, or one packet's whole path, through the engine: the public entry points
//! around [`Engine::hook`], counting and tracing each verdict.

use super::{Engine, Path};
use crate::addr::Addr;
use crate::checksum::TupleChange;
use crate::conntrack::Tuple;
use crate::meta::{ChecksumStatus, PacketMeta};
use crate::time::Instant;
use crate::trace::{NoTrace, Trace, TraceStep};
use crate::verdict::{Flow, Hook, Rewrite, Verdict};
use crate::wire::Datagram;

impl Engine {
    /// Runs one packet through one hook. `packet` is raw IP (for a frame, pass the slice
    /// after the link header); it is rewritten in place when translated, checksums
    /// included, and never changes length. A packet that is neither IPv4 nor IPv6 is
    /// dropped ([`DropReason::MalformedIpHeader`](crate::DropReason::MalformedIpHeader)).
    ///
    /// A forwarded packet goes through [`Hook::Prerouting`] then [`Hook::Postrouting`];
    /// one the node sends through [`Hook::Output`] then [`Hook::Postrouting`]. DNAT and
    /// reverse NAT happen in the first hook, masquerade in the second.
    ///
    /// ```
    /// use kubenat_core::{Engine, Flow, Hook, Instant, Verdict, reference};
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
    /// let Verdict::Translated(rewrite) = verdict else { panic!("DNAT expected") };
    /// assert!(rewrite.destination() && !rewrite.source());
    /// // The packet itself was rewritten.
    /// let flow = Flow::of_packet(&syn).unwrap();
    /// assert_eq!(flow.destination, "10.10.0.103:3306".parse().unwrap());
    /// let ip = etherparse::Ipv4HeaderSlice::from_slice(&syn).unwrap();
    /// assert_eq!(ip.destination(), [10, 10, 0, 103]);
    /// // A pod source is not masqueraded: POSTROUTING leaves it alone.
    /// assert_eq!(engine.process(Hook::Postrouting, &mut syn, Instant::ZERO), Verdict::Accept);
    ///
    /// // The endpoint's SYN-ACK comes back from the service address.
    /// let mut syn_ack = tcp([10, 10, 0, 103], 3306, [10, 10, 0, 50], 40000, true);
    /// let now = Instant::from_millis(1);
    /// let verdict = engine.process(Hook::Prerouting, &mut syn_ack, now);
    /// assert!(matches!(verdict, Verdict::Translated(r) if r.source()), "reverse NAT");
    /// let flow = Flow::of_packet(&syn_ack).unwrap();
    /// assert_eq!(flow.source, "10.10.1.101:3307".parse().unwrap());
    /// assert_eq!(engine.connections(), 1);
    /// ```
    ///
    /// The packet comes with fresh metadata ([`PacketMeta::default`]): its checksums are
    /// verified at PREROUTING, and POSTROUTING finds its connection by its tuple. A caller
    /// that hands one packet through several hooks, or knows its checksum state, uses
    /// [`Engine::process_with`].
    #[inline]
    pub fn process(&mut self, hook: Hook, packet: &mut [u8], now: Instant) -> Verdict {
        self.process_with(hook, packet, &mut PacketMeta::default(), now)
    }

    /// [`Engine::process`] with the packet's own metadata: what the caller knows of its
    /// checksum, and the connection an earlier hook gave it (written here for the next).
    #[inline]
    pub fn process_with(
        &mut self,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        now: Instant,
    ) -> Verdict {
        self.process_traced(hook, packet, meta, now, &mut NoTrace)
    }

    /// [`Engine::process_with`], recording every decision into `trace`.
    #[inline]
    pub fn process_traced(
        &mut self,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        self.refresh();
        let before = trace.enabled().then(|| Flow::of_packet(packet)).flatten();
        let verdict = self.hook(hook, packet, meta, now, None, trace);
        self.finish(verdict, before, packet, trace)
    }

    /// Runs one packet through both hooks of `path` (DNAT on the way in, masquerade on the
    /// way out) and reports the combined change: what either hook rewrote. Counted once. A
    /// drop or reject in the first hook skips the second. The packet's checksums are
    /// verified on a forwarded path ([`PacketMeta::default`]);
    /// [`Engine::process_path_traced`] takes metadata.
    pub fn process_path(&mut self, path: Path, packet: &mut [u8], now: Instant) -> Verdict {
        let mut meta = PacketMeta::default();
        self.process_path_traced(path, packet, &mut meta, now, &mut NoTrace)
    }

    /// [`Engine::process_path`] with the packet's metadata, recording every decision into
    /// `trace`.
    pub fn process_path_traced(
        &mut self,
        path: Path,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        self.refresh();
        let before = trace.enabled().then(|| Flow::of_packet(packet)).flatten();
        let first = self.hook(path.first_hook(), packet, meta, now, None, trace);
        let verdict = self.leave(first, packet, meta, now, trace);
        self.finish(verdict, before, packet, trace)
    }

    /// POSTROUTING after a path's first hook gave `first`, and what the two did together:
    /// a drop or reject in the first skips it.
    #[inline(always)]
    pub(super) fn leave(
        &mut self,
        first: Verdict,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        now: Instant,
        trace: &mut impl Trace,
    ) -> Verdict {
        match first {
            Verdict::Accept => self.hook(Hook::Postrouting, packet, meta, now, None, trace),
            Verdict::Translated(first) => {
                match self.hook(Hook::Postrouting, packet, meta, now, None, trace) {
                    Verdict::Translated(second) => Verdict::Translated(first.and(second)),
                    _ => Verdict::Translated(first),
                }
            }
            stop => stop,
        }
    }

    /// Counts the verdict and, when tracing, records it: a rewrite with the packet's
    /// 5-tuple `before` and as it leaves.
    #[inline(always)]
    fn finish(
        &mut self,
        verdict: Verdict,
        before: Option<Flow>,
        packet: &[u8],
        trace: &mut impl Trace,
    ) -> Verdict {
        self.counters.record(&verdict);
        if trace.enabled() {
            let step = match verdict {
                Verdict::Translated(_) => match (before, Flow::of_packet(packet)) {
                    (Some(before), Some(after)) => Some(TraceStep::Rewritten { before, after }),
                    _ => None,
                },
                Verdict::Accept => Some(TraceStep::Accepted),
                Verdict::Drop(reason) => Some(TraceStep::Dropped(reason)),
                Verdict::Reject(reason) => Some(TraceStep::Rejected(reason)),
            };
            if let Some(step) = step {
                trace.step(step);
            }
        }
        verdict
    }
}

/// Rewrites the packet to `after` unless `rewrite` says nothing changes, `change` being
/// what the rewrite does to its checksums (both from the packet's tuple, or kept by its
/// connection). Inlined: a call cost 11 instructions per established packet in saved
/// registers and spilled tuples.
#[inline(always)]
pub(super) fn apply<A: Addr>(
    packet: &mut Datagram<A, &mut [u8]>,
    after: &Tuple<A>,
    (change, rewrite): (TupleChange, Rewrite),
    checksum: ChecksumStatus,
) -> Verdict {
    if rewrite.is_none() {
        return Verdict::Accept;
    }
    packet.translate_by(after, change, checksum);
    Verdict::Translated(rewrite)
}
