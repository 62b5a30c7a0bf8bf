//! The common new connection on a short path of its own, beside the established one
//! ([`Core::continue_tracked`]): a plain IPv4 TCP SYN or UDP packet from a pod to a
//! cluster IP whose port line alone decides. Anything else takes the whole path.

use super::Core;
use super::family::{Family, FamilyState};
use super::new_connection::refused;
use super::process::apply;
use crate::conntrack::{Direction, Lookahead, Tuple};
use crate::meta::{Connection, PacketMeta};
use crate::model::Protocol;
use crate::packet::{self, Parsed};
use crate::policy;
use crate::port_lines::PortLine;
use crate::tables::{EndpointClass, ServicePortId};
use crate::transitions;
use crate::verdict::{Hook, Verdict};
use crate::wire::Datagram;

impl Core {
    /// A packet at an arriving hook whose look-ahead found no connection and whose
    /// destination's index bucket named service port `port` (with its line): when it is
    /// plain IPv4 TCP or UDP with right checksums, that look-ahead still holds, and
    /// [`Core::open_to_cluster_ip`] takes it, the connection is opened here, the whole
    /// path's parse, dispatch and rules skipped. `None` for anything else, before
    /// anything changed. Kept apart from the whole path, whose rarer cases' state
    /// spilled most of the common case to memory: about a hundred instructions per new
    /// flow.
    #[inline(always)]
    pub(super) fn open_plain<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        hook: Hook,
        packet: &mut [u8],
        meta: &mut PacketMeta,
        ahead: &Lookahead,
        port: Option<(ServicePortId, &PortLine)>,
    ) -> Option<Verdict> {
        let (mut packet, parsed) =
            packet::parse_plain_arriving::<A>(hook, packet, meta.checksum())?;
        let (id, line) = port?;
        if family
            .conntrack
            .lookup_ahead(&parsed.tuple, ahead)
            .is_some()
        {
            return None;
        }
        let verdict =
            self.open_to_cluster_ip(family, &mut packet, meta, &parsed, ahead.hash(), id, line)?;
        meta.connection = Connection::NotMasqueraded;
        Some(verdict)
    }

    /// A new connection (`parsed`, its tuple hashed `hash` and missed) whose rules the
    /// line of service port `id` answers alone: its cluster IP and port, endpoints held
    /// inline and picked in turn ([`PortLine::plain_round_robin`]), from a source inside
    /// the cluster CIDRs with masquerade-all off, to an endpoint that is not the client
    /// (which would hairpin). Tracked and rewritten exactly as [`Core::new_connection`]
    /// does it; `None` for any other, before anything changed.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn open_to_cluster_ip<A: Family>(
        &mut self,
        family: &mut FamilyState<A>,
        packet: &mut Datagram<A, &mut [u8]>,
        meta: &PacketMeta,
        parsed: &Parsed<A>,
        hash: u64,
        id: ServicePortId,
        line: &PortLine,
    ) -> Option<Verdict> {
        let tuple = parsed.tuple;
        let state = transitions::initial(tuple.protocol, parsed.tcp_flags, parsed.sctp_chunk)?;
        let protocol = Protocol::from_ip_number(tuple.protocol)?;
        let conntrack = &mut family.conntrack;
        // A full table takes the whole path, which expires connections first.
        if conntrack.len() >= conntrack.capacity()
            || !line.is_frontend(tuple.dst, protocol, tuple.dport)
            || policy::internal_masquerade(&self.tables, tuple.src.into()).is_some()
        {
            return None;
        }
        let cursor = self.turns.get_mut(id, EndpointClass::Cluster)?;
        let (endpoint, port) = line.plain_round_robin(*cursor)?;
        let endpoint = A::from_ip(endpoint.into())?;
        if endpoint == tuple.src {
            return None;
        }
        *cursor = cursor.wrapping_add(1);
        let reply = Tuple {
            src: endpoint,
            sport: port,
            dst: tuple.src,
            dport: tuple.sport,
            protocol: tuple.protocol,
        };
        let index = match conntrack.insert_absent(tuple, hash, reply, false, state, self.now) {
            Ok(index) => index,
            Err(error) => return Some(Verdict::Drop(refused(error))),
        };
        let after = Tuple {
            dst: endpoint,
            dport: port,
            ..tuple
        };
        let translation = conntrack.entry(index).translation(Direction::Original);
        Some(apply(packet, &after, translation, meta.checksum()))
    }
}
