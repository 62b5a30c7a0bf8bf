//! The course notes' scenario end to end: the manifests of `examples/miempresa` imported
//! with kubenat-k8s, then the PC's requests cross the balancer, a NodePort, the ingress
//! controller, wp-service, a WordPress pod, the cluster DNS and mariadb-service.

use std::net::SocketAddr;

use kubenat_sim::{Journey, Scenario, Step, run};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The hop kinds of a journey, in order, as `at:kind` strings.
fn find<'a>(j: &'a Journey, at: &str, pred: impl Fn(&Step) -> bool) -> Option<&'a Step> {
    j.hops
        .iter()
        .find(|h| h.at == at && pred(&h.step))
        .map(|h| &h.step)
}

fn node_hop<'a>(j: &'a Journey, service: &str) -> Option<(&'a str, &'a Step)> {
    j.hops.iter().find_map(|h| match &h.step {
        Step::Node {
            service: Some(s), ..
        } if s == service => Some((h.at.as_str(), &h.step)),
        _ => None,
    })
}

/// The notes' network with the manifests read from `examples/miempresa` as a user's
/// `kubectl get -o yaml` dump would be.
fn imported(requests: u32) -> Scenario {
    let files = [
        kubenat_e2e::example("cluster.yaml"),
        kubenat_e2e::example("kube-proxy.yaml"),
    ];
    let manifests = kubenat_k8s::load(&files).unwrap_or_else(|errors| panic!("{errors:?}"));
    assert!(manifests.warnings.is_empty(), "{:?}", manifests.warnings);
    Scenario {
        manifests,
        ..Scenario::notes(requests)
    }
}

#[test]
fn the_notes_scenario_is_the_imported_manifests() {
    let (files, notes) = (imported(1), Scenario::notes(1));
    assert_eq!(files.manifests.services, notes.manifests.services);
    assert_eq!(
        files.manifests.endpoint_slices,
        notes.manifests.endpoint_slices
    );
    assert_eq!(files.manifests.ingresses, notes.manifests.ingresses);
    assert_eq!(files.manifests.proxy, notes.manifests.proxy);
    assert_eq!(run(&files).to_json(), run(&notes).to_json());
}

