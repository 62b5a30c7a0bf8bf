//! The key of a connection: its tuple in one direction, and the hash the index files it under.

use std::net::SocketAddr;

use crate::addr::Addr;
use crate::checksum::TupleChange;
use crate::verdict::{Flow, Rewrite};

/// A connection's address and ports in one direction. `A` is
/// [`Ipv4Addr`](std::net::Ipv4Addr) or [`Ipv6Addr`](std::net::Ipv6Addr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple<A> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port (ICMP echo identifier for echo requests, 0 without ports).
    pub sport: u16,
    /// Destination port (0 without ports).
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
}

impl<A: Addr> Tuple<A> {
    /// The tuple as a [`Flow`], the form traces and the CLI show.
    pub(crate) fn flow(&self) -> Flow {
        Flow {
            protocol: self.protocol,
            source: SocketAddr::new(self.src.into(), self.sport),
            destination: SocketAddr::new(self.dst.into(), self.dport),
        }
    }
}

impl<A: Addr> Tuple<A> {
    /// What rewriting a packet from this tuple to `to` does to its checksums.
    #[inline(always)]
    pub(crate) fn change_to(&self, to: &Tuple<A>) -> TupleChange {
        TupleChange {
            addresses: TupleChange::of_addresses(
                self.src.complement_word_sum() + self.dst.complement_word_sum(),
                to.src.word_sum() + to.dst.word_sum(),
            ),
            ports: TupleChange::of_ports((self.sport, self.dport), (to.sport, to.dport)),
        }
    }

    /// What rewriting a packet from this tuple to `to` changes.
    #[inline(always)]
    pub(crate) fn rewrite_to(&self, to: &Tuple<A>) -> Rewrite {
        Rewrite::of_sides(
            self.dst != to.dst || self.dport != to.dport,
            self.src != to.src || self.sport != to.sport,
        )
    }

    /// The tuple of a packet going the other way.
    #[inline]
    pub fn reversed(&self) -> Tuple<A> {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            protocol: self.protocol,
        }
    }
}

/// Which way a packet travels relative to the connection's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The same way as the first packet (client to service).
    Original = 0,
    /// The other way (endpoint back to client).
    Reply = 1,
}

/// Folded 64x64->128 multiply: a fast mixer with good spread for hash-table indexing.
#[inline(always)]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// The hash of a tuple: addresses folded to 64 bits, mixed with ports and protocol under
/// fixed keys, so runs are reproducible. Equal tuples hash equal; the index confirms keys
/// against the full tuple.
#[inline]
pub(super) fn tuple_hash<A: Addr>(t: &Tuple<A>) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7344;
    const K2: u64 = 0xa409_3822_299f_31d0;
    let ports = (u64::from(t.sport) << 24) | (u64::from(t.dport) << 8) | u64::from(t.protocol);
    let h = mix(t.src.fold() ^ K0, t.dst.fold() ^ K1);
    mix(h ^ ports, K2)
}
