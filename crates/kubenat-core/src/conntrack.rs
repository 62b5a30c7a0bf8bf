//! Connection tracking: a fixed-capacity table of connections, each reachable by its
//! original and its reply tuple, with netfilter's per-state timeouts.
//!
//! Entries live in a slab; the hash table stores only `index << 1 | direction` (4 bytes a
//! key), so a connection costs one entry plus two 4-byte slots. Every state has its own
//! timeout, so entries of one state expire in the order they were last touched: one
//! intrusive list per state keeps them sorted, expiry pops list heads, and `poll_at` is the
//! earliest head. Nothing allocates after construction.
//!
//! The engine keeps one [`Conntrack`] per address family; this module is public for tools
//! and tests that want to drive a table directly.

use std::time::Duration;

use crate::addr::Addr;
use crate::flow_index::FlowIndex;
use crate::model::ConntrackTimeouts;
use crate::time::Instant;

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

/// Connection state, just deep enough to pick netfilter's timeouts. Each state's timeout is
/// the matching [`ConntrackTimeouts`] field (`TcpSynSent` uses `tcp_syn_sent`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// TCP: the client's SYN was seen.
    TcpSynSent,
    /// TCP: the SYN-ACK was seen.
    TcpSynRecv,
    /// TCP: the handshake completed (or the connection was picked up mid-stream by an ACK).
    TcpEstablished,
    /// A FIN was seen.
    TcpFinWait,
    /// The FIN was acknowledged: one side is half-closed.
    TcpCloseWait,
    /// TCP: both sides sent a FIN; waiting for the last ACK.
    TcpLastAck,
    /// TCP: closed cleanly; a new SYN on the tuple starts a new connection.
    TcpTimeWait,
    /// TCP: reset; a new SYN on the tuple starts a new connection.
    TcpClose,
    /// UDP: packets seen in the original direction only (timeout `udp`).
    UdpUnreplied,
    /// UDP: a reply was seen (timeout `udp_stream`).
    UdpReplied,
    /// SCTP: INIT seen, association not up yet.
    SctpHandshake,
    /// SCTP: association up.
    SctpEstablished,
    /// SCTP: ABORT or SHUTDOWN seen.
    SctpClosing,
}

const STATES: usize = 13;

impl State {
    /// The name `conntrack -L` shows for the state (`"SYN_SENT"`, `"UNREPLIED"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::TcpSynSent => "SYN_SENT",
            State::TcpSynRecv => "SYN_RECV",
            State::TcpEstablished => "ESTABLISHED",
            State::TcpFinWait => "FIN_WAIT",
            State::TcpCloseWait => "CLOSE_WAIT",
            State::TcpLastAck => "LAST_ACK",
            State::TcpTimeWait => "TIME_WAIT",
            State::TcpClose => "CLOSE",
            State::UdpUnreplied => "UNREPLIED",
            State::UdpReplied => "REPLIED",
            State::SctpHandshake => "COOKIE_WAIT",
            State::SctpEstablished => "ESTABLISHED",
            State::SctpClosing => "SHUTDOWN",
        }
    }

    fn timeout(self, t: &ConntrackTimeouts) -> std::time::Duration {
        match self {
            State::TcpSynSent => t.tcp_syn_sent,
            State::TcpSynRecv => t.tcp_syn_recv,
            State::TcpEstablished => t.tcp_established,
            State::TcpFinWait => t.tcp_fin_wait,
            State::TcpCloseWait => t.tcp_close_wait,
            State::TcpLastAck => t.tcp_last_ack,
            State::TcpTimeWait => t.tcp_time_wait,
            State::TcpClose => t.tcp_close,
            State::UdpUnreplied => t.udp,
            State::UdpReplied => t.udp_stream,
            State::SctpHandshake => t.sctp_handshake,
            State::SctpEstablished => t.sctp_established,
            State::SctpClosing => t.sctp_closing,
        }
    }
}

