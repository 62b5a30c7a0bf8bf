//! Generated clusters: every client's requests reach a pod of the Service it named, through
//! its node's engine and the cluster DNS; the same seed gives the same run.

use kubenat_sim::capture::MAX_OPEN;
use kubenat_sim::generate::ClusterSize;
use kubenat_sim::{Scenario, Step, run, simulate};
use pcap_file::pcap::PcapReader;

fn small() -> Scenario {
    let size: ClusterSize = "nodes=20,pods=100,services=10".parse().unwrap();
    Scenario::generated(size, 3).unwrap().with_requests(2)
}

#[test]
fn every_request_of_a_generated_cluster_succeeds() {
    let scenario = small();
    let report = run(&scenario);
    let s = &report.summary;
    assert_eq!(s.requests, 49 * 2);
    assert_eq!(s.succeeded, s.requests, "{}", s.failed);
    assert_eq!(s.unattributed_hops, 0);
    for j in &report.journeys {
        // `GET http://svc-<k>/...` served by a pod `svc-<k>-<n>` of that Service, after its
        // client's node DNATed the cluster DNS and the Service's cluster IP.
        let service = j.label.split('/').nth(2).unwrap();
        let pod = j.outcome.served_by.as_deref().unwrap();
        assert_eq!(pod.rsplit_once('-').unwrap().0, service, "{}", j.label);
        let translated: Vec<&str> = j
            .hops
            .iter()
            .filter_map(|h| match &h.step {
                Step::Node {
                    service: Some(s), ..
                } => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            translated,
            [
                "kube-system/kube-dns:dns",
                &format!("default/{service}:http")
            ],
            "{}",
            j.label
        );
    }
    // Every node forwarded, none dropped or lost a packet.
    for n in &s.nodes {
        assert!(n.translated > 0, "{n:?}");
        assert_eq!((n.dropped, n.rejected, n.unrouted), (0, 0, 0), "{n:?}");
    }
}

#[test]
fn a_generated_cluster_replays_exactly() {
    let a = run(&small());
    let b = run(&small());
    assert_eq!(a.to_json(), b.to_json());
    let other = run(&small().with_seed(4));
    assert_ne!(a.to_json(), other.to_json());
}

/// More links than capture files stay open: files are closed and reopened to append, and
/// each still holds exactly its link's packets, the same bytes on every run.
#[test]
fn captures_of_more_links_than_open_files_are_whole() {
    let size: ClusterSize = "nodes=10,pods=300,services=10".parse().unwrap();
    let scenario = Scenario::generated(size, 5).unwrap();
    let capture = |dir: &str| simulate(&scenario, Some(&kubenat_e2e::scratch_dir!(dir))).unwrap();
    let (a, b) = (capture("generated-pcap-a"), capture("generated-pcap-b"));
    assert!(a.captures.len() > MAX_OPEN, "{}", a.captures.len());
    assert_eq!(a.report.summary.succeeded, a.report.summary.requests);
    for (x, y) in a.captures.iter().zip(&b.captures) {
        let bytes = kubenat_e2e::capture_bytes(x);
        assert!(bytes == kubenat_e2e::capture_bytes(y), "{} differs", x.name);
        let mut reader = PcapReader::new(bytes.as_slice()).unwrap();
        let mut packets = 0;
        while let Some(p) = reader.next_packet() {
            kubenat_e2e::check_packet(&p.unwrap().data).unwrap();
            packets += 1;
        }
        assert_eq!(packets, x.packets, "{}", x.name);
    }
}

/// A few hundred nodes sharing one compiled cluster, with Deployments rolled out while the
/// clients' requests are under way: every request still succeeds (an old pod stops only
/// after every node's kube-proxy has moved on), and each EndpointSlice change reached
/// every node within the sync delay. The 5,000-node run is measured in release (see
/// docs/benchmarks.md), not here.
#[test]
fn hundreds_of_nodes_share_one_snapshot_through_rollouts() {
    let size: ClusterSize = "nodes=300,pods=3000,services=30,churn=3".parse().unwrap();
    let scenario = Scenario::generated(size, 2).unwrap();
    assert_eq!(scenario.events.len(), 3);
    let mut sim = kubenat_sim::sim::Sim::new(&scenario).unwrap();
    let generation = sim.plane.snapshot().generation();
    let report = kubenat_sim::play(&mut sim, &scenario, None).unwrap().report;
    let s = &report.summary;
    assert!(s.requests > 1000, "{}", s.requests);
    assert_eq!(s.succeeded, s.requests, "{} failed", s.failed);
    assert_eq!(s.lost, Some(0));
    // Each rollout step changes the Service's slice once: the new pod in the old one's place.
    let p = s.programming.as_ref().expect("changes applied everywhere");
    assert_eq!(p.changes, report.programming.len());
    assert_eq!(
        sim.plane.snapshot().generation() - generation,
        p.changes as u64
    );
    assert!(p.max_ns <= 500_000_000, "{p:?}");
    // Every node ended on the last snapshot.
    for n in &sim.nodes {
        assert!(std::sync::Arc::ptr_eq(
            n.engine.tables().cluster(),
            sim.plane.snapshot()
        ));
    }
}
