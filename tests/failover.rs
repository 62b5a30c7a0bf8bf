//! Failures and HA: a pod dies or a node is drained; the simulated control plane
//! reschedules the pod elsewhere with a new address, the EndpointSlice follows and so does
//! every node's engine; the PC's requests keep succeeding. The notes' warning case: a
//! WordPress configured with MariaDB's pod address breaks for good after the move.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use etherparse::PacketBuilder;
use kubenat_core::{Path, RejectReason, Verdict};
use kubenat_sim::clock::Instant;
use kubenat_sim::sim::Sim;
use kubenat_sim::{Action, Journey, Report, Scenario, Step, TimedEvent};

const MARIADB_SERVICE: &str = "10.10.1.101:3307";
const MARIADB_OLD: &str = "10.10.0.103:3306";

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn kill(scenario: Scenario, ms: u64, pod: &str) -> Scenario {
    scenario.with_event(
        Duration::from_millis(ms),
        Action::KillPod { pod: pod.into() },
    )
}

/// What `node`'s engine does now with a new connection from WordPress 1 to the MariaDB
/// Service: `Ok(endpoint)` after DNAT, `Err(reason)` when rejected.
fn mariadb_verdict(sim: &mut Sim, node: usize, port: u16) -> Result<SocketAddr, RejectReason> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4([10, 10, 0, 102], [10, 10, 1, 101], 64)
        .tcp(port, 3307, 1, 64_000)
        .syn()
        .write(&mut packet, &[])
        .unwrap();
    let now = sim.now;
    match sim.nodes[node]
        .engine
        .process_path(Path::Forward, &mut packet, now)
    {
        Verdict::Translated(_) => {
            kubenat_e2e::check_packet(&packet).unwrap();
            Ok(kubenat_core::Flow::of_packet(&packet).unwrap().destination)
        }
        Verdict::Reject(reason) => Err(reason),
        other => panic!("node {node}: unexpected {other:?}"),
    }
}

/// Kill MariaDB at 1 s (endpoint out of the rules 1 s later, replacement ready 3 s later,
/// the notes' ControlPlane defaults): every node's engine sends the Service to the old
/// address, then rejects (no endpoints, as kube-proxy's reject rule), then sends it to
/// the new address.
#[test]
fn every_node_engine_follows_the_endpoint_slice() {
    let scenario = kill(Scenario::notes(200), 1000, "mariadb-0");
    let mut sim = Sim::new(&scenario).unwrap();
    let old: SocketAddr = MARIADB_OLD.parse().unwrap();
    let rows: [(&str, u64, Option<bool>); 5] = [
        // (when, time, Some(true): the old endpoint, Some(false): the new one, None: reject)
        ("before the failure", 900, Some(true)),
        ("dead but still in the slice", 1900, Some(true)),
        ("out of the slice, replacement not ready", 2100, None),
        ("just before the replacement", 3900, None),
        ("replacement ready", 4100, Some(false)),
    ];
    let mut port = 40_000;
    for (name, ms, want) in rows {
        sim.run_until(at(ms), Duration::ZERO, |_| false);
        let new = sim
            .control
            .disruptions
            .first()
            .and_then(|d| d.moves[0].to_ip);
        for node in 0..sim.nodes.len() {
            port += 1;
            let got = mariadb_verdict(&mut sim, node, port);
            let want = match want {
                Some(true) => Ok(old),
                Some(false) => Ok(SocketAddr::new(IpAddr::V4(new.expect("moved")), 3306)),
                None => Err(RejectReason::NoEndpoints),
            };
            assert_eq!(got, want, "{name}: node {}", sim.nodes[node].name);
        }
    }
    // The control plane's slice lists the replacement, ready, on its node, and only it.
    let new = sim.control.disruptions[0].moves[0].clone();
    let slice = sim
        .control
        .slices
        .iter()
        .find(|s| s.service.name == "mariadb-service")
        .unwrap();
    assert_eq!(slice.endpoints.len(), 1);
    let e = &slice.endpoints[0];
    assert_eq!(e.addresses, vec![IpAddr::V4(new.to_ip.unwrap())]);
    assert_eq!(e.node_name, new.to_node);
    assert!(e.conditions.ready && e.conditions.serving && !e.conditions.terminating);
}

