//! The ingress controller routes by Host and path from the Ingress objects, to the
//! backend Service's cluster IP (then DNATed by its node's engine).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use kubenat_core::TargetPort;
use kubenat_k8s::{Ingress, IngressBackend, IngressPath, IngressRule};
use kubenat_sim::apps::ingress::RoutingTable;
use kubenat_sim::apps::pc::Browse;
use kubenat_sim::apps::wordpress::DbHost;
use kubenat_sim::clock::Instant;
use kubenat_sim::scenario::{LanApp, Machine, Pod, PodApp};
use kubenat_sim::{Scenario, Step, run};

/// A second site: web2-service (named port `http`, 10.10.1.120:8080) with one pod on nodoc,
/// and an Ingress for web2.miempresa.com that names the port instead of numbering it.
const WEB2: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web2-service, namespace: default}
  spec:
    type: ClusterIP
    clusterIP: 10.10.1.120
    clusterIPs: [10.10.1.120]
    ports:
    - {name: http, port: 8080, protocol: TCP, targetPort: 80}
    selector: {app: web2}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: web2-service-abc12
    namespace: default
    labels: {kubernetes.io/service-name: web2-service}
  addressType: IPv4
  endpoints:
  - addresses: [10.10.0.120]
    conditions: {ready: true}
    nodeName: nodoc
  ports:
  - {name: http, port: 80, protocol: TCP}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: web2, namespace: default}
  spec:
    ingressClassName: nginx
    rules:
    - host: web2.miempresa.com
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: web2-service
              port: {name: http}
"#;

fn browser(name: &str, ip: &str, host: &str, requests: u32) -> Machine {
    Machine {
        name: name.into(),
        ip: ip.parse().unwrap(),
        app: LanApp::Browser {
            dns: Ipv4Addr::new(192, 168, 0, 53),
            browse: Browse {
                host: host.into(),
                path: "/".into(),
                port: 80,
                requests,
                start: Instant::from_millis(10),
                gap: Duration::from_millis(5),
                timeout: Duration::from_secs(10),
            },
        },
    }
}

fn two_sites() -> Scenario {
    let mut s = Scenario::notes(2);
    s.manifests
        .merge(kubenat_k8s::parse_str("web2.yaml", WEB2).unwrap());
    s.pods.push(Pod {
        name: "web2-6c9d8f7b5-xyz12".into(),
        namespace: "default".into(),
        ip: "10.10.0.120".parse().unwrap(),
        node: "nodoc".into(),
        app: PodApp::WordPress {
            db: DbHost::Name("mariadb-service".into(), 3307),
        },
    });
    for m in &mut s.machines {
        if let LanApp::Dns { records } = &mut m.app {
            let lb = Ipv4Addr::new(192, 168, 0, 10);
            records.push(("web2.miempresa.com".into(), lb));
            records.push(("web3.miempresa.com".into(), lb));
        }
    }
    s.machines.push(browser(
        "FelipePC",
        "192.168.0.201",
        "web2.miempresa.com",
        2,
    ));
    s.machines
        .push(browser("OtroPC", "192.168.0.202", "web3.miempresa.com", 1));
    s
}

#[test]
fn two_hosts_reach_their_own_backends_and_an_unknown_host_gets_404() {
    let report = run(&two_sites());
    assert_eq!(report.journeys.len(), 5, "{report}");
    for j in &report.journeys {
        let rule = j.hops.iter().find_map(|h| match &h.step {
            Step::IngressRule {
                host,
                ingress,
                address,
                ..
            } => Some((host.as_str(), ingress.as_str(), *address)),
            _ => None,
        });
        let browser = j.hops[0].at.as_str();
        match browser {
            "MenchuPC" => {
                assert_eq!(
                    rule,
                    Some((
                        "web1.miempresa.com",
                        "default/web1",
                        "10.10.1.102:8080".parse::<SocketAddr>().unwrap()
                    ))
                );
                assert_eq!(j.outcome.status, Some(200), "{report}");
                assert!(
                    j.outcome
                        .served_by
                        .as_deref()
                        .is_some_and(|p| p.starts_with("wordpress-")),
                    "{report}"
                );
            }
            "FelipePC" => {
                assert_eq!(
                    rule,
                    Some((
                        "web2.miempresa.com",
                        "default/web2",
                        "10.10.1.120:8080".parse().unwrap()
                    ))
                );
                assert_eq!(j.outcome.status, Some(200), "{report}");
                assert_eq!(j.outcome.served_by.as_deref(), Some("web2-6c9d8f7b5-xyz12"));
                // nodob's engine DNATs web2-service to the pod on nodoc.
                assert!(j.hops.iter().any(|h| matches!(
                    &h.step,
                    Step::Node { node, service: Some(s), after, .. }
                        if node == "nodob" && s == "default/web2-service:http"
                            && after.destination == "10.10.0.120:80".parse().unwrap()
                )));
            }
            "OtroPC" => {
                assert_eq!(rule, None);
                assert_eq!(j.outcome.status, Some(404), "{report}");
                assert!(j.hops.iter().any(|h| matches!(
                    &h.step,
                    Step::IngressNoRule { host, .. } if host == "web3.miempresa.com"
                )));
            }
            other => panic!("journey started at {other}"),
        }
    }
}

