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

#[test]
fn insert_errors_read_as_sentences() {
    let error: Box<dyn std::error::Error> = Box::new(InsertError::Full);
    assert_eq!(error.to_string(), "the conntrack table is full");
    assert_eq!(
        InsertError::Clash.to_string(),
        "the connection clashes with a tracked one"
    );
}
