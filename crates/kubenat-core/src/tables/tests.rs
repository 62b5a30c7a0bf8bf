use super::*;
use std::net::Ipv4Addr;

use crate::control_plane::{ControlPlane, Update};
use crate::model::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Service, ServiceName,
    ServicePort, ServiceType, TargetPort, TrafficPolicy,
};
use proptest::prelude::*;

/// Service `n` of a small address space, so cluster IPs and external IPs collide.
fn service(n: u8, external: bool, v6: bool, local: bool) -> Service {
    let ip = |k: u8| -> IpAddr {
        if v6 {
            format!("fd00::{}", k % 6).parse().unwrap()
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 96, 0, k % 6))
        }
    };
    Service {
        name: ServiceName::new("ns", format!("svc-{n}")),
        service_type: ServiceType::ClusterIp,
        cluster_ips: vec![ip(n)],
        ports: vec![ServicePort {
            name: String::new(),
            protocol: Protocol::Tcp,
            port: 80 + u16::from(n % 2),
            target_port: TargetPort::Number(8080),
            node_port: None,
        }],
        external_ips: if external { vec![ip(n + 1)] } else { vec![] },
        internal_traffic_policy: if local {
            TrafficPolicy::Local
        } else {
            TrafficPolicy::Cluster
        },
        ..Service::default()
    }
}

fn slice(n: u8, endpoints: u8) -> EndpointSlice {
    EndpointSlice {
        name: format!("svc-{n}-a"),
        service: ServiceName::new("ns", format!("svc-{n}")),
        ports: vec![EndpointPort {
            name: String::new(),
            protocol: Protocol::Tcp,
            port: 8080,
        }],
        endpoints: (0..endpoints)
            .map(|k| Endpoint {
                addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 1, n, k))],
                conditions: EndpointConditions::default(),
                node_name: Some(if k % 2 == 0 { "here" } else { "there" }.to_string()),
            })
            .collect(),
    }
}

/// Everything the packet path reads from the lines agrees with the full tables.
fn mirrors(tables: &Tables) -> Result<(), TestCaseError> {
    for (key, id, frontend) in tables.sorted_frontends() {
        let fast = tables.lines().lookup(key.address, key.protocol, key.port);
        if frontend == Frontend::ClusterIp {
            prop_assert_eq!(fast.map(|(found, _)| found), Some(id));
        } else {
            prop_assert!(fast.is_none());
        }
    }
    for (id, port) in tables.ports() {
        let line = tables.lines().line(id);
        prop_assert_eq!(line.has_endpoints(), port.has_endpoints());
        prop_assert_eq!(line.internal_policy_local(), port.internal_policy_local);
        prop_assert_eq!(line.external_policy_local(), port.external_policy_local);
        prop_assert_eq!(line.affinity(), port.affinity_timeout.is_some());
        prop_assert_eq!(line.maglev(), port.maglev.is_some());
        let endpoints = tables.endpoints_of(id, EndpointClass::Cluster);
        prop_assert_eq!(line.cluster_endpoints(), endpoints.len());
        for (index, endpoint) in endpoints.iter().enumerate() {
            let inline = line.cluster_endpoint(index);
            prop_assert!(inline.is_none_or(|e| e == endpoint));
        }
    }
    Ok(())
}

proptest! {
    /// Under any sequence of Service and slice changes (colliding cluster and external
    /// IPs, both families, more Services than the index was first sized for), the
    /// lines index exactly the cluster IPs the full tables give their port, and
    /// describe every port as the full tables do.
    #[test]
    fn lines_mirror_the_full_tables(
        ops in proptest::collection::vec(
            (0u8..40, 0u8..4, any::<bool>(), any::<bool>(), any::<bool>(), 0u8..7),
            1..80,
        ),
    ) {
        let state = ClusterState {
            proxy: crate::model::ProxyConfig {
                node_name: "here".to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut plane = ControlPlane::new(&state);
        for (n, action, external, v6, local, endpoints) in ops {
            let update = match action {
                0 | 1 => Update::UpsertService(Box::new(service(n, external, v6, local))),
                2 => Update::UpsertEndpointSlice(Box::new(slice(n, endpoints))),
                _ => Update::RemoveService(ServiceName::new("ns", format!("svc-{n}"))),
            };
            plane.apply(update);
            mirrors(&plane.tables())?;
        }
    }
}