/// One tracked connection. An IPv4 entry is one cache line, aligned to it, so the
/// batch path's single prefetch brings in all of it.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Entry<A> {
    /// The tuple of the first packet as it arrived.
    pub original: Tuple<A>,
    /// The tuple replies arrive with (after DNAT and masquerade of the original).
    pub reply: Tuple<A>,
    /// When the connection is forgotten unless another packet comes.
    pub expires: Instant,
    /// Current state, which picked `expires`.
    pub state: State,
    /// Source NAT (masquerade) applies when the original direction leaves the node.
    pub masquerade: bool,
    /// `expires` when the entry took its place in its state's list; the list is sorted
    /// by it, and `expires` runs ahead of it by less than [`RELINK_AFTER`].
    linked_expiry: Instant,
    prev: u32,
    next: u32,
}

impl<A: Addr> Entry<A> {
    /// The tuple a packet of the original direction has after DNAT, before masquerade.
    pub fn post_dnat(&self) -> Tuple<A> {
        Tuple {
            src: self.original.src,
            sport: self.original.sport,
            dst: self.reply.src,
            dport: self.reply.sport,
            protocol: self.original.protocol,
        }
    }

    /// Destination NAT applies (the reply comes from somewhere else than the original
    /// destination).
    pub fn dnat(&self) -> bool {
        self.reply.src != self.original.dst || self.reply.sport != self.original.dport
    }
}

const NIL: u32 = u32::MAX;

/// A packet that keeps a connection in its state only moves the entry to the tail of the
/// state's list once its timer has run this much since the entry was placed there: busy
/// connections then touch one cache line per packet, not three, and expiry (and `poll_at`)
/// may come this much late, never early.
pub const RELINK_AFTER: Duration = Duration::from_millis(100);

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
fn tuple_hash<A: Addr>(t: &Tuple<A>) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7344;
    const K2: u64 = 0xa409_3822_299f_31d0;
    let ports = (u64::from(t.sport) << 24) | (u64::from(t.dport) << 8) | u64::from(t.protocol);
    let h = mix(t.src.fold() ^ K0, t.dst.fold() ^ K1);
    mix(h ^ ports, K2)
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// Why a connection could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its capacity of connections.
    Full,
    /// The reply tuple is already a key of a live connection, or another masqueraded
    /// connection leaves the node with the same tuple before masquerade.
    Clash,
}

/// The conntrack table of one address family.
///
/// Connections are addressed by a `u32` index, valid until the connection is removed or
/// expires (the slot is then reused).
///
/// ```
/// use std::net::Ipv4Addr;
/// use kubenat_core::conntrack::{Conntrack, Direction, State, Tuple};
/// use kubenat_core::{ConntrackTimeouts, Instant};
///
/// let mut ct = Conntrack::new(1024, ConntrackTimeouts::default());
/// let original = Tuple {
///     src: Ipv4Addr::new(10, 0, 0, 5),
///     dst: Ipv4Addr::new(10, 96, 0, 10),
///     sport: 40000,
///     dport: 80,
///     protocol: 6,
/// };
/// // DNAT to 10.244.1.5:8080: the endpoint answers the client directly.
/// let reply = Tuple { src: Ipv4Addr::new(10, 244, 1, 5), sport: 8080, ..original.reversed() };
/// let i = ct.insert(original, reply, false, State::TcpSynSent, Instant::ZERO).unwrap();
/// assert_eq!(ct.lookup(&reply), Some((i, Direction::Reply)));
/// assert!(ct.entry(i).dnat());
/// assert_eq!(ct.poll_at(), Some(Instant::from_secs(120)));
/// assert_eq!(ct.expire(Instant::from_secs(120)), 1);
/// assert!(ct.is_empty());
/// ```
pub struct Conntrack<A> {
    entries: Vec<Entry<A>>,
    /// Head of the free-slot chain (through `next`).
    free: u32,
    keys: FlowIndex,
    /// Masqueraded connections by their post-DNAT tuple, for the leaving hook.
    snat_keys: FlowIndex,
    lists: [List; STATES],
    capacity: usize,
    len: usize,
    timeouts: ConntrackTimeouts,
}

