//! A block's bytes, written by hand in postcard's wire format, which the block is decoded
//! with (`postcard::take_from_bytes`, see `decode`): integers and lengths as varints, fields in order, enum
//! variants as their index, `Option` as 0 or 1 before the value, addresses and networks as
//! their raw octets after the variant. Through serde, encoding a Service of one port with
//! a slice of four endpoints took about 2,500 instructions; by hand, about 1,150 (the
//! block's allocation included).
//!
//! Structs are destructured whole and enums matched without a wildcard, so a new field or
//! variant in the model does not compile until it is written here; a test checks the bytes
//! against postcard's own for objects that use every field and variant.

use std::net::IpAddr;

use super::Objects;
use crate::model::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpNet, Protocol, Service,
    ServiceName, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

/// Appends the block of `objects`, known under `name`: the name, then the objects, each of
/// which leaves its copy of the name out (two empty strings in its place).
pub(super) fn block(out: &mut Vec<u8>, name: &ServiceName, objects: &Objects) {
    service_name(out, name);
    let Objects { service, slices } = objects;
    option(out, service.as_ref(), self::service);
    seq(out, slices, slice);
}

/// A `ServiceName` left out: its two strings, empty.
const NO_NAME: [u8; 2] = [0, 0];

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A unit variant, or the index before a variant's value (all indices here are below 128,
/// one varint byte).
fn variant(out: &mut Vec<u8>, index: u8) {
    out.push(index);
}

fn string(out: &mut Vec<u8>, value: &str) {
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn option<T>(out: &mut Vec<u8>, value: Option<&T>, some: fn(&mut Vec<u8>, &T)) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            some(out, value);
        }
    }
}

fn seq<T>(out: &mut Vec<u8>, items: &[T], each: fn(&mut Vec<u8>, &T)) {
    varint(out, items.len() as u64);
    for item in items {
        each(out, item);
    }
}

fn service_name(out: &mut Vec<u8>, name: &ServiceName) {
    let ServiceName { namespace, name } = name;
    string(out, namespace);
    string(out, name);
}

fn ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        // The variant and the octets in one write (one check of the room left).
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            out.extend_from_slice(&[0, a, b, c, d]);
        }
        IpAddr::V6(ip) => {
            variant(out, 1);
            out.extend_from_slice(&ip.octets());
        }
    }
}

/// A network: its address as an address is written, then its prefix length.
fn net(out: &mut Vec<u8>, net: &IpNet) {
    ip(out, &net.addr());
    out.push(net.prefix_len());
}

fn protocol(out: &mut Vec<u8>, protocol: Protocol) {
    variant(
        out,
        match protocol {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
            Protocol::Sctp => 2,
        },
    );
}

/// A policy's variant index.
fn policy(policy: TrafficPolicy) -> u8 {
    match policy {
        TrafficPolicy::Cluster => 0,
        TrafficPolicy::Local => 1,
    }
}

fn service(out: &mut Vec<u8>, service: &Service) {
    let Service {
        name: _,
        service_type,
        cluster_ips,
        ports,
        external_ips,
        load_balancer_ips,
        load_balancer_source_ranges,
        external_traffic_policy,
        internal_traffic_policy,
        session_affinity,
    } = service;
    let service_type = match service_type {
        ServiceType::ClusterIp => 0,
        ServiceType::NodePort => 1,
        ServiceType::LoadBalancer => 2,
    };
    // The name left out (`NO_NAME`) and the type in one write.
    out.extend_from_slice(&[0, 0, service_type]);
    seq(out, cluster_ips, ip);
    seq(out, ports, service_port);
    let [external, internal] = [*external_traffic_policy, *internal_traffic_policy].map(policy);
    // Usually no external or load-balancer IP, no source range and no affinity: the three
    // empty lists, the policies and the affinity in one write.
    if external_ips.is_empty()
        && load_balancer_ips.is_empty()
        && load_balancer_source_ranges.is_empty()
        && *session_affinity == SessionAffinity::None
    {
        out.extend_from_slice(&[0, 0, 0, external, internal, 0]);
        return;
    }
    seq(out, external_ips, ip);
    seq(out, load_balancer_ips, ip);
    seq(out, load_balancer_source_ranges, net);
    out.extend_from_slice(&[external, internal]);
    match session_affinity {
        SessionAffinity::None => variant(out, 0),
        SessionAffinity::ClientIp { timeout } => {
            variant(out, 1);
            // A `Duration` is the struct { secs: u64, nanos: u32 }.
            varint(out, timeout.as_secs());
            varint(out, u64::from(timeout.subsec_nanos()));
        }
    }
}

fn service_port(out: &mut Vec<u8>, port: &ServicePort) {
    let ServicePort {
        name,
        protocol,
        port,
        target_port,
        node_port,
    } = port;
    named_port(out, name, *protocol, *port);
    match target_port {
        TargetPort::Number(number) => {
            variant(out, 0);
            varint(out, u64::from(*number));
        }
        TargetPort::Name(name) => {
            variant(out, 1);
            string(out, name);
        }
    }
    option(out, node_port.as_ref(), |out, &port| {
        varint(out, u64::from(port))
    });
}

/// A slice, as a block holds it (also what `decode` steps over).
pub(super) fn slice(out: &mut Vec<u8>, slice: &EndpointSlice) {
    let EndpointSlice {
        name,
        service: _,
        ports,
        endpoints,
    } = slice;
    string(out, name);
    out.extend_from_slice(&NO_NAME);
    seq(out, ports, endpoint_port);
    seq(out, endpoints, endpoint);
}

