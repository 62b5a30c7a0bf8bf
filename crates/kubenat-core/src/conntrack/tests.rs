use super::*;
use crate::time::Instant;
use std::net::Ipv4Addr;
use std::time::Duration;

use proptest::prelude::*;

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

#[test]
fn insert_errors_read_as_sentences() {
    let error: Box<dyn std::error::Error> = Box::new(InsertError::Full);
    assert_eq!(error.to_string(), "the conntrack table is full");
    assert_eq!(
        InsertError::Clash.to_string(),
        "the connection clashes with a tracked one"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, bool),
    Remove(u16),
    /// Seconds to let pass before expiring.
    Expire(u8),
}

proptest! {
    /// The table agrees with a HashMap model while it grows (slab chunks and index
    /// doublings) and shrinks under inserts, removes and expiry, never holds more than its
    /// capacity, and finds every live connection by both tuples (masqueraded ones by their
    /// post-DNAT tuple too).
    #[test]
    fn grows_and_shrinks_like_a_map(
        ops in proptest::collection::vec(
            prop_oneof![
                6 => (any::<u16>(), any::<bool>())
                    .prop_map(|(k, m)| Op::Insert(k, m)),
                2 => any::<u16>().prop_map(Op::Remove),
                1 => (0u8..40).prop_map(Op::Expire),
            ],
            0..2500,
        ),
        capacity in 1usize..3000,
    ) {
        use std::collections::HashMap;
        let mut ct = Conntrack::new(capacity, ConntrackTimeouts::default());
        // key -> (index, expires)
        let mut model: HashMap<u16, (u32, Instant)> = HashMap::new();
        let mut now = Instant::ZERO;
        let original = |k: u16| tuple((k >> 8) as u8, k, 2, 53);
        let reply = |k: u16| tuple(3, 8053, (k >> 8) as u8, k);
        for op in ops {
            match op {
                Op::Insert(k, masquerade) => {
                    let result = ct.insert(original(k), reply(k), masquerade, State::UdpUnreplied, now);
                    // A full table refuses before it looks for a clash.
                    if model.len() == capacity {
                        prop_assert_eq!(result, Err(InsertError::Full));
                    } else {
                        match model.entry(k) {
                            std::collections::hash_map::Entry::Occupied(_) => {
                                prop_assert_eq!(result, Err(InsertError::Clash));
                            }
                            std::collections::hash_map::Entry::Vacant(slot) => {
                                slot.insert((result.unwrap(), now + Duration::from_secs(30)));
                            }
                        }
                    }
                }
                Op::Remove(k) => {
                    if let Some((index, _)) = model.remove(&k) {
                        ct.remove(index);
                        prop_assert!(ct.lookup(&original(k)).is_none());
                        prop_assert!(ct.lookup(&reply(k)).is_none());
                    }
                }
                Op::Expire(secs) => {
                    now = now + Duration::from_secs(secs.into());
                    let expired = ct.expire(now);
                    let before = model.len();
                    model.retain(|_, &mut (_, expires)| expires > now);
                    prop_assert_eq!(expired, before - model.len());
                }
            }
            prop_assert_eq!(ct.len(), model.len());
        }
        for (&k, &(index, expires)) in &model {
            prop_assert_eq!(ct.lookup(&original(k)), Some((index, Direction::Original)));
            prop_assert_eq!(ct.lookup(&reply(k)), Some((index, Direction::Reply)));
            prop_assert_eq!(ct.entry(index).expires, expires);
            let post_dnat = ct.entry(index).post_dnat();
            let masqueraded = ct.entry(index).masquerade;
            prop_assert_eq!(ct.lookup_masqueraded(&post_dnat).is_some(), masqueraded);
        }
        prop_assert_eq!(ct.indices().count(), model.len());
    }
}

#[test]
fn a_billion_connection_ceiling_holds_what_a_thousand_need() {
    let mut ct = Conntrack::new(1_000_000_000, ConntrackTimeouts::default());
    assert_eq!(ct.capacity(), 1_000_000_000);
    assert!(ct.bytes() < 4096, "{} bytes empty", ct.bytes());
    for k in 0..1000u16 {
        let t = tuple((k >> 8) as u8, k, 2, 80);
        ct.insert(
            t,
            t.reversed(),
            k % 2 == 0,
            State::TcpSynSent,
            Instant::ZERO,
        )
        .unwrap();
    }
    let live = 1000 * std::mem::size_of::<Entry<Ipv4Addr>>();
    assert!(
        ct.bytes() <= (1 << 20) + live,
        "{} bytes for 1000 connections",
        ct.bytes()
    );
}