impl<A: Addr> Conntrack<A> {
    /// An empty table for at most `capacity` connections (allocated now, never again),
    /// with `timeouts` per state.
    pub fn new(capacity: usize, timeouts: ConntrackTimeouts) -> Conntrack<A> {
        let capacity = capacity.min(NIL as usize / 2 - 1);
        // Every slot is written now, chained free in order: the first connections do not
        // pay the page faults of fresh memory on the packet path.
        let unused = Tuple {
            src: A::read(&[0; 16]),
            dst: A::read(&[0; 16]),
            sport: 0,
            dport: 0,
            protocol: 0,
        };
        let entries = (0..capacity)
            .map(|i| Entry {
                original: unused,
                reply: unused,
                expires: Instant::ZERO,
                state: State::TcpClose,
                masquerade: false,
                linked_expiry: Instant::ZERO,
                prev: NIL,
                next: if i + 1 < capacity { i as u32 + 1 } else { NIL },
            })
            .collect();
        Conntrack {
            entries,
            free: if capacity > 0 { 0 } else { NIL },
            keys: FlowIndex::new(capacity * 2),
            // Only masqueraded connections are keyed here: usually far from full.
            snat_keys: FlowIndex::dense(capacity),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; STATES],
            capacity,
            len: 0,
            timeouts,
        }
    }

    /// Connections tracked, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most connections the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The hash a tuple is indexed under.
    #[inline]
    pub fn hash(tuple: &Tuple<A>) -> u64 {
        tuple_hash(tuple)
    }

    /// Starts loading the index bucket of a tuple hashed by [`Conntrack::hash`], so a
    /// lookup a few packets later finds it in cache.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.keys.prefetch(hash);
    }

    /// Starts loading the entry a tuple would match, when its index bucket (prefetched
    /// earlier) names one; false when it names none (the packet is likely a new flow).
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) -> bool {
        match self.keys.find(hash, |_| true) {
            Some(slot) => {
                crate::flow_index::prefetch(&self.entries[(slot >> 1) as usize]);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn key_tuple(&self, slot: u32) -> &Tuple<A> {
        let entry = &self.entries[(slot >> 1) as usize];
        if slot & 1 == 0 {
            &entry.original
        } else {
            &entry.reply
        }
    }

    /// The connection `tuple` belongs to (as its original or its reply tuple), and the
    /// packet's direction in it. Does not check expiry: compare [`Entry::expires`].
    #[inline]
    pub fn lookup(&self, tuple: &Tuple<A>) -> Option<(u32, Direction)> {
        self.lookup_hashed(tuple, tuple_hash(tuple))
    }

    /// [`Conntrack::lookup`] of a tuple whose [`Conntrack::hash`] the caller has.
    #[inline(always)]
    fn lookup_hashed(&self, tuple: &Tuple<A>, hash: u64) -> Option<(u32, Direction)> {
        self.keys
            .find(hash, |slot| self.key_tuple(slot) == tuple)
            .map(|slot| {
                let direction = if slot & 1 == 0 {
                    Direction::Original
                } else {
                    Direction::Reply
                };
                (slot >> 1, direction)
            })
    }

    /// [`Conntrack::lookup`], hiding a connection whose timer ran out by `now` (it is only
    /// removed by [`Conntrack::expire`] or by a new connection taking its place).
    #[inline]
    pub fn lookup_live(&self, tuple: &Tuple<A>, now: Instant) -> Option<(u32, Direction)> {
        self.lookup(tuple)
            .filter(|&(index, _)| self.entries[index as usize].expires > now)
    }

    /// The masqueraded connection whose original-direction packets, after DNAT, have `tuple`.
    #[inline]
    pub fn lookup_masqueraded(&self, tuple: &Tuple<A>) -> Option<u32> {
        self.snat_keys.find(tuple_hash(tuple), |index| {
            self.entries[index as usize].post_dnat() == *tuple
        })
    }

    /// Whether `tuple` is the original or reply tuple of a tracked connection.
    pub fn contains(&self, tuple: &Tuple<A>) -> bool {
        self.lookup(tuple).is_some()
    }

    /// The connection at `index`. Panics on an index never handed out; a removed
    /// connection's index reads stale or reused data.
    pub fn entry(&self, index: u32) -> &Entry<A> {
        &self.entries[index as usize]
    }

    /// Every live connection's index.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.lists.iter().flat_map(move |list| {
            std::iter::successors((list.head != NIL).then_some(list.head), move |&i| {
                let next = self.entries[i as usize].next;
                (next != NIL).then_some(next)
            })
        })
    }

    /// Tracks a new connection in `state`, its timer starting at `now`, and returns its
    /// index. `reply` is the tuple replies will carry (the reverse of `original` after
    /// DNAT and source NAT); `masquerade` marks it for source NAT on the way out.
    pub fn insert(
        &mut self,
        original: Tuple<A>,
        reply: Tuple<A>,
        masquerade: bool,
        state: State,
        now: Instant,
    ) -> Result<u32, InsertError> {
        if self.len == self.capacity {
            return Err(InsertError::Full);
        }
        let (original_hash, reply_hash) = (tuple_hash(&original), tuple_hash(&reply));
        if self.lookup_hashed(&reply, reply_hash).is_some()
            || self.lookup_hashed(&original, original_hash).is_some()
        {
            return Err(InsertError::Clash);
        }
        let post_dnat = Tuple {
            dst: reply.src,
            dport: reply.sport,
            ..original
        };
        if masquerade && self.lookup_masqueraded(&post_dnat).is_some() {
            return Err(InsertError::Clash);
        }
        let entry = Entry {
            original,
            reply,
            expires: now + state.timeout(&self.timeouts),
            state,
            masquerade,
            linked_expiry: Instant::ZERO,
            prev: NIL,
            next: NIL,
        };
        // Below capacity, a free slot exists.
        let index = self.free;
        self.free = self.entries[index as usize].next;
        self.entries[index as usize] = entry;
        self.len += 1;
        self.link(index);
        // Sized at half load for `capacity` connections, the index practically always has
        // room; if a neighbourhood ever fills up, the connection is refused whole.
        let original_stored = self.keys.insert(original_hash, index << 1);
        let reply_stored = original_stored && self.keys.insert(reply_hash, (index << 1) | 1);
        let snat_stored =
            reply_stored && (!masquerade || self.snat_keys.insert(tuple_hash(&post_dnat), index));
        if !snat_stored {
            if reply_stored {
                self.keys.remove(reply_hash, (index << 1) | 1);
            }
            if original_stored {
                self.keys.remove(original_hash, index << 1);
            }
            self.unlink(index);
            self.entries[index as usize].next = self.free;
            self.free = index;
            self.len -= 1;
            return Err(InsertError::Full);
        }
        Ok(index)
    }

    /// Timeouts for connections touched from now on. A shorter timeout can leave a state's
    /// list out of order until its older entries go: expiry may then come late, never
    /// early, and lookups still honour each entry's own deadline.
    pub fn set_timeouts(&mut self, timeouts: ConntrackTimeouts) {
        self.timeouts = timeouts;
    }

    /// Moves a connection to `state` and restarts its timer.
    #[inline]
    pub fn touch(&mut self, index: u32, state: State, now: Instant) {
        let expires = now + state.timeout(&self.timeouts);
        let entry = &mut self.entries[index as usize];
        if entry.state == state && expires < entry.linked_expiry + RELINK_AFTER {
            entry.expires = expires;
            return;
        }
        self.unlink(index);
        let entry = &mut self.entries[index as usize];
        entry.state = state;
        entry.expires = expires;
        self.link(index);
    }

    /// Forgets the connection at `index`, which must be live.
    pub fn remove(&mut self, index: u32) {
        self.unlink(index);
        let entry = self.entries[index as usize];
        let slot = index << 1;
        self.keys.remove(tuple_hash(&entry.original), slot);
        self.keys.remove(tuple_hash(&entry.reply), slot | 1);
        if entry.masquerade {
            self.snat_keys.remove(tuple_hash(&entry.post_dnat()), index);
        }
        self.entries[index as usize].next = self.free;
        self.free = index;
        self.len -= 1;
    }

    /// Removes every connection whose timer ran out by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        for state in 0..STATES {
            loop {
                let head = self.lists[state].head;
                if head == NIL || self.entries[head as usize].expires > now {
                    break;
                }
                self.remove(head);
                removed += 1;
            }
        }
        removed
    }

    /// The earliest time a connection expires, if any is tracked.
    pub fn poll_at(&self) -> Option<Instant> {
        self.lists
            .iter()
            .filter(|l| l.head != NIL)
            .map(|l| self.entries[l.head as usize].expires)
            .min()
    }

    /// Appends to the tail of its state's list: lists stay sorted by expiry as long as time
    /// does not go backwards (the engine clamps it).
    fn link(&mut self, index: u32) {
        let state = self.entries[index as usize].state as usize;
        let tail = self.lists[state].tail;
        {
            let entry = &mut self.entries[index as usize];
            entry.prev = tail;
            entry.next = NIL;
            entry.linked_expiry = entry.expires;
        }
        if tail == NIL {
            self.lists[state].head = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[state].tail = index;
    }

    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, state, ..
        } = self.entries[index as usize];
        let list = &mut self.lists[state as usize];
        if prev == NIL {
            list.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn tuple(src: u8, sport: u16, dst: u8, dport: u16) -> Tuple<Ipv4Addr> {
        Tuple {
            src: Ipv4Addr::new(10, 0, 0, src),
            dst: Ipv4Addr::new(10, 0, 0, dst),
            sport,
            dport,
            protocol: 6,
        }
    }

    #[test]
    fn both_directions_find_the_entry_until_it_expires() {
        let mut ct = Conntrack::new(4, ConntrackTimeouts::default());
        let original = tuple(1, 1000, 2, 80);
        let reply = tuple(3, 8080, 1, 1000);
        let i = ct
            .insert(original, reply, false, State::TcpSynSent, Instant::ZERO)
            .unwrap();
        assert_eq!(ct.lookup(&original), Some((i, Direction::Original)));
        assert_eq!(ct.lookup(&reply), Some((i, Direction::Reply)));
        assert_eq!(ct.poll_at(), Some(Instant::from_secs(120)));
        assert_eq!(ct.expire(Instant::from_secs(119)), 0);
        ct.touch(i, State::TcpEstablished, Instant::from_secs(119));
        assert_eq!(ct.expire(Instant::from_secs(200)), 0);
        assert_eq!(
            ct.expire(Instant::from_secs(119) + Duration::from_secs(86_400)),
            1
        );
        assert!(ct.lookup(&original).is_none() && ct.lookup(&reply).is_none());
        assert_eq!(ct.poll_at(), None);
    }

    #[test]
    fn full_table_refuses_new_and_keeps_old() {
        let mut ct = Conntrack::new(2, ConntrackTimeouts::default());
        for port in 0..2 {
            let t = tuple(1, 1000 + port, 2, 80);
            ct.insert(t, t.reversed(), false, State::UdpUnreplied, Instant::ZERO)
                .unwrap();
        }
        let t = tuple(1, 2000, 2, 80);
        assert_eq!(
            ct.insert(t, t.reversed(), false, State::UdpUnreplied, Instant::ZERO),
            Err(InsertError::Full)
        );
        assert!(ct.lookup(&tuple(1, 1000, 2, 80)).is_some());
    }

    #[test]
    fn slots_are_reused_and_lists_stay_consistent() {
        let mut ct = Conntrack::new(3, ConntrackTimeouts::default());
        let mut live = Vec::new();
        for round in 0..50u16 {
            let t = tuple(1, round, 2, 53);
            let i = ct
                .insert(
                    t,
                    t.reversed(),
                    true,
                    State::UdpUnreplied,
                    Instant::from_secs(round.into()),
                )
                .unwrap();
            live.push((i, t));
            if live.len() == 3 {
                let (old, old_t) = live.remove(1);
                ct.remove(old);
                assert!(ct.lookup(&old_t).is_none());
                assert!(ct.lookup_masqueraded(&old_t).is_none());
            }
            assert_eq!(ct.indices().count(), ct.len());
        }
        for (i, t) in live {
            assert_eq!(ct.lookup(&t), Some((i, Direction::Original)));
            assert_eq!(ct.lookup_masqueraded(&t), Some(i));
        }
    }

    #[test]
    fn clashing_reply_tuple_is_refused() {
        let mut ct = Conntrack::new(4, ConntrackTimeouts::default());
        let a = tuple(1, 1000, 2, 80);
        ct.insert(a, a.reversed(), false, State::TcpSynSent, Instant::ZERO)
            .unwrap();
        let b = tuple(5, 1000, 6, 80);
        assert_eq!(
            ct.insert(b, a.reversed(), false, State::TcpSynSent, Instant::ZERO),
            Err(InsertError::Clash)
        );
    }
}
