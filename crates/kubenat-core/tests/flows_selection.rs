//! Endpoint selection over new flows: round robin alternates strictly, Maglev stays in the
//! endpoint set and depends on the 5-tuple only, sessionAffinity ClientIP remembers a
//! client's endpoint until its timeout.
//!
//! Each row is a new connection and the verdict kube-proxy's rules give it; the runner is
//! `common::flow_table`, and every IPv4 row also runs as its IPv6 twin on a dual-stack
//! copy of the cluster.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::clusters::{BOTH_AB, EXT, NODE_A, NODE_B, ONLY_A, POD, custom_cluster};
use common::flow_table::Masq::{No, Yes};
use common::flow_table::{Row, assert_rows_on_node_a, fwd, resolve, to};
use common::ip;
use common::packets::{assert_checksums, endpoints, tcp};
use common::twins::{dual_stack, v6};
use kubenat_core::trace::Selection;
use kubenat_core::{
    EndpointSelection, Engine, Instant, PacketMeta, Path, TraceStep, Verdict, reference,
};

// ---------------------------------------------------------------------------------------
// Round robin
// ---------------------------------------------------------------------------------------

/// The engine's round robin rotates strictly: four new flows to wp-service alternate
/// between its two endpoints (kube-proxy draws at random; the engine documents rotation).
#[test]
fn wp_service_alternates_strictly_over_new_flows() {
    for (node, _) in reference::NODES {
        let state = dual_stack(reference::cluster(node));
        for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
            let mut engine = Engine::new(&state);
            let service: SocketAddr = map("10.10.1.102:8080").parse().unwrap();
            let both: BTreeSet<SocketAddr> = ["10.10.0.102:80", "10.10.0.112:80"]
                .iter()
                .map(|e| map(e).parse().unwrap())
                .collect();
            let chosen: Vec<SocketAddr> = (0..4)
                .map(|i| {
                    let source = SocketAddr::new(ip(&map(POD)), 50_000 + i);
                    let mut pkt = tcp(source, service, "syn", b"");
                    let verdict =
                        engine.process_path(Path::Forward, &mut pkt, Instant::from_secs(1));
                    assert!(
                        matches!(verdict, Verdict::Translated(_)),
                        "{node}: {verdict:?}"
                    );
                    assert_checksums(&pkt);
                    endpoints(&pkt).1
                })
                .collect();
            assert_ne!(
                chosen[0], chosen[1],
                "{node}: consecutive flows must alternate: {chosen:?}"
            );
            assert_eq!(chosen[0], chosen[2], "{node}: {chosen:?}");
            assert_eq!(chosen[1], chosen[3], "{node}: {chosen:?}");
            assert_eq!(
                chosen.iter().copied().collect::<BTreeSet<_>>(),
                both,
                "{node}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Maglev
// ---------------------------------------------------------------------------------------

const MAGLEV: EndpointSelection = EndpointSelection::Maglev { table_size: 251 };

#[rustfmt::skip]
const MAGLEV_ROWS: &[Row] = &[
    fwd("Maglev: pod to ClusterIP lands in the endpoint set", POD, "10.10.1.13", 80, to(BOTH_AB, No)),
    fwd("Maglev: ETP Local external client picks among local endpoints only", EXT, "198.51.100.11", 80, to(ONLY_A, No)),
    fwd("Maglev: ETP Cluster NodePort, all endpoints, masqueraded", EXT, "NODE", 30013, to(BOTH_AB, Yes)),
    fwd("Maglev: three endpoints all reachable", POD, "10.10.1.31", 80, to(&["10.10.0.11:8080", "10.10.0.21:8080", "10.10.0.22:8080"], No)),
];

#[test]
fn maglev_selection() {
    let state = custom_cluster(|p| p.selection = MAGLEV);
    assert_rows_on_node_a("maglev", &state, MAGLEV_ROWS);
}

/// Maglev hashes the 5-tuple: the same flow picks the same endpoint on a fresh engine
/// built from the same state.
#[test]
fn maglev_same_five_tuple_same_endpoint_on_a_fresh_engine() {
    let state = custom_cluster(|p| p.selection = MAGLEV);
    for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
        let service: SocketAddr = map("10.10.1.31:80").parse().unwrap();
        let pick = |engine: &mut Engine, port: u16| {
            let source = SocketAddr::new(ip(&map(POD)), port);
            let mut pkt = tcp(source, service, "syn", b"");
            let verdict = engine.process_path(Path::Forward, &mut pkt, Instant::from_secs(1));
            assert!(matches!(verdict, Verdict::Translated(_)), "{verdict:?}");
            assert_checksums(&pkt);
            endpoints(&pkt).1
        };
        let mut first = Engine::new(&state);
        let a: Vec<SocketAddr> = (0..64).map(|i| pick(&mut first, 30_000 + i)).collect();
        // A fresh engine, flows in reverse order: the choice depends on the tuple only.
        let mut second = Engine::new(&state);
        let mut b: Vec<SocketAddr> = (0..64)
            .rev()
            .map(|i| pick(&mut second, 30_000 + i))
            .collect();
        b.reverse();
        assert_eq!(a, b);
        assert_eq!(
            a.iter().collect::<BTreeSet<_>>().len(),
            3,
            "64 tuples should reach all 3 endpoints: {a:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// sessionAffinity ClientIP
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Stick {
    /// A fresh choice (not from affinity).
    Fresh,
    /// A fresh choice that differs from step n (round robin moved on).
    FreshUnlike(usize),
    /// The endpoint of step n, remembered.
    SameAs(usize),
}

#[derive(Clone, Copy, Debug)]
struct Step {
    at_secs: u64,
    client: &'static str,
    /// The affinity service (timeout 60 s) through this frontend.
    dst: &'static str,
    dport: u16,
    stick: Stick,
}

const fn step(
    at_secs: u64,
    client: &'static str,
    dst: &'static str,
    dport: u16,
    stick: Stick,
) -> Step {
    Step {
        at_secs,
        client,
        dst,
        dport,
        stick,
    }
}

struct AffinityCase {
    name: &'static str,
    steps: &'static [Step],
    /// The fresh choices together cover every endpoint (clients spread).
    spread: bool,
}

const CIP: &str = "10.10.1.30";

const AFFINITY_CASES: &[AffinityCase] = &[
    AffinityCase {
        name: "same client keeps its endpoint over many new connections",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(2, EXT, CIP, 80, Stick::SameAs(0)),
            step(3, EXT, CIP, 80, Stick::SameAs(0)),
            step(4, EXT, CIP, 80, Stick::SameAs(0)),
            step(5, EXT, CIP, 80, Stick::SameAs(0)),
            step(6, EXT, CIP, 80, Stick::SameAs(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "different clients get fresh choices and spread over the endpoints",
        steps: &[
            step(1, "203.0.113.1", CIP, 80, Stick::Fresh),
            step(1, "203.0.113.2", CIP, 80, Stick::FreshUnlike(0)),
            step(1, "203.0.113.3", CIP, 80, Stick::Fresh),
            step(2, "203.0.113.1", CIP, 80, Stick::SameAs(0)),
            step(2, "203.0.113.2", CIP, 80, Stick::SameAs(1)),
            step(2, "203.0.113.3", CIP, 80, Stick::SameAs(2)),
        ],
        spread: true,
    },
    AffinityCase {
        name: "affinity is per service port, shared by ClusterIP and NodePort",
        steps: &[
            step(1, EXT, "NODE", 30030, Stick::Fresh),
            step(2, EXT, CIP, 80, Stick::SameAs(0)),
            step(3, EXT, "NODE", 30030, Stick::SameAs(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "after the timeout passes without a new connection, a new choice is made",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(62, EXT, CIP, 80, Stick::FreshUnlike(0)),
        ],
        spread: false,
    },
    AffinityCase {
        name: "every new connection refreshes the timer",
        steps: &[
            step(1, EXT, CIP, 80, Stick::Fresh),
            step(50, EXT, CIP, 80, Stick::SameAs(0)),
            step(100, EXT, CIP, 80, Stick::SameAs(0)),
            step(150, EXT, CIP, 80, Stick::SameAs(0)),
        ],
        spread: false,
    },
];

#[test]
fn session_affinity_client_ip() {
    let state = custom_cluster(|_| {});
    let all: BTreeSet<&str> = ["10.10.0.11:8080", "10.10.0.21:8080", "10.10.0.22:8080"].into();
    for map in [|s: &str| s.to_string(), v6 as fn(&str) -> String] {
        let all: BTreeSet<SocketAddr> = all.iter().map(|e| map(e).parse().unwrap()).collect();
        for case in AFFINITY_CASES {
            let mut engine = Engine::new(&state);
            let mut chosen: Vec<SocketAddr> = Vec::new();
            for (i, s) in case.steps.iter().enumerate() {
                let ctx = format!(
                    "{} (step {i}, {})",
                    case.name,
                    if map("10.0.0.1") == "10.0.0.1" {
                        "IPv4"
                    } else {
                        "IPv6"
                    }
                );
                let source = SocketAddr::new(ip(&map(s.client)), 20_000 + i as u16);
                let destination =
                    SocketAddr::new(ip(&map(resolve(s.dst, NODE_A, NODE_B))), s.dport);
                let mut pkt = tcp(source, destination, "syn", b"");
                let mut trace = Vec::new();
                let verdict = engine.process_path_traced(
                    Path::Forward,
                    &mut pkt,
                    &mut PacketMeta::default(),
                    Instant::from_secs(s.at_secs),
                    &mut trace,
                );
                assert!(
                    matches!(verdict, Verdict::Translated(_)),
                    "{ctx}: {verdict:?}"
                );
                assert_checksums(&pkt);
                let endpoint = endpoints(&pkt).1;
                assert!(all.contains(&endpoint), "{ctx}: {endpoint}");
                let by_affinity = trace.iter().any(|t| {
                    matches!(
                        t,
                        TraceStep::EndpointChosen {
                            selection: Selection::Affinity,
                            ..
                        }
                    )
                });
                match s.stick {
                    Stick::Fresh => assert!(!by_affinity, "{ctx}: expected a fresh choice"),
                    Stick::FreshUnlike(n) => {
                        assert!(!by_affinity, "{ctx}: expected a fresh choice");
                        assert_ne!(endpoint, chosen[n], "{ctx}");
                    }
                    Stick::SameAs(n) => {
                        assert!(by_affinity, "{ctx}: expected the remembered endpoint");
                        assert_eq!(endpoint, chosen[n], "{ctx}");
                    }
                }
                chosen.push(endpoint);
            }
            if case.spread {
                assert_eq!(
                    chosen.iter().copied().collect::<BTreeSet<_>>(),
                    all,
                    "{}",
                    case.name
                );
            }
        }
    }
}
