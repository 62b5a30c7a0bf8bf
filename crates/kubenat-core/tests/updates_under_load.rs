//! Updates under load, two ways.
//!
//! - A writer thread streams whole new states and one-Service deltas to reader threads
//!   that push packets through engines with control planes of their own. Every verdict
//!   agrees with the state its engine had applied, never with a mix; no packet is lost or
//!   processed twice; nothing panics.
//! - A writer applies the same changes once to one control plane while many engines
//!   follow its publication (what `kubenat bench --threads` does). Each batch sees exactly
//!   one generation, generations only move forward, every engine reaches the last one,
//!   and established connections keep the endpoint they were given.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use common::packets::{endpoints, tcp};
use common::sa;
use kubenat_core::{
    ClusterState, ControlPlane, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine,
    Hook, Instant, PacketMeta, Protocol, ProxyConfig, Publication, Service, ServiceName,
    ServicePort, TargetPort, Update, Verdict,
};

const READERS: usize = 3;
const GENERATIONS: usize = 200;
const PACKETS_PER_BATCH: u16 = 16;

fn name() -> ServiceName {
    ServiceName::new("default", "web")
}

/// Generation `g` of the Service's pods: three pods whose addresses name the generation.
fn pods(g: usize) -> Vec<IpAddr> {
    (1..=3u8)
        .map(|k| IpAddr::from([10, 1, (g % 250) as u8, k]))
        .collect()
}

/// The web Service's only slice at generation `g`: both ports, the same pods.
fn slice(g: usize) -> EndpointSlice {
    EndpointSlice {
        name: "web-1".into(),
        service: name(),
        ports: vec![
            EndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080,
            },
            EndpointPort {
                name: "https".into(),
                protocol: Protocol::Tcp,
                port: 8443,
            },
        ],
        endpoints: pods(g)
            .into_iter()
            .map(|address| Endpoint {
                addresses: vec![address],
                conditions: EndpointConditions::default(),
                node_name: Some("other".into()),
            })
            .collect(),
    }
}

fn state(g: usize) -> ClusterState {
    let port = |name: &str, port: u16, target: u16| ServicePort {
        name: name.into(),
        protocol: Protocol::Tcp,
        port,
        target_port: TargetPort::Number(target),
        node_port: None,
    };
    ClusterState {
        services: vec![Service {
            name: name(),
            cluster_ips: vec!["10.96.0.10".parse().unwrap()],
            ports: vec![port("http", 80, 8080), port("https", 443, 8443)],
            ..Service::default()
        }],
        endpoint_slices: vec![slice(g)],
        proxy: ProxyConfig {
            node_name: "this".into(),
            node_ips: vec!["192.168.0.1".parse().unwrap()],
            cluster_cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            conntrack_capacity: 1 << 16,
            ..ProxyConfig::default()
        },
        ..ClusterState::default()
    }
}

/// What a reader saw: packets pushed, verdicts counted, and any verdict that disagreed.
struct Seen {
    packets: u64,
    counted: u64,
    wrong: Vec<String>,
    generations: usize,
}

/// Every engine's verdicts agreed with the state it had applied, every packet was counted
/// once, and every engine reached the last generation.
fn assert_every_engine_agreed(results: &[Seen], who: &str) {
    for (id, seen) in results.iter().enumerate() {
        assert!(
            seen.wrong.is_empty(),
            "{who} {id}: {:?}",
            &seen.wrong[..seen.wrong.len().min(5)]
        );
        assert_eq!(
            seen.counted, seen.packets,
            "{who} {id}: every packet counted once"
        );
        assert_eq!(
            seen.generations, GENERATIONS,
            "{who} {id}: reached the last generation"
        );
    }
}