#[test]
fn four_requests_travel_the_whole_company_network() {
    let report = run(&imported(4));
    assert_eq!(report.summary.requests, 4, "{report}");
    assert_eq!(report.summary.succeeded, 4, "{report}");
    assert_eq!(report.summary.unattributed_hops, 0, "{report}");

    // The balancer spreads round robin over the four nodes' NodePort, in order.
    let nodes = ["nodo1", "nodoa", "nodob", "nodoc"];
    let node_ips = [
        "192.168.0.100",
        "192.168.0.101",
        "192.168.0.102",
        "192.168.0.103",
    ];
    for (i, j) in report.journeys.iter().enumerate() {
        let text = format!("{report}");
        // PC resolves the site's name with the outside DNS.
        assert!(
            matches!(
                find(j, "MenchuPC", |s| matches!(s, Step::Resolved { .. })),
                Some(Step::Resolved { address: Some(a), .. }) if a.to_string() == "192.168.0.10"
            ),
            "request {}: {text}",
            j.id
        );
        // Balancer -> node i:30880.
        let Some(Step::Balance { backend, .. }) =
            find(j, "balanceador", |s| matches!(s, Step::Balance { .. }))
        else {
            panic!("request {}: no balancer hop\n{text}", j.id);
        };
        assert_eq!(*backend, sa(&format!("{}:30880", node_ips[i])));

        // That node DNATs the NodePort to the ingress controller pod and masquerades to its
        // own address (externalTrafficPolicy Cluster: replies must come back through it).
        let (at, step) = node_hop(j, "default/nginx:http").expect("NodePort DNAT hop");
        assert_eq!(at, nodes[i]);
        let Step::Node {
            before,
            after,
            frontend,
            masquerade,
            ..
        } = step
        else {
            unreachable!()
        };
        assert_eq!(before.destination, *backend);
        assert_eq!(after.destination, sa("10.10.0.105:80"));
        assert_eq!(after.source.ip().to_string(), node_ips[i]);
        assert_eq!(frontend.as_deref(), Some("node port"));
        assert!(masquerade.is_some());

        // The ingress controller matches the notes' rule.
        let Some(Step::IngressRule {
            host,
            ingress,
            address,
            ..
        }) = find(j, "ingress-nginx-controller-7c6b9d8f5-kx2lp", |s| {
            matches!(s, Step::IngressRule { .. })
        })
        else {
            panic!("request {}: no ingress rule hop\n{text}", j.id);
        };
        assert_eq!(host, "web1.miempresa.com");
        assert_eq!(ingress, "default/web1");
        assert_eq!(*address, sa("10.10.1.102:8080"));

        // wp-service is DNATed on nodob (the ingress pod's node) to a WordPress pod; pod
        // sources are not masqueraded.
        let (at, step) = node_hop(j, "default/wp-service:http").expect("wp-service DNAT");
        assert_eq!(at, "nodob");
        let Step::Node {
            before,
            after,
            masquerade,
            ..
        } = step
        else {
            unreachable!()
        };
        assert_eq!(before.source.ip().to_string(), "10.10.0.105");
        assert_eq!(before.destination, sa("10.10.1.102:8080"));
        assert_eq!(after.source, before.source);
        assert!(masquerade.is_none());
        let pod = match after.destination.ip().to_string().as_str() {
            "10.10.0.102" => "wordpress-5d8f7c9b6-abcde",
            "10.10.0.112" => "wordpress-5d8f7c9b6-fghij",
            other => panic!("wp-service DNATed to {other}"),
        };
        assert_eq!(j.outcome.served_by.as_deref(), Some(pod));
        assert!(find(j, pod, |s| matches!(s, Step::HttpRequest { .. })).is_some());

        // The WordPress pod resolves mariadb-service through kube-dns (its node DNATs the
        // cluster IP to the CoreDNS pod) with the search list.
        let (_, dns) = node_hop(j, "kube-system/kube-dns:dns").expect("kube-dns DNAT");
        let Step::Node { after, .. } = dns else {
            unreachable!()
        };
        assert_eq!(after.destination, sa("10.10.0.10:53"));
        assert!(
            find(j, "coredns-7db6d8ff4d-q9w2e", |s| matches!(
                s,
                Step::DnsAnswer { name, answers, .. }
                    if name == "mariadb-service.default.svc.cluster.local"
                        && answers == &["10.10.1.101".to_string()]
            ))
            .is_some(),
            "request {}: {text}",
            j.id
        );
        assert!(matches!(
            find(j, pod, |s| matches!(s, Step::Resolved { .. })),
            Some(Step::Resolved { name, address: Some(a), .. })
                if name == "mariadb-service" && a.to_string() == "10.10.1.101"
        ));

        // mariadb-service:3307 is DNATed to the MariaDB pod's 3306, which answers.
        let (_, db) = node_hop(j, "default/mariadb-service:mysql").expect("mariadb DNAT");
        let Step::Node { before, after, .. } = db else {
            unreachable!()
        };
        assert_eq!(before.destination, sa("10.10.1.101:3307"));
        assert_eq!(after.destination, sa("10.10.0.103:3306"));
        assert!(find(j, "mariadb-0", |s| matches!(s, Step::DbQuery { .. })).is_some());
        assert!(matches!(
            find(j, pod, |s| matches!(s, Step::DbReply { .. })),
            Some(Step::DbReply { reply }) if reply.contains("Mi Empresa")
        ));

        // The PC gets the page.
        assert!(matches!(
            find(j, "MenchuPC", |s| matches!(s, Step::HttpResponse { .. })),
            Some(Step::HttpResponse { status: 200, served_by: Some(p) }) if p == pod
        ));
    }

    // One ingress controller, so one engine (nodob's) picks wp-service's endpoint for every
    // request: round robin alternates between the two WordPress pods.
    assert_eq!(
        report.summary.sequence,
        [
            "wordpress-5d8f7c9b6-abcde",
            "wordpress-5d8f7c9b6-fghij",
            "wordpress-5d8f7c9b6-abcde",
            "wordpress-5d8f7c9b6-fghij"
        ]
    );
    // Nothing went astray.
    for n in &report.summary.nodes {
        assert_eq!((n.dropped, n.rejected, n.unrouted), (0, 0, 0), "{n:?}");
    }
}

