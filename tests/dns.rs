//! The cluster DNS: answers from the Services, as CoreDNS's kubernetes plugin does, and the
//! pods' search list (`<svc>`, `<svc>.<ns>`) walked by their resolver.

use std::net::Ipv4Addr;

use kubenat_e2e::notes_with_database;
use kubenat_sim::apps::dns::{ResolverConfig, Zone, answer};
use kubenat_sim::apps::wordpress::DbHost;
use kubenat_sim::{Scenario, Step, run};
use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, TYPE};

fn query(name: &str, qtype: TYPE) -> Vec<u8> {
    let mut p = Packet::new_query(0x1234);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(qtype),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

fn cluster_zone() -> Zone {
    Zone::cluster(&Scenario::notes(1).manifests.services, "cluster.local")
}

#[test]
fn cluster_zone_answers_like_coredns() {
    let zone = cluster_zone();
    // (name, type, rcode, A/AAAA answers, SRV port)
    #[allow(clippy::type_complexity)]
    let rows: &[(&str, TYPE, RCODE, &[&str], Option<u16>)] = &[
        (
            "mariadb-service.default.svc.cluster.local",
            TYPE::A,
            RCODE::NoError,
            &["10.10.1.101"],
            None,
        ),
        (
            "wp-service.default.svc.cluster.local",
            TYPE::A,
            RCODE::NoError,
            &["10.10.1.102"],
            None,
        ),
        (
            "nginx.default.svc.cluster.local",
            TYPE::A,
            RCODE::NoError,
            &["10.10.1.105"],
            None,
        ),
        (
            "kube-dns.kube-system.svc.cluster.local",
            TYPE::A,
            RCODE::NoError,
            &["10.10.1.10"],
            None,
        ),
        // Names are case-insensitive; a trailing dot is the same name.
        (
            "MariaDB-Service.Default.svc.cluster.local.",
            TYPE::A,
            RCODE::NoError,
            &["10.10.1.101"],
            None,
        ),
        // Wrong namespace, unknown Service: NXDOMAIN.
        (
            "mariadb-service.kube-system.svc.cluster.local",
            TYPE::A,
            RCODE::NameError,
            &[],
            None,
        ),
        (
            "nope.default.svc.cluster.local",
            TYPE::A,
            RCODE::NameError,
            &[],
            None,
        ),
        // A bare Service name reaching the server is not in the zone: the search list
        // is the client's job.
        (
            "mariadb-service.default",
            TYPE::A,
            RCODE::Refused,
            &[],
            None,
        ),
        // IPv4-only Service: the name exists, no AAAA record.
        (
            "mariadb-service.default.svc.cluster.local",
            TYPE::AAAA,
            RCODE::NoError,
            &[],
            None,
        ),
        // Named ports have SRV records.
        (
            "_mysql._tcp.mariadb-service.default.svc.cluster.local",
            TYPE::SRV,
            RCODE::NoError,
            &[],
            Some(3307),
        ),
        (
            "_dns._udp.kube-dns.kube-system.svc.cluster.local",
            TYPE::SRV,
            RCODE::NoError,
            &[],
            Some(53),
        ),
        (
            "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local",
            TYPE::SRV,
            RCODE::NoError,
            &[],
            Some(53),
        ),
        (
            "_http._udp.wp-service.default.svc.cluster.local",
            TYPE::SRV,
            RCODE::NameError,
            &[],
            None,
        ),
        // Outside the cluster domain: not ours (no upstream in this simulator).
        ("web1.miempresa.com", TYPE::A, RCODE::Refused, &[], None),
    ];
    for (name, qtype, rcode, addresses, srv_port) in rows {
        let (bytes, _) = answer(&zone, &query(name, *qtype)).unwrap();
        // Read the reply with the DNS library, not with our own code.
        let reply = Packet::parse(&bytes).unwrap();
        assert_eq!(reply.id(), 0x1234, "{name}");
        assert!(reply.has_flags(PacketFlag::RESPONSE), "{name}");
        assert_eq!(reply.rcode(), *rcode, "{name}");
        assert_eq!(reply.questions.len(), 1, "{name}: question echoed");
        let got: Vec<String> = reply
            .answers
            .iter()
            .filter_map(|rr| match &rr.rdata {
                RData::A(a) => Some(Ipv4Addr::from(a.address).to_string()),
                RData::AAAA(a) => Some(std::net::Ipv6Addr::from(a.address).to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(got, *addresses, "{name} {qtype:?}");
        let port = reply.answers.iter().find_map(|rr| match &rr.rdata {
            RData::SRV(s) => Some(s.port),
            _ => None,
        });
        assert_eq!(port, *srv_port, "{name} SRV");
    }
}

#[test]
fn garbage_and_responses_get_no_answer() {
    let zone = cluster_zone();
    assert!(answer(&zone, b"not dns").is_none());
    let (reply, _) = answer(
        &zone,
        &query("wp-service.default.svc.cluster.local", TYPE::A),
    )
    .unwrap();
    assert!(
        answer(&zone, &reply).is_none(),
        "a response is never answered"
    );
}

#[test]
fn pod_search_list_follows_resolv_conf() {
    let conf = ResolverConfig::pod("default", Ipv4Addr::new(10, 10, 1, 10), "cluster.local");
    // ndots:5 -> names with fewer dots try the search domains first.
    assert_eq!(
        conf.candidates("mariadb-service"),
        [
            "mariadb-service.default.svc.cluster.local",
            "mariadb-service.svc.cluster.local",
            "mariadb-service.cluster.local",
            "mariadb-service",
        ]
    );
    assert_eq!(
        conf.candidates("mariadb-service.default")[..2],
        [
            "mariadb-service.default.default.svc.cluster.local",
            "mariadb-service.default.svc.cluster.local",
        ]
    );
    assert_eq!(conf.candidates("a.b.c.d.e.f")[0], "a.b.c.d.e.f");
    assert_eq!(
        conf.candidates("web1.miempresa.com."),
        ["web1.miempresa.com"]
    );
}

/// WordPress configured with `<svc>.<ns>`: the first search domain gives NXDOMAIN, the
/// second answers, through the real network and kube-dns's DNAT.
#[test]
fn service_dot_namespace_resolves_through_the_search_list() {
    let scenario = notes_with_database(2, DbHost::Name("mariadb-service.default".into(), 3307));
    let report = run(&scenario);
    assert_eq!(report.summary.succeeded, 2, "{report}");
    for j in &report.journeys {
        let answers: Vec<(&str, &str)> = j
            .hops
            .iter()
            .filter_map(|h| match &h.step {
                Step::DnsAnswer { name, rcode, .. } if h.at.starts_with("coredns") => {
                    Some((name.as_str(), rcode.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            answers,
            [
                (
                    "mariadb-service.default.default.svc.cluster.local",
                    "NXDOMAIN"
                ),
                ("mariadb-service.default.svc.cluster.local", "NOERROR"),
            ]
        );
        assert!(j.hops.iter().any(|h| matches!(
            &h.step,
            Step::Resolved { name, queries: 2, address: Some(a), .. }
                if name == "mariadb-service.default" && a.to_string() == "10.10.1.101"
        )));
    }
}

/// A name no search domain knows: WordPress answers 500, and the PC sees it.
#[test]
fn unknown_database_name_fails_the_page() {
    let scenario = notes_with_database(1, DbHost::Name("mysql-service".into(), 3306));
    let report = run(&scenario);
    let j = &report.journeys[0];
    assert_eq!(j.outcome.status, Some(500), "{report}");
    let nx = j
        .hops
        .iter()
        .filter(|h| matches!(&h.step, Step::DnsAnswer { rcode, .. } if rcode == "NXDOMAIN"))
        .count();
    // Three search domains: NXDOMAIN; the bare name leaves the cluster domain: REFUSED.
    assert_eq!(nx, 3, "{report}");
}
