//! SCTP through a Service: ports rewritten like TCP and UDP, the CRC32c recomputed over
//! the whole packet (verified here with the crc32c crate on the bytes as they leave), and
//! the association's states timed like netfilter's.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::sa;
use etherparse::{IpNumber, IpSlice, PacketBuilder};
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Engine, Instant, Path,
    Protocol, Service, ServiceName, ServicePort, TargetPort, Verdict, reference,
};

const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const COOKIE_ACK: u8 = 11;

/// The notes' cluster on nodoa plus a Diameter Service over SCTP, dual-stack.
fn cluster() -> ClusterState {
    let mut state = reference::cluster("nodoa");
    let name = ServiceName::new("default", "diameter");
    state.services.push(Service {
        name: name.clone(),
        cluster_ips: vec![
            "10.10.1.120".parse().unwrap(),
            "fd00:10::120".parse().unwrap(),
        ],
        ports: vec![ServicePort {
            name: "diameter".into(),
            protocol: Protocol::Sctp,
            port: 3868,
            target_port: TargetPort::Number(3869),
            node_port: None,
        }],
        ..Service::default()
    });
    for (slice, pods) in [
        ("v4", ["10.10.0.30", "10.10.0.31"]),
        ("v6", ["fd00:10:0::30", "fd00:10:0::31"]),
    ] {
        state.endpoint_slices.push(EndpointSlice {
            name: format!("diameter-{slice}"),
            service: name.clone(),
            ports: vec![EndpointPort {
                name: "diameter".into(),
                protocol: Protocol::Sctp,
                port: 3869,
            }],
            endpoints: pods
                .iter()
                .map(|ip| Endpoint {
                    addresses: vec![ip.parse().unwrap()],
                    conditions: EndpointConditions::default(),
                    node_name: Some("nodob".into()),
                })
                .collect(),
        });
    }
    state
        .proxy
        .cluster_cidrs
        .push("fd00:10::/64".parse().unwrap());
    state.proxy.node_ips.push("fd00:192::101".parse().unwrap());
    state
}

/// An SCTP packet with one chunk of `chunk_type`, correctly checksummed.
fn sctp(src: SocketAddr, dst: SocketAddr, chunk_type: u8) -> Vec<u8> {
    let mut body = vec![0u8; 20];
    body[0..2].copy_from_slice(&src.port().to_be_bytes());
    body[2..4].copy_from_slice(&dst.port().to_be_bytes());
    body[12] = chunk_type;
    body[14..16].copy_from_slice(&8u16.to_be_bytes());
    let crc = crc32c::crc32c(&body);
    body[8..12].copy_from_slice(&crc.to_le_bytes());
    let builder = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut out = Vec::new();
    builder.write(&mut out, IpNumber::SCTP, &body).unwrap();
    out
}

/// (source, destination) of an SCTP packet, after checking its IP header (etherparse) and
/// its CRC32c (recomputed from scratch).
fn checked(packet: &[u8]) -> (SocketAddr, SocketAddr) {
    let ip = IpSlice::from_slice(packet).expect("IP parses");
    if let IpSlice::Ipv4(v4) = &ip {
        let h = v4.header().to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "IPv4 header checksum"
        );
    }
    let body = ip.payload().payload;
    let mut zeroed = body.to_vec();
    zeroed[8..12].fill(0);
    assert_eq!(
        u32::from_le_bytes(body[8..12].try_into().unwrap()),
        crc32c::crc32c(&zeroed),
        "SCTP CRC32c"
    );
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    (
        SocketAddr::new(ip.source_addr(), port(0)),
        SocketAddr::new(ip.destination_addr(), port(2)),
    )
}

#[test]
fn association_is_translated_both_ways_with_valid_crc() {
    // (client, service, endpoints it may reach, masqueraded to)
    let rows = [
        (
            "10.10.0.102:5000",
            "10.10.1.120:3868",
            ["10.10.0.30:3869", "10.10.0.31:3869"],
            None,
        ),
        (
            "192.168.0.200:5000",
            "10.10.1.120:3868",
            ["10.10.0.30:3869", "10.10.0.31:3869"],
            Some("192.168.0.101"),
        ),
        (
            "[fd00:10::102]:5000",
            "[fd00:10::120]:3868",
            ["[fd00:10::30]:3869", "[fd00:10::31]:3869"],
            None,
        ),
        (
            "[2001:db8::200]:5000",
            "[fd00:10::120]:3868",
            ["[fd00:10::30]:3869", "[fd00:10::31]:3869"],
            Some("fd00:192::101"),
        ),
    ];
    for (client, service, endpoints, masquerade) in rows {
        let (client, service) = (sa(client), sa(service));
        let mut engine = Engine::new(&cluster());
        let mut init = sctp(client, service, INIT);
        let verdict = engine.process_path(Path::Forward, &mut init, Instant::ZERO);
        assert!(
            matches!(verdict, Verdict::Translated(_)),
            "{client} -> {service}: {verdict:?}"
        );
        let (src, dst) = checked(&init);
        assert!(
            endpoints.contains(&dst.to_string().as_str()),
            "{dst} not an endpoint"
        );
        match masquerade {
            Some(node) => assert_eq!(src.ip(), node.parse::<IpAddr>().unwrap()),
            None => assert_eq!(src, client),
        }
        let mut init_ack = sctp(dst, src, INIT_ACK);
        engine.process_path(Path::Forward, &mut init_ack, Instant::ZERO);
        assert_eq!(
            checked(&init_ack),
            (service, client),
            "reply comes from the service"
        );
    }
}

#[test]
fn association_states_follow_netfilter_timeouts() {
    let mut engine = Engine::new(&cluster());
    let (client, service) = (sa("10.10.0.102:5000"), sa("10.10.1.120:3868"));
    let mut init = sctp(client, service, INIT);
    engine.process_path(Path::Forward, &mut init, Instant::ZERO);
    // COOKIE_WAIT: 3 s to finish the handshake.
    assert_eq!(engine.poll_at(), Some(Instant::from_secs(3)));
    let (_, endpoint) = checked(&init);
    let mut cookie_ack = sctp(endpoint, client, COOKIE_ACK);
    engine.process_path(Path::Forward, &mut cookie_ack, Instant::from_secs(1));
    // ESTABLISHED: 210 s.
    assert_eq!(engine.poll_at(), Some(Instant::from_secs(211)));
    assert_eq!(engine.handle_timeout(Instant::from_secs(210)), 0);
    assert_eq!(engine.handle_timeout(Instant::from_secs(211)), 1);
}
