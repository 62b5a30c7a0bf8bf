//! Reading a packet once (etherparse validates the IP layer and the transport header) and
//! rewriting its addresses and ports in place with incremental checksums.

mod parse;
mod rewrite;
mod verify;

pub(crate) use parse::{parse, peek_tuple};
pub(crate) use rewrite::rewrite;
pub(crate) use verify::{holds_pseudo_header_sum, verify_arriving};

use crate::conntrack::Tuple;

pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const SCTP: u8 = 132;
pub(crate) const ICMPV4: u8 = 1;
pub(crate) const ICMPV6: u8 = 58;

/// TCP flag bits the conntrack state machine reads.
pub(crate) mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What the transport layer is, as far as NAT cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP, UDP or SCTP: ports at the start of the header.
    Ports,
    /// ICMP/ICMPv6 echo request.
    EchoRequest,
    /// An ICMP/ICMPv6 error quoting the packet that caused it.
    IcmpError,
    /// Anything else (echo replies, neighbour discovery, other protocols): passes.
    Other,
}

/// Where a packet's fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Whole,
    /// Offset zero with more to come: carries the transport header.
    First,
    Later,
}

/// The facts about one packet the engine needs, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed<A> {
    pub tuple: Tuple<A>,
    /// Offset of the transport header (IP header and extensions before it).
    pub l4_offset: usize,
    /// Transport bytes inside the IP length (a capture may pad the buffer beyond).
    pub l4_len: usize,
    pub transport: Transport,
    pub fragment: Fragment,
    /// IPv4 identification or IPv6 fragment-header identification (fragments only).
    pub fragment_id: u32,
    pub tcp_flags: u8,
    /// First SCTP chunk type (0 when absent).
    pub sctp_chunk: u8,
}

pub(super) fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

pub(super) fn write_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}
