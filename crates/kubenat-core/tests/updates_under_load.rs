//! Updates under load: a writer thread streams whole new states and one-Service deltas to
//! reader threads that push packets through their own engines (the shared-nothing design
//! `kubenat bench --threads` uses). Every verdict agrees with the state its engine had
//! applied, never with a mix; no packet is lost or processed twice; nothing panics.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;

use common::packets::{endpoints, tcp};
use common::sa;
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine, Hook, Instant,
    Protocol, ProxyConfig, Service, ServiceName, ServicePort, TargetPort, Update, Verdict,
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
        engine.process_batch(Hook::Prerouting, &mut batch, now, &mut verdicts);
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
                let update = if g % 10 == 0 {
                    Update::Replace(Box::new(state(g)))
                } else {
                    Update::UpsertEndpointSlice(Box::new(slice(g)))
                };
                sender.send((g, update)).unwrap();
            }
            std::thread::yield_now();
        }
        drop(senders);
        readers
            .into_iter()
            .map(|r| r.join().expect("no reader panics"))
            .collect()
    });
    for (id, seen) in results.iter().enumerate() {
        assert!(
            seen.wrong.is_empty(),
            "reader {id}: {:?}",
            &seen.wrong[..seen.wrong.len().min(5)]
        );
        assert_eq!(
            seen.counted, seen.packets,
            "reader {id}: every packet counted once"
        );
        assert_eq!(
            seen.generations, GENERATIONS,
            "reader {id}: every update applied"
        );
    }
}