/// Requests that ended before the event or started after the recovery succeed; those that
/// failed are exactly the ones the report counts as lost.
fn assert_recovers(report: &Report) -> (Vec<&Journey>, Vec<&Journey>) {
    let d = &report.disruptions[0];
    let recovered = d.recovered_ns.expect("recovered");
    let before: Vec<&Journey> = report
        .journeys
        .iter()
        .filter(|j| j.finished_ns.is_some_and(|f| f < d.at_ns))
        .collect();
    let after: Vec<&Journey> = report
        .journeys
        .iter()
        .filter(|j| j.started_ns > recovered)
        .collect();
    assert!(before.len() >= 3, "{report}");
    assert!(after.len() >= 10, "{report}");
    for j in before.iter().chain(&after) {
        assert!(
            j.outcome.ok(),
            "request {}: {:?}\n{report}",
            j.id,
            j.outcome
        );
    }
    let failed: Vec<u32> = report
        .journeys
        .iter()
        .filter(|j| !j.outcome.ok())
        .map(|j| j.id)
        .collect();
    assert_eq!(d.lost, failed, "{report}");
    assert!(d.failed_after.is_empty(), "{report}");
    assert_eq!(report.summary.failed, d.lost.len());
    assert_eq!(report.summary.requests, report.journeys.len());
    (before, after)
}