#[test]
fn text_shows_every_hop_in_order() {
    let text = run(&Scenario::notes(2)).to_string();
    let first = text.split("request 2:").next().unwrap();
    let mut rest = first;
    for needle in [
        "resolved web1.miempresa.com = 192.168.0.10",
        "balancer picks 192.168.0.100:30880",
        "DNAT tcp 192.168.0.10:",
        "=> 10.10.0.105:80, SNAT source => 192.168.0.100:",
        "forward tcp 192.168.0.100:",
        "matches Ingress default/web1",
        "=> 10.10.0.102:80 [default/wp-service:http",
        "HTTP GET / Host web1.miempresa.com",
        "DNS query A mariadb-service.default.svc.cluster.local?",
        "=> 10.10.0.10:53 [kube-system/kube-dns:dns",
        "DNS answer mariadb-service.default.svc.cluster.local = 10.10.1.101",
        "=> 10.10.0.103:3306 [default/mariadb-service:mysql",
        "query \"QUERY SELECT",
        "HTTP 200 served by wordpress-5d8f7c9b6-abcde",
    ] {
        let at = rest
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{first}"));
        rest = &rest[at + needle.len()..];
    }
    assert!(text.contains("sequence: wordpress-5d8f7c9b6-abcde -> wordpress-5d8f7c9b6-fghij"));
}

#[test]
fn same_seed_same_bytes_other_seed_other_ports() {
    let a = run(&Scenario::notes(4).with_seed(7));
    let b = run(&Scenario::notes(4).with_seed(7));
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.to_json(), b.to_json());

    let c = run(&Scenario::notes(4).with_seed(8));
    assert_eq!(c.summary.succeeded, 4);
    // Ephemeral and masquerade ports come from the seed.
    assert_ne!(a.to_json(), c.to_json());
    // Round robin does not: the same pods serve in the same order.
    assert_eq!(a.summary.sequence, c.summary.sequence);
}

#[test]
fn json_report_has_journeys_and_hops() {
    let report = run(&Scenario::notes(1));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let hops = json["journeys"][0]["hops"].as_array().unwrap();
    assert!(hops.iter().any(|h| h["kind"] == "ingress-rule"));
    let nat = hops
        .iter()
        .find(|h| h["kind"] == "node" && h["service"] == "default/nginx:http")
        .unwrap();
    assert_eq!(nat["after"]["destination"], "10.10.0.105:80");
    assert_eq!(json["summary"]["succeeded"], 1);
}

/// `db_host` with mariadb-service's cluster IP but the pod's port (3306): nftables-mode
/// kube-proxy rejects a cluster IP on a port the Service does not have, so the WordPress
/// pod's node answers with ICMP port unreachable and the page fails.
#[test]
fn wrong_service_port_is_rejected_by_the_node() {
    use kubenat_e2e::notes_with_database;
    use kubenat_sim::apps::wordpress::DbHost;
    let scenario = notes_with_database(1, DbHost::Address(sa("10.10.1.101:3306")));
    let report = run(&scenario);
    let j = &report.journeys[0];
    assert_eq!(j.outcome.status, Some(500), "{report}");
    let verdicts: Vec<&str> = j
        .hops
        .iter()
        .filter_map(|h| match &h.step {
            Step::NodeVerdict { verdict, flow, .. }
                if flow.destination == sa("10.10.1.101:3306") =>
            {
                Some(verdict.as_str())
            }
            _ => None,
        })
        .collect();
    // The SYN and its retransmission are rejected at the first node (nodoa: request 1 goes
    // to the first WordPress pod); the RST smoltcp sends when it gives up is not a new
    // connection, so it is not translated and has no route (the cluster IP is nobody's).
    let rejected: Vec<&str> = verdicts
        .iter()
        .copied()
        .filter(|v| v.starts_with("rejected"))
        .collect();
    assert!(rejected.len() >= 2, "{report}");
    assert!(
        rejected.iter().all(|v| *v == "rejected (port-not-served)"),
        "{rejected:?}\n{report}"
    );
    let nodoa = report
        .summary
        .nodes
        .iter()
        .find(|n| n.node == "nodoa")
        .unwrap();
    assert_eq!(nodoa.rejected as usize, rejected.len());
    // Each rejection's ICMP reply went back down the pod's veth, next to its SYN.
    let veth = report
        .summary
        .links
        .iter()
        .find(|l| l.name.ends_with("wordpress-5d8f7c9b6-abcde"))
        .unwrap();
    assert!(veth.packets as usize > 2 * rejected.len(), "{veth:?}");
}