fn endpoint_port(out: &mut Vec<u8>, port: &EndpointPort) {
    let EndpointPort {
        name,
        protocol,
        port,
    } = port;
    named_port(out, name, *protocol, *port);
}

/// The fields a Service's port and an EndpointSlice's port begin with, in that order.
fn named_port(out: &mut Vec<u8>, name: &str, protocol: Protocol, port: u16) {
    string(out, name);
    self::protocol(out, protocol);
    varint(out, u64::from(port));
}

fn endpoint(out: &mut Vec<u8>, endpoint: &Endpoint) {
    let Endpoint {
        addresses,
        conditions,
        node_name,
    } = endpoint;
    let EndpointConditions {
        ready,
        serving,
        terminating,
    } = *conditions;
    let [r, s, t] = [u8::from(ready), u8::from(serving), u8::from(terminating)];
    // The usual endpoint, one IPv4 address on a named node, in one write before the node's
    // name (a write per field cost about 25 instructions more per endpoint).
    if let ([IpAddr::V4(address)], Some(node)) = (&addresses[..], node_name)
        && node.len() < 0x80
    {
        let [a, b, c, d] = address.octets();
        out.extend_from_slice(&[1, 0, a, b, c, d, r, s, t, 1, node.len() as u8]);
        out.extend_from_slice(node.as_bytes());
        return;
    }
    seq(out, addresses, ip);
    out.extend_from_slice(&[r, s, t]);
    option(out, node_name.as_ref(), |out, name| string(out, name));
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{EndpointConditions, Service};

    fn no_name() -> ServiceName {
        ServiceName::new("", "")
    }

    /// Objects that together use every field, variant and varint length written here, and
    /// endpoints on either side of the usual endpoint's shortcut.
    pub(in crate::known) fn samples() -> Vec<Objects> {
        let name = ServiceName::new("a-namespace", "web");
        let ip = |s: &str| s.parse::<IpAddr>().expect("literal");
        let net = |s: &str| s.parse::<IpNet>().expect("literal");
        let port = |name: &str, protocol, target_port, node_port| ServicePort {
            name: name.into(),
            protocol,
            port: 8443,
            target_port,
            node_port,
        };
        let endpoint = |addresses: Vec<IpAddr>, ready, node_name: Option<&str>| Endpoint {
            addresses,
            conditions: EndpointConditions {
                ready,
                serving: !ready,
                terminating: true,
            },
            node_name: node_name.map(String::from),
        };
        let slice = EndpointSlice {
            name: "x".repeat(200),
            service: name.clone(),
            ports: vec![
                EndpointPort {
                    name: "http".into(),
                    protocol: Protocol::Udp,
                    port: 80,
                },
                EndpointPort {
                    name: String::new(),
                    protocol: Protocol::Sctp,
                    port: 65535,
                },
            ],
            endpoints: vec![
                endpoint(vec![ip("10.0.0.1"), ip("fd00::1")], true, Some("nodo1")),
                endpoint(vec![], false, None),
                endpoint(vec![ip("10.0.0.2")], false, Some("nodo2")),
                endpoint(vec![ip("10.0.0.3")], true, Some(&"n".repeat(200))),
                endpoint(vec![ip("10.0.0.4")], true, None),
                endpoint(vec![ip("fd00::4")], true, Some("nodo3")),
            ],
        };
        let full = Service {
            name: name.clone(),
            service_type: ServiceType::LoadBalancer,
            cluster_ips: vec![ip("10.96.0.1"), ip("fd00::10")],
            ports: vec![
                port(
                    "https",
                    Protocol::Tcp,
                    TargetPort::Name("web".into()),
                    Some(30443),
                ),
                port("dns", Protocol::Udp, TargetPort::Number(5353), None),
            ],
            external_ips: vec![ip("192.0.2.1")],
            load_balancer_ips: vec![ip("203.0.113.7"), ip("2001:db8::7")],
            load_balancer_source_ranges: vec![net("10.0.0.0/8"), net("fd00::/64")],
            external_traffic_policy: TrafficPolicy::Local,
            internal_traffic_policy: TrafficPolicy::Local,
            session_affinity: SessionAffinity::ClientIp {
                timeout: Duration::new(10_800, 999_999_999),
            },
        };
        let mut samples = vec![Objects {
            service: Some(full.clone()),
            slices: vec![slice.clone(), slice.clone()],
        }];
        for service_type in [ServiceType::ClusterIp, ServiceType::NodePort] {
            samples.push(Objects {
                service: Some(Service {
                    service_type,
                    session_affinity: SessionAffinity::None,
                    ..full.clone()
                }),
                slices: Vec::new(),
            });
        }
        // Nothing but an affinity beside the lists' shortcut, and nothing at all.
        for session_affinity in [full.session_affinity, SessionAffinity::None] {
            samples.push(Objects {
                service: Some(Service {
                    name: name.clone(),
                    session_affinity,
                    ..Service::default()
                }),
                slices: vec![slice.clone()],
            });
        }
        samples.push(Objects {
            service: None,
            slices: vec![slice],
        });
        samples
    }

    #[test]
    fn blocks_are_what_postcard_writes() {
        for objects in samples() {
            let name = objects.name().expect("samples hold something").clone();
            let mut written = Vec::new();
            block(&mut written, &name, &objects);
            let mut without_names = objects.clone();
            if let Some(service) = &mut without_names.service {
                service.name = no_name();
            }
            for slice in &mut without_names.slices {
                slice.service = no_name();
            }
            let expected = postcard::to_allocvec(&(&name, &without_names)).expect("encodes");
            assert_eq!(written, expected, "{objects:?}");
        }
    }
}
