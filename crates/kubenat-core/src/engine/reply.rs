//! The ICMP reply to a rejected packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Engine;
use crate::addr::Addr;
use crate::reject::{self, ReplyError};

impl Engine {
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
}