fn reader(id: usize, updates: mpsc::Receiver<(usize, Update)>) -> Seen {
    let mut engine = Engine::new(&state(0));
    let mut generation = 0;
    let mut seen = Seen {
        packets: 0,
        counted: 0,
        wrong: Vec::new(),
        generations: 0,
    };
    let mut port = 1024u16;
    // Time moves a second a batch, so connections expire and the table never fills.
    let mut now = Instant::ZERO;
    let mut verdicts = vec![Verdict::Accept; usize::from(PACKETS_PER_BATCH) * 2];
    let mut metas = vec![PacketMeta::default(); verdicts.len()];
    loop {
        // Between batches: every update waiting, in order.
        let mut closed = false;
        loop {
            match updates.try_recv() {
                Ok((g, update)) => {
                    engine
                        .update(update)
                        .expect("the engine owns its control plane");
                    generation = g;
                    seen.generations += 1;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // New connections to both ports of the Service in one batch.
        let mut packets: Vec<Vec<u8>> = Vec::new();
        for _ in 0..PACKETS_PER_BATCH {
            port = port.checked_add(1).unwrap_or(1024);
            let client = SocketAddr::new(IpAddr::from([10, 2, id as u8, 1]), port);
            packets.push(tcp(client, sa("10.96.0.10:80"), "syn", b""));
            packets.push(tcp(client, sa("10.96.0.10:443"), "syn", b""));
        }
        let mut batch: Vec<&mut [u8]> = packets.iter_mut().map(|p| p.as_mut_slice()).collect();
        now = now + std::time::Duration::from_secs(1);
        engine.process_batch(Hook::Prerouting, &mut batch, &mut metas, now, &mut verdicts);
        seen.packets += packets.len() as u64;
        let expected = pods(generation);
        for (packet, verdict) in packets.iter().zip(&verdicts) {
            let (_, destination) = endpoints(packet);
            let agrees = matches!(verdict, Verdict::Translated(_))
                && expected.contains(&destination.ip())
                && matches!(destination.port(), 8080 | 8443);
            if !agrees {
                seen.wrong.push(format!(
                    "generation {generation}: {verdict:?} to {destination}"
                ));
            }
        }
        if closed {
            seen.counted = engine.counters().total();
            return seen;
        }
    }
}

#[test]
fn every_verdict_agrees_with_the_state_applied() {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..READERS).map(|_| mpsc::channel()).unzip();
    let results: Vec<Seen> = std::thread::scope(|scope| {
        let readers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(id, updates)| scope.spawn(move || reader(id, updates)))
            .collect();
        // The writer: deltas, and every tenth generation a whole new state.
        for g in 1..=GENERATIONS {
            for sender in &senders {
                sender.send((g, change(g))).unwrap();
            }
            std::thread::yield_now();
        }
        drop(senders);
        readers
            .into_iter()
            .map(|r| r.join().expect("no reader panics"))
            .collect()
    });
    assert_every_engine_agreed(&results, "reader");
}

/// The writer's change `g` (generation `g` of the control plane): a delta, and every tenth
/// a whole new state.
fn change(g: usize) -> Update {
    if g % 10 == 0 {
        Update::Replace(Box::new(state(g)))
    } else {
        Update::UpsertEndpointSlice(Box::new(slice(g)))
    }
}

const FOLLOWERS: usize = 6;

/// One engine following `publication` until `done`, then one batch more: what it saw.
fn follower(id: usize, publication: Publication, done: &AtomicBool) -> Seen {
    let mut engine = Engine::follow(publication, &state(0).proxy);
    let mut seen = Seen {
        packets: 0,
        counted: 0,
        wrong: Vec::new(),
        generations: 0,
    };
    let mut port = 1024u16;
    let mut now = Instant::ZERO;
    let mut last_generation = 0;
    // The connection opened last batch and the endpoint it got.
    let mut open: Option<(SocketAddr, SocketAddr)> = None;
    let mut verdicts = vec![Verdict::Accept; usize::from(PACKETS_PER_BATCH) + 1];
    let mut metas = vec![PacketMeta::default(); verdicts.len()];
    loop {
        let finishing = done.load(Ordering::Acquire);
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..PACKETS_PER_BATCH {
            port = port.checked_add(1).unwrap_or(1024);
            let client = SocketAddr::new(IpAddr::from([10, 3, id as u8, 1]), port);
            clients.push(client);
            packets.push(tcp(client, sa("10.96.0.10:80"), "syn", b""));
        }
        if let Some((client, _)) = open {
            packets.push(tcp(client, sa("10.96.0.10:80"), "ack", b""));
        }
        let mut batch: Vec<&mut [u8]> = packets.iter_mut().map(|p| p.as_mut_slice()).collect();
        // A second a batch: client ports wrap only long after their connections expired.
        now = now + std::time::Duration::from_secs(1);
        engine.process_batch(Hook::Prerouting, &mut batch, &mut metas, now, &mut verdicts);
        seen.packets += packets.len() as u64;
        // The generation the whole batch ran on.
        let generation = engine.tables().cluster().generation() as usize;
        if generation < last_generation {
            seen.wrong
                .push(format!("went back from {last_generation} to {generation}"));
        }
        if generation != last_generation {
            seen.generations += 1;
        }
        last_generation = generation;
        let expected = pods(generation);
        let syns = usize::from(PACKETS_PER_BATCH);
        for (packet, verdict) in packets[..syns].iter().zip(&verdicts) {
            let (_, destination) = endpoints(packet);
            if !(matches!(verdict, Verdict::Translated(_)) && expected.contains(&destination.ip()))
            {
                seen.wrong.push(format!(
                    "generation {generation}: {verdict:?} to {destination}"
                ));
            }
        }
        if let (Some((_, given)), Some(ack)) = (open, packets.get(syns)) {
            let (_, destination) = endpoints(ack);
            if destination != given {
                seen.wrong
                    .push(format!("established went to {destination}, not {given}"));
            }
        }
        open = Some((clients[0], endpoints(&packets[0]).1));
        if finishing {
            seen.counted = engine.counters().total();
            seen.generations = generation;
            return seen;
        }
    }
}

#[test]
fn engines_following_one_control_plane_see_one_generation_per_batch() {
    let mut plane = ControlPlane::new(&state(0));
    let publication = plane.publication();
    let done = AtomicBool::new(false);
    let results: Vec<Seen> = std::thread::scope(|scope| {
        let followers: Vec<_> = (0..FOLLOWERS)
            .map(|id| {
                let publication = publication.clone();
                let done = &done;
                scope.spawn(move || follower(id, publication, done))
            })
            .collect();
        for g in 1..=GENERATIONS {
            plane.apply(change(g));
            std::thread::yield_now();
        }
        done.store(true, Ordering::Release);
        followers
            .into_iter()
            .map(|f| f.join().expect("no follower panics"))
            .collect()
    });
    assert_eq!(publication.generation(), GENERATIONS as u64);
    assert_every_engine_agreed(&results, "follower");
}