/// The endpoints a journey's connections to `service` were DNATed to.
fn dnat_targets(j: &Journey, service: &str) -> Vec<SocketAddr> {
    j.hops
        .iter()
        .filter_map(|h| match &h.step {
            Step::Node { before, after, .. } if before.destination.to_string() == service => {
                Some(after.destination)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn mariadb_dies_and_the_site_keeps_working() {
    let report = kubenat_sim::run(&kubenat_e2e::scenario("failover.yaml"));
    assert_eq!(report.disruptions.len(), 1, "{report}");
    let d = &report.disruptions[0];
    assert_eq!(d.event, "kill pod mariadb-0");
    assert_eq!(d.at_ns, 1_000_000_000);
    let [m] = d.moves.as_slice() else {
        panic!("{report}")
    };
    assert_eq!(
        (m.pod.as_deref(), m.from_node.as_deref()),
        (Some("mariadb-0"), Some("nodoc"))
    );
    assert_eq!(m.from_ip, "10.10.0.103".parse::<Ipv4Addr>().ok());
    // A StatefulSet pod keeps its name; it goes to a schedulable node other than the one
    // it died on (nodo1 is the NoSchedule control plane) with an address no pod had.
    assert_eq!(m.to_pod.as_deref(), Some("mariadb-0"));
    let node = m.to_node.as_deref().unwrap();
    assert!(["nodoa", "nodob"].contains(&node), "{node}");
    let new_ip = m.to_ip.unwrap();
    assert!(
        "10.10.0.0/16"
            .parse::<ipnet::Ipv4Net>()
            .unwrap()
            .contains(&new_ip)
    );
    assert!(
        report
            .places
            .iter()
            .filter(|p| p.since_ns == 0)
            .all(|p| p.ip != new_ip),
        "{new_ip} reused"
    );
    assert_eq!(m.slices.len(), 1);
    assert_eq!(m.endpoints_removed_ns, Some(2_000_000_000));
    assert_eq!(m.ready_ns, Some(4_000_000_000));
    assert_eq!(d.recovered_ns, Some(4_000_000_000));

    let (before, after) = assert_recovers(&report);
    assert!(!d.lost.is_empty(), "MariaDB was gone for 3 s: {report}");
    assert!(d.lost.len() <= 3, "{report}");
    let old: SocketAddr = MARIADB_OLD.parse().unwrap();
    let new = SocketAddr::new(IpAddr::V4(new_ip), 3306);
    for j in before {
        assert_eq!(
            dnat_targets(j, MARIADB_SERVICE),
            vec![old],
            "request {}",
            j.id
        );
    }
    for j in &after {
        assert_eq!(
            dnat_targets(j, MARIADB_SERVICE),
            vec![new],
            "request {}",
            j.id
        );
    }
    // Both WordPress pods kept serving, alternating.
    for pair in after.windows(2) {
        assert_ne!(pair[0].outcome.served_by, pair[1].outcome.served_by);
    }
    assert!(report.to_string().contains("request(s) lost"));
}

#[test]
fn draining_a_node_moves_its_pods_and_the_site_comes_back() {
    let scenario = Scenario::notes(150).with_event(
        Duration::from_millis(300),
        Action::DrainNode {
            node: "nodob".into(),
        },
    );
    let report = kubenat_sim::run(&scenario);
    let d = &report.disruptions[0];
    assert_eq!(d.event, "drain node nodob");
    let mut moved: Vec<(&str, &str)> = d
        .moves
        .iter()
        .map(|m| (m.pod.as_deref().unwrap(), m.to_node.as_deref().unwrap()))
        .collect();
    moved.sort();
    // Both of nodob's pods leave, neither to the cordoned nodob nor to nodo1 (NoSchedule).
    assert_eq!(moved.len(), 2, "{report}");
    assert_eq!(moved[0].0, "ingress-nginx-controller-7c6b9d8f5-kx2lp");
    assert!(moved[1].0.starts_with("wordpress-5d8f7c9b6-fghij"));
    for (pod, node) in &moved {
        assert!(["nodoa", "nodoc"].contains(node), "{pod} -> {node}");
    }
    // The ReplicaSet's replacement has a new name; the ingress controller's too.
    for m in &d.moves {
        let (from, to) = (m.pod.as_deref().unwrap(), m.to_pod.as_deref().unwrap());
        assert_ne!(to, from);
        assert_eq!(
            to.rsplit_once('-').unwrap().0,
            from.rsplit_once('-').unwrap().0
        );
    }
    let (_, after) = assert_recovers(&report);
    // After the recovery the two WordPress pods alternate again: the old one on nodoa and
    // the replacement; and the balancer still reaches nodob's NodePort (a drained node
    // keeps forwarding).
    let wp_new = d
        .moves
        .iter()
        .find(|m| m.pod.as_deref().unwrap().starts_with("wordpress"))
        .and_then(|m| m.to_pod.clone())
        .unwrap();
    let served: std::collections::BTreeSet<_> = after
        .iter()
        .filter_map(|j| j.outcome.served_by.clone())
        .collect();
    assert_eq!(
        served,
        ["wordpress-5d8f7c9b6-abcde".to_string(), wp_new].into()
    );
    assert!(
        after.iter().any(|j| j.hops.iter().any(|h| matches!(
            &h.step,
            Step::Balance { backend, .. } if backend.to_string() == "192.168.0.102:30880"
        ))),
        "no request through nodob's NodePort after the drain"
    );
}

/// The notes' warning: WordPress 1 configured with MariaDB's pod address keeps failing
/// after MariaDB moves; WordPress 2, configured with the Service's name, keeps working.
#[test]
fn a_wordpress_with_the_pod_address_breaks_and_the_one_with_the_name_does_not() {
    let report = kubenat_sim::run(&kubenat_e2e::scenario("failover-pod-ip.yaml"));
    let d = &report.disruptions[0];
    let recovered = d.recovered_ns.unwrap();
    let by_ip = "wordpress-5d8f7c9b6-abcde";
    let by_name = "wordpress-5d8f7c9b6-fghij";
    let mut broken = Vec::new();
    let (mut ok_by_name, mut ok_before) = (0, 0);
    for j in &report.journeys {
        let served = j.outcome.served_by.as_deref();
        if j.finished_ns.is_some_and(|f| f < d.at_ns) {
            assert!(j.outcome.ok(), "request {} before the failure", j.id);
            ok_before += 1;
        } else if j.started_ns > recovered {
            match served {
                Some(s) if s == by_ip => {
                    assert_eq!(j.outcome.status, Some(500), "request {}", j.id);
                    // It still connects to the dead address, which no node routes.
                    let db = j.hops.iter().find_map(|h| match &h.step {
                        Step::Connect { flow, purpose } if purpose == "database" => {
                            Some(flow.destination)
                        }
                        _ => None,
                    });
                    assert_eq!(db, Some(MARIADB_OLD.parse().unwrap()), "request {}", j.id);
                    broken.push(j.id);
                }
                Some(s) if s == by_name => {
                    assert!(j.outcome.ok(), "request {}: {:?}", j.id, j.outcome);
                    ok_by_name += 1;
                }
                other => panic!("request {} served by {other:?}", j.id),
            }
        }
    }
    assert!(ok_before >= 4 && ok_by_name >= 10, "{report}");
    assert!(
        broken.len().abs_diff(ok_by_name) <= 1,
        "the ingress alternates"
    );
    assert_eq!(d.failed_after, broken, "{report}");
    assert!(report.to_string().contains("failed after the recovery"));

    // The same run with both WordPress pods on the Service name loses nothing for good.
    let healthy = kubenat_sim::run(&kubenat_e2e::scenario("failover.yaml"));
    assert!(healthy.disruptions[0].failed_after.is_empty());
}

#[test]
fn events_naming_unknown_pods_or_nodes_are_errors() {
    for action in [
        Action::KillPod { pod: "nope".into() },
        Action::DrainNode {
            node: "nodoz".into(),
        },
        Action::Scale {
            deployment: kubenat_core::ServiceName::new("default", "nope"),
            replicas: 2,
        },
    ] {
        let scenario = Scenario {
            events: vec![TimedEvent {
                at: Duration::from_secs(1),
                action: action.clone(),
            }],
            ..Scenario::notes(1)
        };
        let err = kubenat_sim::simulate(&scenario, None).unwrap_err();
        assert!(err.contains(&action.to_string()), "{err}");
    }
}

/// `kubectl rollout restart deployment wordpress` while the PC browses: each WordPress pod
/// is replaced by one with a new address, the nodes' kube-proxies follow within their sync
/// delay, and the site keeps answering.
#[test]
fn a_rollout_replaces_every_pod_and_the_nodes_follow() {
    use kubenat_core::ServiceName;
    let mut scenario = kubenat_e2e::scenario("failover.yaml");
    scenario.events.clear();
    scenario.control_plane.sync_delay = Duration::from_millis(200);
    let deployment = ServiceName::new("default", "wordpress");
    let scenario = scenario.with_event(Duration::from_secs(1), Action::Rollout { deployment });
    let report = kubenat_sim::run(&scenario);
    let d = &report.disruptions[0];
    assert_eq!(d.event, "rollout deployment default/wordpress");
    assert_eq!(d.moves.len(), 2, "{d:?}");
    let new: Vec<&str> = d.moves.iter().filter_map(|m| m.to_pod.as_deref()).collect();
    assert_eq!(new.len(), 2);
    for m in &d.moves {
        let from = m.pod.as_deref().unwrap();
        assert!(from.starts_with("wordpress-5d8f7c9b6-"), "{from}");
        let to = m.to_pod.as_deref().unwrap();
        assert!(to.starts_with("wordpress-") && !to.starts_with("wordpress-5d8f7c9b6-"));
        assert_ne!(m.from_ip, m.to_ip);
    }
    // One pod at a time: the second starts once the first is ready (3 s each).
    let ready: Vec<u64> = d.moves.iter().map(|m| m.ready_ns.unwrap()).collect();
    assert_eq!(ready, [4_000_000_000, 7_000_000_000]);
    // Recovered once the last old pod stopped, an endpoint delay later.
    assert_eq!(d.recovered_ns, Some(8_000_000_000));
    // After the rollout only new pods serve.
    let last = report.journeys.last().unwrap();
    assert!(
        new.contains(&last.outcome.served_by.as_deref().unwrap()),
        "{last:?}"
    );
    // Every change reached every node within the sync delay.
    let p = report.summary.programming.as_ref().unwrap();
    assert_eq!(p.changes, report.programming.len());
    assert!(p.changes >= 2, "{p:?}");
    assert!(p.max_ns <= 200_000_000 && p.p50_ns <= p.p99_ns && p.p99_ns <= p.max_ns);
    assert_eq!(report.summary.lost, Some(d.lost.len()));
    assert!(report.to_string().contains("network programming: "));
    // The same seed, the same bytes.
    assert_eq!(report.to_json(), kubenat_sim::run(&scenario).to_json());
}

/// `examples/miempresa/scale.yaml`: WordPress scaled 2 -> 4 -> 1 while the PC browses, each
/// node syncing up to 200 ms late. The new pods serve once ready; the surplus ones leave
/// the slice first and stop only after every node dropped them: no request fails.
#[test]
fn scaling_wordpress_up_and_down_loses_no_request() {
    use kubenat_sim::disruption::Change;
    let scenario = kubenat_e2e::scenario("scale.yaml");
    let report = kubenat_sim::run(&scenario);
    let [up, down] = report.disruptions.as_slice() else {
        panic!("{report}")
    };
    assert_eq!(up.event, "scale deployment default/wordpress --replicas=4");
    assert_eq!(
        down.event,
        "scale deployment default/wordpress --replicas=1"
    );

    // Up: two new pods of the same ReplicaSet, new names and addresses, on two different
    // schedulable nodes (nodo1 is NoSchedule), ready after the restart delay.
    assert_eq!(up.moves.len(), 2, "{report}");
    let mut new = Vec::new();
    for m in &up.moves {
        assert_eq!(
            (m.change, &m.pod, m.from_ip),
            (Change::Started, &None, None)
        );
        let to = m.to_pod.clone().unwrap();
        assert!(to.starts_with("wordpress-5d8f7c9b6-"), "{to}");
        assert!(!to.ends_with("-abcde") && !to.ends_with("-fghij"), "{to}");
        assert!(
            report
                .places
                .iter()
                .filter(|p| p.since_ns == 0)
                .all(|p| Some(p.ip) != m.to_ip)
        );
        assert_eq!(m.slices, ["default/wp-service-9qz4m"]);
        assert_eq!(m.ready_ns, Some(4_000_000_000));
        new.push(to);
    }
    let nodes: Vec<_> = up
        .moves
        .iter()
        .map(|m| m.to_node.as_deref().unwrap())
        .collect();
    assert_ne!(nodes[0], nodes[1]);
    assert!(!nodes.contains(&"nodo1"), "{nodes:?}");
    assert_eq!(up.recovered_ns, Some(4_000_000_000));

    // Down: the newest three stop (the two new ones, then fghij), leaving the slice at
    // once and stopping an endpoint delay after the last node applied that.
    let mut stopped: Vec<String> = down.moves.iter().map(|m| m.pod.clone().unwrap()).collect();
    stopped.sort();
    let mut want = vec![
        "wordpress-5d8f7c9b6-fghij".to_string(),
        new[0].clone(),
        new[1].clone(),
    ];
    want.sort();
    assert_eq!(stopped, want, "{report}");
    let removal = report
        .programming
        .iter()
        .find(|c| c.at_ns == 6_000_000_000)
        .expect("the scale-down's change");
    let applied = removal.applied_ns.unwrap();
    assert!(
        applied > 6_000_000_000 && applied <= 6_200_000_000,
        "{applied}"
    );
    for m in &down.moves {
        assert_eq!(m.change, Change::Stopped);
        assert_eq!((&m.to_pod, m.to_ip), (&None, None));
        assert_eq!(m.endpoints_removed_ns, Some(6_000_000_000));
        let place = report
            .places
            .iter()
            .find(|p| Some(p.ip) == m.from_ip)
            .unwrap();
        assert_eq!(
            place.until_ns,
            Some(applied + 1_000_000_000),
            "{}",
            place.name
        );
    }
    assert_eq!(down.recovered_ns, Some(applied + 1_000_000_000));

    // Every request succeeded; a new pod served some; after the scale-down only the one
    // pod left serves.
    assert_eq!(report.summary.requests, 110, "{report}");
    assert_eq!(report.summary.failed, 0, "{report}");
    assert!(report.journeys.iter().all(|j| j.outcome.ok()));
    assert_eq!(report.summary.lost, Some(0));
    assert!(
        new.iter()
            .any(|pod| report.summary.served_by.contains_key(pod)),
        "{report}"
    );
    for j in report.journeys.iter().filter(|j| j.started_ns > applied) {
        let served = j.outcome.served_by.as_deref();
        assert_eq!(
            served,
            Some("wordpress-5d8f7c9b6-abcde"),
            "request {}",
            j.id
        );
    }
    assert!(report.to_string().contains("scaled down"), "{report}");
    assert_eq!(report.to_json(), kubenat_sim::run(&scenario).to_json());
}

/// Pods named `name-<ordinal>` scale as a StatefulSet's: up takes the next ordinal, down
/// stops the highest; the site keeps answering.
#[test]
fn a_statefulset_scales_by_ordinal() {
    use kubenat_core::ServiceName;
    let mut scenario = kubenat_e2e::scenario("failover.yaml");
    scenario.events.clear();
    let mariadb = ServiceName::new("default", "mariadb");
    let scale = |replicas| Action::Scale {
        deployment: mariadb.clone(),
        replicas,
    };
    let scenario = scenario
        .with_event(Duration::from_secs(1), scale(3))
        .with_event(Duration::from_secs(5), scale(2));
    let report = kubenat_sim::run(&scenario);
    let [up, down] = report.disruptions.as_slice() else {
        panic!("{report}")
    };
    let started: Vec<_> = up
        .moves
        .iter()
        .filter_map(|m| m.to_pod.as_deref())
        .collect();
    assert_eq!(started, ["mariadb-1", "mariadb-2"]);
    let stopped: Vec<_> = down.moves.iter().filter_map(|m| m.pod.as_deref()).collect();
    assert_eq!(stopped, ["mariadb-2"]);
    assert_eq!(report.summary.failed, 0, "{report}");
    assert_eq!(report.summary.lost, Some(0));
}

/// Scaled to zero the site fails (no endpoints); scaled back up, the new pod joins the
/// Service the old ones were in, and serves.
#[test]
fn a_deployment_scaled_to_zero_comes_back_into_its_service() {
    use kubenat_core::ServiceName;
    let mut scenario = kubenat_e2e::scenario("failover.yaml");
    scenario.events.clear();
    let wordpress = ServiceName::new("default", "wordpress");
    let scale = |replicas| Action::Scale {
        deployment: wordpress.clone(),
        replicas,
    };
    let scenario = scenario
        .with_event(Duration::from_secs(1), scale(0))
        .with_event(Duration::from_secs(2), scale(1));
    let report = kubenat_sim::run(&scenario);
    let [down, up] = report.disruptions.as_slice() else {
        panic!("{report}")
    };
    assert_eq!(down.moves.len(), 2, "{report}");
    let [m] = up.moves.as_slice() else {
        panic!("{report}")
    };
    assert_eq!(m.slices, ["default/wp-service-9qz4m"]);
    let new = m.to_pod.as_deref().unwrap();
    let recovered = up.recovered_ns.expect("recovered");
    let after: Vec<_> = report
        .journeys
        .iter()
        .filter(|j| j.started_ns > recovered)
        .collect();
    assert!(after.len() >= 10, "{report}");
    for j in after {
        assert!(j.outcome.ok(), "request {}: {:?}", j.id, j.outcome);
        assert_eq!(j.outcome.served_by.as_deref(), Some(new));
    }
    assert!(
        report.summary.lost.unwrap() > 0,
        "nothing served for 4 s: {report}"
    );
}
