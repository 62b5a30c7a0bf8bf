//! One packet through a fresh engine of a node, with the engine's reasons: what
//! `kubenat trace` and the story print.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;
use kubenat_core::trace::TraceStep;
use kubenat_core::{ClusterState, Engine, Instant, Path, Protocol, Verdict};

/// Where one probe packet went, and why.
#[derive(Clone, Debug)]
pub struct Report {
    pub path: Path,
    pub verdict: Verdict,
    /// The endpoint the connection was sent to, when DNAT happened.
    pub endpoint: Option<SocketAddr>,
    pub masquerade: bool,
    pub service: Option<String>,
    pub steps: Vec<TraceStep>,
}

/// The first packet of a connection (TCP SYN, UDP datagram) from `src` to `dst`.
pub fn first_packet(protocol: Protocol, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let builder = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => unreachable!("callers check the families match"),
    };
    let mut packet = Vec::new();
    let written = match protocol {
        Protocol::Tcp => builder
            .tcp(src.port(), dst.port(), 1, 64_240)
            .syn()
            .write(&mut packet, &[]),
        Protocol::Udp | Protocol::Sctp => {
            builder.udp(src.port(), dst.port()).write(&mut packet, &[])
        }
    };
    written.expect("writing to a Vec cannot fail");
    packet
}

/// Traces one connection's first packet through the engine of `state`'s node: traffic the
/// node itself sends when `src` is one of its addresses, else traffic arriving at it.
pub fn trace(state: &ClusterState, protocol: Protocol, src: SocketAddr, dst: SocketAddr) -> Report {
    let mut engine = Engine::new(state);
    let path = if state.proxy.node_ips.contains(&src.ip()) || src.ip().is_loopback() {
        Path::LocalOut
    } else {
        Path::Forward
    };
    let mut packet = first_packet(protocol, src, dst);
    let mut steps = Vec::new();
    let verdict = engine.process_path_traced(path, &mut packet, Instant::ZERO, &mut steps);
    let service = steps.iter().find_map(|s| match s {
        TraceStep::ServiceMatched { service, .. } => Some(service.to_string()),
        _ => None,
    });
    let masquerade = steps
        .iter()
        .any(|s| matches!(s, TraceStep::Masquerade { .. }));
    let endpoint = match verdict {
        Verdict::Translated(t) if t.after.destination != t.before.destination => {
            Some(t.after.destination)
        }
        _ => None,
    };
    Report {
        path,
        verdict,
        endpoint,
        masquerade,
        service,
        steps,
    }
}
