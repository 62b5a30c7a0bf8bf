//! Reading a packet once into the facts the engine needs ([`Parsed`]) and the views over
//! its buffer ([`Datagram`](crate::wire::Datagram)), and checking its checksums as the
//! kernel does on the way in.

mod parse;
mod verify;

pub(crate) use parse::{offset_in, parse, parse_plain, peek_tuple};
pub(crate) use verify::{holds_pseudo_header_sum, parse_plain_arriving, verify_arriving};

use crate::conntrack::Tuple;

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

/// The facts about one packet the engine needs, read once; where they sit in the buffer is
/// the views' business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed<A> {
    pub tuple: Tuple<A>,
    pub transport: Transport,
    pub fragment: Fragment,
    /// IPv4 identification or IPv6 fragment-header identification (fragments only).
    pub fragment_id: u32,
    pub tcp_flags: u8,
    /// First SCTP chunk type (0 when absent).
    pub sctp_chunk: u8,
}