#[test]
fn a_capacity_past_32_bit_indexes_is_taken_as_the_most_there_can_be() {
    let ct = Conntrack::<Ipv4Addr>::new(usize::MAX, ConntrackTimeouts::default());
    assert_eq!(ct.capacity(), MAX_CAPACITY);
    assert!(ct.bytes() < 4096);
}

/// A look-ahead taken before the table changed answers as a fresh lookup would: a
/// removed connection is not found through its old candidate (even when a connection
/// with another tuple took its slot), and one stored since is found.
#[test]
fn look_ahead_answers_as_a_fresh_lookup_after_changes() {
    let mut ct = Conntrack::new(8, ConntrackTimeouts::default());
    let first = tuple(1, 1000, 2, 80);
    let i = ct
        .insert(
            first,
            first.reversed(),
            false,
            State::UdpUnreplied,
            Instant::ZERO,
        )
        .unwrap();
    let found = ct.look_ahead(Conntrack::hash(&first));
    let missing = tuple(1, 1001, 2, 80);
    let missed = ct.look_ahead(Conntrack::hash(&missing));
    assert!(!found.looks_new() && missed.looks_new());
    let fresh = |ct: &Conntrack<Ipv4Addr>, t: &Tuple<Ipv4Addr>, ahead: &Lookahead| {
        let ahead = ct.lookup_ahead(t, ahead).map(|(i, d, _)| (i, d));
        assert_eq!(ahead, ct.lookup(t), "{t:?}");
        ahead
    };
    assert_eq!(fresh(&ct, &first, &found), Some((i, Direction::Original)));
    assert_eq!(fresh(&ct, &missing, &missed), None);

    // Removed, and its slot taken by another connection: neither found through it.
    ct.remove(i);
    assert_eq!(fresh(&ct, &first, &found), None);
    let other = tuple(5, 5000, 6, 53);
    let j = ct
        .insert(
            other,
            other.reversed(),
            false,
            State::UdpUnreplied,
            Instant::ZERO,
        )
        .unwrap();
    assert_eq!(j, i, "the slot is reused");
    assert_eq!(fresh(&ct, &first, &found), None);

    // Stored after a look-ahead that found no candidate: found.
    let k = ct
        .insert(
            missing,
            missing.reversed(),
            false,
            State::UdpUnreplied,
            Instant::ZERO,
        )
        .unwrap();
    assert_eq!(
        fresh(&ct, &missing, &missed),
        Some((k, Direction::Original))
    );
}

proptest! {
    /// An entry's stored checksum changes and rewritten sides are what rewriting each
    /// direction's tuple into its translation does, unmasqueraded replies included (their
    /// change taken as the DNAT's undone).
    #[test]
    fn stored_changes_match_the_rewrites(
        client in any::<[u8; 4]>(),
        service in any::<[u8; 4]>(),
        endpoint in any::<[u8; 4]>(),
        masquerade_address in proptest::option::of(any::<[u8; 4]>()),
        ports in any::<[u16; 4]>(),
    ) {
        let original = Tuple {
            src: Ipv4Addr::from(client),
            dst: Ipv4Addr::from(service),
            sport: ports[0],
            dport: ports[1],
            protocol: 6,
        };
        let (reply_dst, reply_dport) = match masquerade_address {
            Some(address) => (Ipv4Addr::from(address), ports[3]),
            None => (original.src, original.sport),
        };
        let reply = Tuple {
            src: Ipv4Addr::from(endpoint),
            dst: reply_dst,
            sport: ports[2],
            dport: reply_dport,
            protocol: 6,
        };
        let mut conntrack = Conntrack::<Ipv4Addr>::new(16, ConntrackTimeouts::default());
        let Ok(index) = conntrack.insert(original, reply, false, State::TcpSynSent, Instant::ZERO) else {
            return Ok(());
        };
        let entry = conntrack.entry(index);
        let post_dnat = Tuple { dst: reply.src, dport: reply.sport, ..original };
        let rewritten = |from: &Tuple<Ipv4Addr>, to| (from.change_to(to), from.rewrite_to(to));
        prop_assert_eq!(entry.translation(Direction::Original), rewritten(&original, &post_dnat));
        prop_assert_eq!(entry.translation(Direction::Reply), rewritten(&reply, &original.reversed()));
    }
}

/// An IPv4 entry is one cache line: the batch prefetches it whole (its checksum changes
/// and rewritten sides fill the last spare bytes).
#[test]
fn an_ipv4_entry_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Entry<Ipv4Addr>>(), 64);
}