fn backend(service: &str, port: TargetPort) -> IngressBackend {
    IngressBackend {
        service: service.into(),
        port,
    }
}

fn rule(host: Option<&str>, paths: &[(&str, &str, IngressBackend)]) -> IngressRule {
    IngressRule {
        host: host.map(str::to_string),
        paths: paths
            .iter()
            .map(|(path, path_type, b)| IngressPath {
                path: path.to_string(),
                path_type: path_type.to_string(),
                backend: b.clone(),
            })
            .collect(),
    }
}

#[test]
fn routing_follows_the_ingress_rules_of_its_class() {
    let scenario = two_sites();
    let services = &scenario.manifests.services;
    let n = TargetPort::Number;
    let ingresses = vec![
        Ingress {
            namespace: "default".into(),
            name: "main".into(),
            class: Some("nginx".into()),
            rules: vec![
                rule(
                    Some("web1.miempresa.com"),
                    &[
                        ("/", "Prefix", backend("wp-service", n(8080))),
                        (
                            "/blog",
                            "Prefix",
                            backend("web2-service", TargetPort::Name("http".into())),
                        ),
                        ("/blog/admin", "Exact", backend("mariadb-service", n(3307))),
                    ],
                ),
                rule(
                    Some("*.miempresa.com"),
                    &[("/", "Prefix", backend("nginx", n(8081)))],
                ),
                rule(
                    None,
                    &[(
                        "/static",
                        "ImplementationSpecific",
                        backend("wp-service", n(8080)),
                    )],
                ),
                // A backend that does not exist is left out.
                rule(
                    Some("ghost.example"),
                    &[("/", "Prefix", backend("ghost", n(80)))],
                ),
            ],
            default_backend: None,
        },
        // Another controller's Ingress: not ours.
        Ingress {
            namespace: "default".into(),
            name: "other-class".into(),
            class: Some("traefik".into()),
            rules: vec![rule(
                Some("web1.miempresa.com"),
                &[("/", "Exact", backend("nginx", n(8081)))],
            )],
            default_backend: None,
        },
    ];
    let table = RoutingTable::new(&ingresses, services, Some("nginx"));
    // (host, path, expected backend address)
    let rows: &[(&str, &str, Option<&str>)] = &[
        ("web1.miempresa.com", "/", Some("10.10.1.102:8080")),
        ("web1.miempresa.com", "/index.php", Some("10.10.1.102:8080")),
        ("web1.miempresa.com", "/blog", Some("10.10.1.120:8080")),
        ("web1.miempresa.com", "/blog/", Some("10.10.1.120:8080")),
        (
            "web1.miempresa.com",
            "/blog/2024/hola",
            Some("10.10.1.120:8080"),
        ),
        // Prefix matching is per path element: /blogger is not under /blog.
        ("web1.miempresa.com", "/blogger", Some("10.10.1.102:8080")),
        // Exact beats a matching Prefix.
        (
            "web1.miempresa.com",
            "/blog/admin",
            Some("10.10.1.101:3307"),
        ),
        (
            "web1.miempresa.com",
            "/blog/admin/x",
            Some("10.10.1.120:8080"),
        ),
        // Host match is case-insensitive.
        ("WEB1.miempresa.com", "/", Some("10.10.1.102:8080")),
        // A wildcard covers exactly one label.
        ("intranet.miempresa.com", "/", Some("10.10.1.105:8081")),
        ("a.b.miempresa.com", "/", None),
        ("miempresa.com", "/", None),
        // Rules without a host match every host.
        (
            "a.b.miempresa.com",
            "/static/logo.png",
            Some("10.10.1.102:8080"),
        ),
        ("ghost.example", "/", None),
    ];
    for (host, path, want) in rows {
        let got = table.route(host, path).map(|r| r.address.to_string());
        assert_eq!(got.as_deref(), *want, "{host} {path}");
    }
}
