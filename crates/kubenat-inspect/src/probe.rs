//! One packet through a fresh engine of a node, with the engine's reasons: what
//! `kubenat trace` and the story print.

use std::net::{IpAddr, SocketAddr};

use etherparse::{IpNumber, PacketBuilder};
use kubenat_core::trace::TraceStep;
use kubenat_core::{ClusterState, Engine, Flow, Instant, PacketMeta, Path, Protocol, Verdict};

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
    /// The packet's 5-tuple as it leaves the node, when it was translated.
    pub after: Option<Flow>,
}

impl Report {
    /// The probe packet as it arrived.
    pub fn first_flow(&self) -> String {
        self.steps
            .iter()
            .find_map(|s| match s {
                TraceStep::Received { flow, .. } => Some(flow.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// The port a source without one gets: an ephemeral one.
pub const DEFAULT_SOURCE_PORT: u16 = 50_000;

/// `IP`, `IP:PORT` or `[IPv6]:PORT`: the address and the port, if any.
pub fn parse_address(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    text.parse::<SocketAddr>()
        .map(|a| (a.ip(), Some(a.port())))
        .map_err(|_| "expected IP, IP:PORT or [IPv6]:PORT (a port is 0 to 65535)".to_string())
}

/// The first packet of a connection (TCP SYN, UDP datagram, SCTP INIT) from `src` to `dst`.
/// Both addresses must be of one family.
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
        Protocol::Udp => builder.udp(src.port(), dst.port()).write(&mut packet, &[]),
        Protocol::Sctp => builder.write(
            &mut packet,
            IpNumber::SCTP,
            &sctp_init(src.port(), dst.port()),
        ),
    };
    written.expect("writing to a Vec cannot fail");
    packet
}

/// An SCTP packet holding one INIT chunk (RFC 9260 §3.3.2), checksummed.
fn sctp_init(sport: u16, dport: u16) -> [u8; 32] {
    let mut sctp = [0u8; 32];
    sctp[0..2].copy_from_slice(&sport.to_be_bytes());
    sctp[2..4].copy_from_slice(&dport.to_be_bytes());
    // Verification tag 0 (INIT), checksum later; chunk: type 1, flags 0, length 20.
    sctp[12] = 1;
    sctp[14..16].copy_from_slice(&20u16.to_be_bytes());
    sctp[16..20].copy_from_slice(&0x6b75_6265u32.to_be_bytes()); // initiate tag
    sctp[20..24].copy_from_slice(&65_535u32.to_be_bytes()); // a_rwnd
    sctp[24..26].copy_from_slice(&1u16.to_be_bytes()); // outbound streams
    sctp[26..28].copy_from_slice(&1u16.to_be_bytes()); // inbound streams
    sctp[28..32].copy_from_slice(&1u32.to_be_bytes()); // initial TSN
    let crc = crc32c::crc32c(&sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
    sctp
}

/// Traces one connection's first packet through the engine of `state`'s node: traffic the
/// node itself sends when `src` is one of its addresses, else traffic arriving at it.
/// The engine takes `state` as it is (no copy: at a million Services a copy takes seconds).
pub fn trace(state: ClusterState, protocol: Protocol, src: SocketAddr, dst: SocketAddr) -> Report {
    let path = if state.proxy.node_ips.contains(&src.ip()) || src.ip().is_loopback() {
        Path::LocalOut
    } else {
        Path::Forward
    };
    let mut engine = Engine::from_state(state);
    let mut packet = first_packet(protocol, src, dst);
    let mut steps = Vec::new();
    // The packet is built with valid checksums, and they are checked as on the wire.
    let mut meta = PacketMeta::default();
    let verdict =
        engine.process_path_traced(path, &mut packet, &mut meta, Instant::ZERO, &mut steps);
    let service = steps.iter().find_map(|s| match s {
        TraceStep::ServiceMatched { service, .. } => Some(service.to_string()),
        _ => None,
    });
    let masquerade = steps
        .iter()
        .any(|s| matches!(s, TraceStep::Masquerade { .. }));
    let after = match verdict {
        Verdict::Translated(_) => Flow::of_packet(&packet),
        _ => None,
    };
    let endpoint = match (verdict, after) {
        (Verdict::Translated(t), Some(after)) if t.destination() => Some(after.destination),
        _ => None,
    };
    Report {
        path,
        verdict,
        endpoint,
        masquerade,
        service,
        steps,
        after,
    }
}
