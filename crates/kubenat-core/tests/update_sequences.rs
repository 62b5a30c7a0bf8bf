//! Any sequence of one-object updates leaves a `ServiceMap` compiled exactly as a fresh
//! compile of the state those updates describe: the same ports under every Service name,
//! each with the same endpoints, frontends and policies. Covers what the incremental path
//! keeps per name: Services added, replaced and removed, slices added, replaced and
//! removed, slices of Services that do not exist (yet or any more), names coming back
//! after everything under them was removed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use kubenat_core::tables::CompiledServicePort;
use kubenat_core::{
    ClusterState, ControlPlane, Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
    Protocol, ProxyConfig, Service, ServiceName, ServicePort, TargetPort, Update,
};
use proptest::prelude::*;

const NAMES: u8 = 12;

fn name(n: u8) -> ServiceName {
    ServiceName::new(
        if n % 3 == 0 { "kube-system" } else { "default" },
        format!("svc-{n}"),
    )
}

/// Service `n`, version `v`: its own cluster IP (no clashes, so the compile order cannot
/// matter), one or two ports.
fn service(n: u8, v: u8) -> Service {
    let port = |name: &str, port: u16| ServicePort {
        name: name.to_string(),
        protocol: Protocol::Tcp,
        port,
        target_port: TargetPort::Number(8080),
        node_port: None,
    };
    let mut ports = vec![port("http", 80 + u16::from(v))];
    if v % 2 == 1 {
        ports.push(port("admin", 9000));
    }
    Service {
        name: name(n),
        cluster_ips: vec![IpAddr::V4(Ipv4Addr::new(10, 96, 0, n))],
        ports,
        ..Service::default()
    }
}

/// Slice `s` of Service `n` with `endpoints` endpoints, some of them on this node.
fn slice(n: u8, s: u8, endpoints: u8) -> EndpointSlice {
    let port = |name: &str| EndpointPort {
        name: name.to_string(),
        protocol: Protocol::Tcp,
        port: 8080,
    };
    EndpointSlice {
        name: format!("svc-{n}-{s}"),
        service: name(n),
        ports: vec![port("http"), port("admin")],
        endpoints: (0..endpoints)
            .map(|k| Endpoint {
                addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 1 + s, n, k))],
                conditions: EndpointConditions {
                    ready: k != 2,
                    serving: true,
                    terminating: k == 2,
                },
                node_name: Some(if k % 2 == 0 { "here" } else { "there" }.to_string()),
            })
            .collect(),
    }
}

/// What a control plane compiled for each Service name, in a form two can be compared by.
fn compiled(map: &ControlPlane) -> BTreeMap<ServiceName, Vec<CompiledServicePort>> {
    (0..NAMES)
        .map(name)
        .map(|name| {
            let ports = map
                .ports_of(&name)
                .iter()
                .map(|&id| map.snapshot().port(id).clone())
                .collect();
            (name, ports)
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    UpsertService { n: u8, version: u8 },
    RemoveService { n: u8 },
    UpsertSlice { n: u8, slice: u8, endpoints: u8 },
    RemoveSlice { n: u8, slice: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NAMES, 0u8..3).prop_map(|(n, version)| Op::UpsertService { n, version }),
        (0..NAMES).prop_map(|n| Op::RemoveService { n }),
        (0..NAMES, 0u8..2, 0u8..5).prop_map(|(n, slice, endpoints)| Op::UpsertSlice {
            n,
            slice,
            endpoints
        }),
        (0..NAMES, 0u8..2).prop_map(|(n, slice)| Op::RemoveSlice { n, slice }),
    ]
}

/// The state a sequence of updates describes: the last definition of each object.
#[derive(Default)]
struct Described {
    services: BTreeMap<u8, Service>,
    slices: BTreeMap<(u8, u8), EndpointSlice>,
}

impl Described {
    /// Records `op`; returns the update that tells a `ServiceMap` about it.
    fn record(&mut self, op: &Op) -> Update {
        match *op {
            Op::UpsertService { n, version } => {
                self.services.insert(n, service(n, version));
                Update::UpsertService(Box::new(service(n, version)))
            }
            Op::RemoveService { n } => {
                self.services.remove(&n);
                Update::RemoveService(name(n))
            }
            Op::UpsertSlice {
                n,
                slice: s,
                endpoints,
            } => {
                self.slices.insert((n, s), slice(n, s, endpoints));
                Update::UpsertEndpointSlice(Box::new(slice(n, s, endpoints)))
            }
            Op::RemoveSlice { n, slice: s } => {
                self.slices.remove(&(n, s));
                Update::RemoveEndpointSlice {
                    service: name(n),
                    name: format!("svc-{n}-{s}"),
                }
            }
        }
    }

    fn state(&self) -> ClusterState {
        ClusterState {
            services: self.services.values().cloned().collect(),
            endpoint_slices: self.slices.values().cloned().collect(),
            proxy: proxy(),
            ..ClusterState::default()
        }
    }
}

fn proxy() -> ProxyConfig {
    ProxyConfig {
        node_name: "here".to_string(),
        ..ProxyConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Both from an empty control plane and from one compiled whole (whose snapshots an
    /// engine keeps reading, so each change copies rather than edits), the updates end
    /// where a fresh compile does, and the snapshots they replaced are left as they were.
    #[test]
    fn updates_compile_what_a_fresh_compile_of_their_result_does(
        initial in proptest::collection::vec(op(), 0..30),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut described = Described::default();
        let mut from_empty = ControlPlane::from_state(described.state());
        for op in &initial {
            from_empty.apply(described.record(op));
        }
        let mut from_whole = ControlPlane::from_state(described.state());
        let publication = from_whole.publication();
        let first = publication.load();
        let first_ports: Vec<_> = first
            .ports().map(|(id, p)| (id, p.clone())).collect();
        prop_assert_eq!(compiled(&from_empty), compiled(&from_whole));
        for op in &ops {
            let update = described.record(op);
            from_empty.apply(update.clone());
            from_whole.apply(update);
            prop_assert_eq!(publication.generation(), from_whole.snapshot().generation());
        }
        let fresh = compiled(&ControlPlane::from_state(described.state()));
        prop_assert_eq!(&compiled(&from_empty), &fresh);
        prop_assert_eq!(&compiled(&from_whole), &fresh);
        // A change that changes nothing (removing what is not there) publishes nothing.
        prop_assert!(publication.generation() <= ops.len() as u64);
        let kept: Vec<_> = first.ports().map(|(id, p)| (id, p.clone())).collect();
        prop_assert_eq!(kept, first_ports);
    }
}

#[test]
fn of_objects_listed_twice_the_last_one_listed_wins() {
    let listed = |order: &[(u8, u8)]| ClusterState {
        services: order.iter().map(|&(n, v)| service(n, v)).collect(),
        endpoint_slices: vec![slice(1, 0, 4), slice(2, 0, 1), slice(1, 0, 2)],
        proxy: proxy(),
        ..ClusterState::default()
    };
    let map = ControlPlane::from_state(listed(&[(1, 0), (2, 2), (1, 2), (2, 0), (1, 1)]));
    let ports = compiled(&map);
    let port_numbers = |n: u8| -> Vec<u16> { ports[&name(n)].iter().map(|p| p.port).collect() };
    assert_eq!(port_numbers(1), [81, 9000]);
    assert_eq!(port_numbers(2), [80]);
    // Service 1's slice "svc-1-0" listed with 4 then 2 endpoints: 2 (one of them
    // terminating, so one usable).
    assert_eq!(ports[&name(1)][0].endpoints.serving().len(), 2);
}
