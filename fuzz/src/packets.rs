//! The packet-path invariants, shared by the fuzz targets `packet_fixed` and `packet_cluster`
//! and by the stable test that replays their corpus
//! (`crates/kubenat-core/tests/fuzz_corpus.rs` includes this file with `#[path]`).
//!
//! Depends on `kubenat_core`, `etherparse` and `crc32c` only. Every checksum is verified by
//! etherparse (SCTP by the `crc32c` crate), never by the engine's code.
//!
//! Inputs are decoded by [`Bytes`], a small reader in the spirit of `arbitrary::Unstructured`
//! (missing bytes read as zero), so that the stable test decodes a corpus file exactly as
//! the fuzzer did without another dependency in the workspace.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use etherparse::{
    Icmpv4Slice, Icmpv4Type, Icmpv6Slice, IpSlice, LaxIpSlice, TcpHeaderSlice, UdpSlice,
};
use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSelection, EndpointSlice,
    Engine, Flow, Hook, Instant, IpNet, Path, Protocol, ProxyMode, Rewrite, Service, ServiceName,
    ServicePort, ServiceType, TargetPort, Update, Verdict, reference,
};

#[path = "../../crates/kubenat-core/tests/common/cluster_shape.rs"]
mod cluster_shape;

use cluster_shape::{ClusterShape, ServiceShape};

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SCTP: u8 = 132;
pub const ICMPV4: u8 = 1;
pub const ICMPV6: u8 = 58;

/// At most this many operations per input (state is kept between them).
pub const MAX_OPS: usize = 8;

// ---------------------------------------------------------------------------------------
// Reading fuzz input
// ---------------------------------------------------------------------------------------

/// Reads fuzz input front to back; past the end every read is zero.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

// ---------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------

/// The notes' cluster (`reference::cluster`) from the node the first byte picks, with a
/// small conntrack table and, by the byte's bits, iptables mode, two masquerade ports only
/// and an IPv6 half (so IPv6 packets meet Services too).
///
/// Bits: 0-1 node, 2 iptables, 3 capacity 8 (else 1024), 4 masquerade ports 1024-1025,
/// 5 dual-stack.
pub fn fixed_cluster(selector: u8) -> ClusterState {
    let node = reference::NODES[usize::from(selector & 3) % reference::NODES.len()].0;
    let mut state = reference::cluster(node);
    if selector & 4 != 0 {
        state.proxy.mode = ProxyMode::Iptables;
    }
    state.proxy.conntrack_capacity = if selector & 8 != 0 { 8 } else { 1024 };
    if selector & 16 != 0 {
        state.proxy.masquerade_ports = 1024..=1025;
    }
    if selector & 32 != 0 {
        add_ipv6(&mut state);
    }
    state
}

/// Gives every node an IPv6 address fd00:192::<last octet>, the pod network fd00:10::/64,
/// the service range fd00:10:1::/112 and a dual-stack NodePort Service `default/echo`
/// (TCP 7000 -> 7, NodePort 30990; UDP and SCTP 7000 -> 7) with one pod per family.
pub fn add_ipv6(state: &mut ClusterState) {
    let six = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x192,
            0,
            0,
            0,
            0,
            0,
            u16::from(v4.octets()[3]),
        ))),
        IpAddr::V6(_) => None,
    };
    let extra: Vec<IpAddr> = state.proxy.node_ips.iter().filter_map(six).collect();
    state.proxy.node_ips.extend(extra);
    for node in &mut state.nodes {
        let extra: Vec<IpAddr> = node.addresses.iter().filter_map(six).collect();
        node.addresses.extend(extra);
    }
    state.proxy.cluster_cidrs.push(net("fd00:10::/64"));
    state.proxy.service_cidrs.push(net("fd00:10:1::/112"));
    let name = ServiceName::new("default", "echo");
    let protocols = [
        ("tcp", Protocol::Tcp, Some(30990)),
        ("udp", Protocol::Udp, Some(30991)),
        ("sctp", Protocol::Sctp, Some(30992)),
    ];
    state.services.push(Service {
        name: name.clone(),
        service_type: ServiceType::NodePort,
        cluster_ips: vec![ip("10.10.1.120"), ip("fd00:10:1::120")],
        ports: protocols
            .iter()
            .map(|&(n, protocol, node_port)| ServicePort {
                name: n.into(),
                protocol,
                port: 7000,
                target_port: TargetPort::Number(7),
                node_port,
            })
            .collect(),
        ..Service::default()
    });
    state.endpoint_slices.push(EndpointSlice {
        name: "echo-x1".into(),
        service: name,
        ports: protocols
            .iter()
            .map(|&(n, protocol, _)| EndpointPort {
                name: n.into(),
                protocol,
                port: 7,
            })
            .collect(),
        endpoints: vec![
            Endpoint {
                addresses: vec![ip("10.10.0.120")],
                conditions: EndpointConditions::default(),
                node_name: Some("nodob".into()),
            },
            Endpoint {
                addresses: vec![ip("fd00:10::120")],
                conditions: EndpointConditions::default(),
                node_name: Some("nodoa".into()),
            },
        ],
    });
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("CIDR")
}

/// Service ports a generated cluster draws from (small, so flows collide).
const PORTS: [u16; 4] = [53, 80, 443, 8080];

/// A small cluster decoded from fuzz input: up to three Services of any type and family,
/// one or two ports each (TCP, UDP or SCTP), traffic policies, affinity, up to three
/// endpoints each on one of three nodes with any conditions; proxy mode, masquerade-all,
/// Maglev, a conntrack capacity of 2, 8 or 64 and a masquerade range of 2 or 64 ports.
/// Addresses as [`cluster_shape`] gives them.
pub fn decode_cluster(input: &mut Bytes<'_>) -> ClusterState {
    let flags = input.byte();
    let seed = u64::from(input.byte());
    let services = (0..1 + input.below(3))
        .map(|_| decode_service(input))
        .collect();
    cluster_shape::cluster(ClusterShape {
        mode: if flags & 2 != 0 {
            ProxyMode::Iptables
        } else {
            ProxyMode::Nftables
        },
        masquerade_all: flags & 1 != 0,
        selection: if flags & 4 != 0 {
            EndpointSelection::Maglev { table_size: 13 }
        } else {
            EndpointSelection::RoundRobin
        },
        conntrack_capacity: [2, 8, 64, 64][usize::from(flags >> 3) & 3],
        masquerade_ports: if flags & 32 != 0 {
            1024..=1025
        } else {
            1024..=1087
        },
        seed,
        services,
    })
}

fn decode_service(input: &mut Bytes<'_>) -> ServiceShape {
    let kind = input.byte();
    let mut ports: Vec<(Protocol, u16)> = Vec::new();
    for _ in 0..1 + input.below(2) {
        let b = input.byte();
        let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][usize::from(b % 3)];
        let port = PORTS[usize::from(b >> 2) % PORTS.len()];
        if !ports.contains(&(protocol, port)) {
            ports.push((protocol, port));
        }
    }
    let policy = input.byte();
    let endpoints = (0..input.below(4))
        .map(|_| {
            let b = input.byte();
            let conditions = EndpointConditions {
                ready: b & 4 == 0,
                serving: b & 12 != 8,
                terminating: b & 16 != 0,
            };
            (usize::from(b % 3), conditions)
        })
        .collect();
    ServiceShape {
        service_type: match kind % 3 {
            0 => ServiceType::ClusterIp,
            1 => ServiceType::NodePort,
            _ => ServiceType::LoadBalancer,
        },
        ipv4: (kind >> 2) % 3 != 1,
        ipv6: (kind >> 2) % 3 != 0,
        ports,
        external_ips: policy & 4 != 0,
        source_ranges: policy & 8 != 0,
        external_policy_local: policy & 1 != 0,
        internal_policy_local: policy & 2 != 0,
        affinity: (policy & 16 != 0).then_some(Duration::from_secs(60)),
        endpoints,
    }
}

/// Addresses worth sending from and to in `state`: its nodes, pods, service, external and
/// load-balancer addresses, loopback and an outside client per family.
pub fn addresses(state: &ClusterState) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = state
        .nodes
        .iter()
        .flat_map(|n| n.addresses.iter().copied())
        .chain(state.proxy.node_ips.iter().copied())
        .chain(state.services.iter().flat_map(|s| {
            s.cluster_ips
                .iter()
                .chain(&s.external_ips)
                .chain(&s.load_balancer_ips)
                .copied()
        }))
        .chain(
            state
                .endpoint_slices
                .iter()
                .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.iter().copied())),
        )
        .chain([
            ip("127.0.0.1"),
            ip("::1"),
            ip("203.0.113.7"),
            ip("2001:db8:c::7"),
            ip("10.20.1.200"),
            ip("10.96.0.200"),
        ])
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Ports worth aiming at in `state`: service ports, NodePorts, target ports.
pub fn ports(state: &ClusterState) -> Vec<u16> {
    let mut out: Vec<u16> = state
        .services
        .iter()
        .flat_map(|s| s.ports.iter().flat_map(|p| [Some(p.port), p.node_port]))
        .flatten()
        .chain(
            state
                .endpoint_slices
                .iter()
                .flat_map(|s| s.ports.iter().map(|p| p.port)),
        )
        .chain([40000, 1024])
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------
// Building packets (etherparse; SCTP by hand with the crc32c crate)
// ---------------------------------------------------------------------------------------

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// A TCP, UDP or SCTP packet (any other protocol number: an ICMP echo request for ICMP,
/// else an empty payload) from `src` to `dst`. `flags` are TCP flags or the SCTP chunk type.
pub fn build(protocol: u8, src: SocketAddr, dst: SocketAddr, flags: u8, payload: &[u8]) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        (IpAddr::V4(s), IpAddr::V6(_)) => {
            return build(
                protocol,
                src,
                SocketAddr::new(IpAddr::V4(s), dst.port()),
                flags,
                payload,
            );
        }
        (IpAddr::V6(s), IpAddr::V4(_)) => {
            return build(
                protocol,
                src,
                SocketAddr::new(IpAddr::V6(s), dst.port()),
                flags,
                payload,
            );
        }
    };
    let mut out = Vec::new();
    match protocol {
        TCP => {
            let mut b = ip.tcp(src.port(), dst.port(), 1000, 64_000);
            if flags & SYN != 0 {
                b = b.syn();
            }
            if flags & ACK != 0 {
                b = b.ack(1);
            }
            if flags & FIN != 0 {
                b = b.fin();
            }
            if flags & RST != 0 {
                b = b.rst();
            }
            b.write(&mut out, payload).expect("tcp");
        }
        UDP => ip
            .udp(src.port(), dst.port())
            .write(&mut out, payload)
            .expect("udp"),
        SCTP => {
            let sctp = sctp_packet(src.port(), dst.port(), flags, payload);
            let number = etherparse::IpNumber(SCTP);
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    let h = etherparse::Ipv4Header::new(
                        sctp.len() as u16,
                        64,
                        number,
                        s.octets(),
                        d.octets(),
                    )
                    .expect("ipv4");
                    h.write(&mut out).expect("write");
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    let h = etherparse::Ipv6Header {
                        traffic_class: 0,
                        flow_label: Default::default(),
                        payload_length: sctp.len() as u16,
                        next_header: number,
                        hop_limit: 64,
                        source: s.octets(),
                        destination: d.octets(),
                    };
                    h.write(&mut out).expect("write");
                }
                _ => unreachable!(),
            }
            out.extend_from_slice(&sctp);
        }
        _ => match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64)
                    .icmpv4_echo_request(src.port(), 1)
                    .write(&mut out, payload)
                    .expect("icmp")
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                etherparse::PacketBuilder::ipv6(s.octets(), d.octets(), 64)
                    .icmpv6_echo_request(src.port(), 1)
                    .write(&mut out, payload)
                    .expect("icmpv6")
            }
            _ => unreachable!(),
        },
    }
    out
}

/// An SCTP packet: common header (verification tag 1), one chunk of `chunk` type carrying
/// `payload` (padded to 4 bytes), CRC32c little-endian (RFC 9260 appendix A).
pub fn sctp_packet(sport: u16, dport: u16, chunk: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(chunk);
    out.push(0);
    out.extend_from_slice(&((4 + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let crc = crc32c::crc32c(&out);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------
// Reading packets back (etherparse)
// ---------------------------------------------------------------------------------------

/// What etherparse reads from a packet: addresses, protocol, where the transport starts,
/// whether it is a fragment (and which), and the ports when there is a whole header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub l4_offset: usize,
    pub l4_len: usize,
    /// Fragment offset non-zero.
    pub later_fragment: bool,
    /// A fragment of any kind.
    pub fragment: bool,
    pub ports: Option<(u16, u16)>,
}

pub fn seen(packet: &[u8]) -> Option<Seen> {
    let ip = IpSlice::from_slice(packet).ok()?;
    let payload = ip.payload();
    let l4 = payload.payload;
    let l4_offset = l4.as_ptr() as usize - packet.as_ptr() as usize;
    let later_fragment = match &ip {
        IpSlice::Ipv4(v4) => v4.header().fragments_offset().value() != 0,
        IpSlice::Ipv6(v6) => v6.extensions().clone().into_iter().any(|e| match e {
            etherparse::Ipv6ExtensionSlice::Fragment(f) => f.fragment_offset().value() != 0,
            _ => false,
        }),
    };
    let protocol = payload.ip_number.0;
    let ports =
        (!later_fragment && matches!(protocol, TCP | UDP | SCTP) && l4.len() >= 4).then(|| {
            (
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]]),
            )
        });
    Some(Seen {
        src: ip.source_addr(),
        dst: ip.destination_addr(),
        protocol,
        l4_offset,
        l4_len: l4.len(),
        later_fragment,
        fragment: payload.fragmented,
        ports,
    })
}

/// Whether each checksum of a packet verifies: `None` where there is none to check (not
/// IPv4, a fragment, a cut or unparsable header, an IPv4 UDP checksum of zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub ipv4_header: Option<bool>,
    pub transport: Option<bool>,
    /// The IPv4 header checksum of the packet an ICMP error quotes, when quoted whole.
    pub quoted_ipv4_header: Option<bool>,
}

pub fn sums(packet: &[u8]) -> Sums {
    let mut out = Sums::default();
    let Ok(ip) = IpSlice::from_slice(packet) else {
        return out;
    };
    let (src, dst): (Vec<u8>, Vec<u8>) = match &ip {
        IpSlice::Ipv4(v4) => {
            let h = v4.header().to_header();
            out.ipv4_header = Some(h.header_checksum == h.calc_header_checksum());
            (h.source.to_vec(), h.destination.to_vec())
        }
        IpSlice::Ipv6(v6) => (
            v6.header().source().to_vec(),
            v6.header().destination().to_vec(),
        ),
    };
    let payload = ip.payload();
    if payload.fragmented {
        return out;
    }
    let l4 = payload.payload;
    let v4 = src.len() == 4;
    out.transport = match payload.ip_number.0 {
        TCP => TcpHeaderSlice::from_slice(l4).ok().map(|t| {
            let data = &l4[t.slice().len()..];
            let expected = if v4 {
                t.calc_checksum_ipv4_raw(arr(&src), arr(&dst), data).ok()
            } else {
                t.calc_checksum_ipv6_raw(arr(&src), arr(&dst), data).ok()
            };
            expected == Some(t.checksum())
        }),
        UDP => UdpSlice::from_slice(l4).ok().and_then(|u| {
            if v4 && u.checksum() == 0 {
                return None;
            }
            let h = u.to_header();
            let expected = if v4 {
                h.calc_checksum_ipv4_raw(arr(&src), arr(&dst), u.payload())
                    .ok()
            } else {
                h.calc_checksum_ipv6_raw(arr(&src), arr(&dst), u.payload())
                    .ok()
            };
            Some(expected == Some(u.checksum()))
        }),
        SCTP if l4.len() >= 12 => Some(sctp_crc_ok(l4)),
        ICMPV4 if v4 => Icmpv4Slice::from_slice(l4).ok().map(|icmp| {
            // Over the bytes as they are (etherparse's typed headers assume zeroed unused
            // fields).
            let raw = Icmpv4Type::Unknown {
                type_u8: icmp.type_u8(),
                code_u8: icmp.code_u8(),
                bytes5to8: icmp.bytes5to8(),
            };
            raw.calc_checksum(icmp.payload()) == icmp.checksum()
        }),
        ICMPV6 if !v4 => Icmpv6Slice::from_slice(l4)
            .ok()
            .map(|icmp| icmp.is_checksum_valid(arr(&src), arr(&dst))),
        _ => None,
    };
    if matches!(payload.ip_number.0, ICMPV4 | ICMPV6) && l4.len() >= 8 {
        if let Ok((LaxIpSlice::Ipv4(inner), _)) = LaxIpSlice::from_slice(&l4[8..]) {
            let h = inner.header().to_header();
            out.quoted_ipv4_header = Some(h.header_checksum == h.calc_header_checksum());
        }
    }
    out
}

pub fn sctp_crc_ok(sctp: &[u8]) -> bool {
    let mut copy = sctp.to_vec();
    copy[8..12].fill(0);
    crc32c::crc32c(&copy).to_le_bytes() == sctp[8..12]
}

fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

fn flow_of(seen: &Seen) -> Option<Flow> {
    let (sport, dport) = seen.ports?;
    Some(Flow {
        protocol: seen.protocol,
        source: SocketAddr::new(seen.src, sport),
        destination: SocketAddr::new(seen.dst, dport),
    })
}

fn is_icmp_error(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        ICMPV4 => matches!(icmp_type, 3 | 4 | 5 | 11 | 12),
        ICMPV6 => matches!(icmp_type, 1..=4),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Running packets with the invariants checked
// ---------------------------------------------------------------------------------------

/// How a packet is handed to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Hook(Hook),
    Path(Path),
}

impl Call {
    /// 0 PREROUTING, 1 OUTPUT, 2 POSTROUTING, 3 forward path, 4 local-out path (mod 5).
    pub fn from_byte(b: u8) -> Call {
        match b % 5 {
            0 => Call::Hook(Hook::Prerouting),
            1 => Call::Hook(Hook::Output),
            2 => Call::Hook(Hook::Postrouting),
            3 => Call::Path(Path::Forward),
            _ => Call::Path(Path::LocalOut),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            Call::Hook(Hook::Prerouting) => 0,
            Call::Hook(Hook::Output) => 1,
            Call::Hook(Hook::Postrouting) => 2,
            Call::Path(Path::Forward) => 3,
            Call::Path(Path::LocalOut) => 4,
        }
    }
}

/// Time steps an operation may advance the clock by (index: the op byte's top bits).
pub const STEPS_MS: [u64; 8] = [0, 1, 1_000, 10_001, 30_001, 120_001, 3_600_001, 86_400_001];

/// An engine plus what the harness counted, checking every invariant on each call.
pub struct Harness {
    pub engine: Engine,
    pub capacity: usize,
    /// Calls made to the engine's packet path (each counted once by the engine).
    pub calls: u64,
    pub now: Instant,
    pub translated: u64,
    pub replies_checked: u64,
    /// Send the reply of every translated packet (off when the engine's state must follow
    /// the input alone, as in the replay comparison).
    pub probe_replies: bool,
}

impl Harness {
    pub fn new(state: &ClusterState) -> Harness {
        Harness {
            engine: Engine::new(state),
            capacity: state.proxy.conntrack_capacity,
            calls: 0,
            now: Instant::ZERO,
            translated: 0,
            replies_checked: 0,
            probe_replies: true,
        }
    }

    pub fn advance(&mut self, step: u8) {
        let ms = STEPS_MS[usize::from(step) % STEPS_MS.len()];
        self.now = Instant::from_nanos(self.now.as_nanos().saturating_add(ms * 1_000_000));
    }

    /// Expires connections, checking the timer afterwards points past `now`.
    pub fn expire(&mut self) {
        self.engine.handle_timeout(self.now);
        if let Some(at) = self.engine.poll_at() {
            assert!(
                at > self.now,
                "poll_at {at:?} not after handle_timeout({:?})",
                self.now
            );
        }
        self.check_counters();
    }

    /// Runs `packet` through `call` and checks every invariant; returns the verdict and the
    /// packet as it left.
    pub fn run(&mut self, call: Call, packet: &[u8]) -> (Verdict, Vec<u8>) {
        let mut out = packet.to_vec();
        let verdict = match call {
            Call::Hook(hook) => self.engine.process(hook, &mut out, self.now),
            Call::Path(path) => self.engine.process_path(path, &mut out, self.now),
        };
        self.calls += 1;
        match verdict {
            Verdict::Accept => assert_eq!(out, packet, "an accepted packet is byte-identical"),
            Verdict::Drop(reason) => {
                assert_eq!(out, packet, "a dropped packet ({reason}) is not rewritten")
            }
            Verdict::Reject(reason) => {
                assert_eq!(out, packet, "a rejected packet ({reason}) is not rewritten");
                self.check_reject_reply(&out);
            }
            Verdict::Translated(t) => {
                self.translated += 1;
                check_translation(&t, packet, &out);
                if let Call::Path(path) = call
                    && self.probe_replies
                {
                    self.check_reply(path, &t, packet, &out);
                }
            }
            other => panic!("a verdict this harness does not check yet: {other:?}"),
        }
        self.check_counters();
        (verdict, out)
    }

    pub fn check_counters(&self) {
        let c = self.engine.counters();
        assert_eq!(c.total(), self.calls, "counters add up to the packets seen");
        assert_eq!(
            c.dropped,
            c.drop_reasons().map(|(_, n)| n).sum::<u64>(),
            "drops add up to their reasons"
        );
        assert_eq!(
            c.rejected,
            c.reject_reasons().map(|(_, n)| n).sum::<u64>(),
            "rejects add up to their reasons"
        );
        assert!(
            self.engine.connections() <= 2 * self.capacity,
            "{} connections tracked with a capacity of {} per family",
            self.engine.connections(),
            self.capacity
        );
    }

    fn check_reject_reply(&self, rejected: &[u8]) {
        let mut reply = [0u8; MAX_REPLY_LEN];
        let len = self
            .engine
            .write_reject_reply(rejected, &mut reply)
            .expect("a rejected packet has a reply");
        let reply = &reply[..len];
        let s = sums(reply);
        assert_ne!(
            s.ipv4_header,
            Some(false),
            "reject reply IPv4 header checksum"
        );
        assert_eq!(s.transport, Some(true), "reject reply ICMP checksum");
        let (r, o) = (
            seen(reply).expect("reply parses"),
            seen(rejected).expect("rejected parses"),
        );
        assert_eq!(r.dst, o.src, "the reply goes back to the sender");
        assert_eq!(r.protocol, if o.src.is_ipv4() { ICMPV4 } else { ICMPV6 });
    }

    /// Sends the reply to a translated packet as it left (addresses and ports swapped)
    /// through the same path: it must come back as the swap of the packet as it arrived.
    fn check_reply(&mut self, path: Path, t: &Rewrite, before: &[u8], after: &[u8]) {
        let (Some(b), Some(a)) = (seen(before), seen(after)) else {
            return;
        };
        if t.icmp_error() || b.later_fragment || !matches!(b.protocol, TCP | UDP | SCTP) {
            return;
        }
        let (Some(arrived), Some(left)) = (flow_of(&b), flow_of(&a)) else {
            return;
        };
        // Reply from the destination the packet reached to the source it left with.
        let flags = match b.protocol {
            TCP => ACK,
            SCTP => 4, // HEARTBEAT
            _ => 0,
        };
        let reply = build(left.protocol, left.destination, left.source, flags, b"r");
        // A loopback-sourced packet's reply would be local; replies to anything but the
        // forward path arrive at PREROUTING all the same.
        let _ = path;
        let mut out = reply.clone();
        let verdict = self.engine.process_path(Path::Forward, &mut out, self.now);
        self.calls += 1;
        self.replies_checked += 1;
        let Verdict::Translated(r) = verdict else {
            panic!("the reply to {left} (translated from {arrived}) got {verdict:?}");
        };
        check_translation(&r, &reply, &out);
        let back = seen(&out)
            .as_ref()
            .and_then(flow_of)
            .expect("the reply parses");
        assert_eq!(
            (back.source, back.destination),
            (arrived.destination, arrived.source),
            "the reply restores the original tuple ({arrived} -> {left})"
        );
    }
}

/// The invariants of one translated packet, read with etherparse: the rewrite's flags say
/// exactly what changed.
pub fn check_translation(t: &Rewrite, before: &[u8], after: &[u8]) {
    assert_eq!(before.len(), after.len(), "a translation keeps the length");
    let b = seen(before).expect("a translated packet parsed before");
    let a = seen(after).expect("a translated packet parses after");
    if t.icmp_error() {
        // An error's outer header may already be right (it can come from the service
        // address): then only its quote changes. Its checksum alone never counts.
        let checksum = b.l4_offset + 2..b.l4_offset + 4;
        let rest = |p: &[u8]| [&p[..checksum.start], &p[checksum.end..]].concat();
        assert_ne!(
            rest(before),
            rest(after),
            "a translated ICMP error changes its header or its quote"
        );
    } else {
        assert!(
            t.destination() || t.source(),
            "a translation changes the tuple"
        );
    }
    assert_eq!(a.protocol, b.protocol);
    assert_eq!(a.l4_offset, b.l4_offset, "headers keep their place");
    match (flow_of(&b), flow_of(&a)) {
        (Some(fb), Some(fa)) if !t.icmp_error() => {
            assert_eq!(
                t.destination(),
                fb.destination != fa.destination,
                "the rewrite says whether the destination changed ({fb} -> {fa})"
            );
            assert_eq!(
                t.source(),
                fb.source != fa.source,
                "the rewrite says whether the source changed ({fb} -> {fa})"
            );
        }
        // Addresses only: an ICMP error's outer header, a later fragment (its ports are
        // in the first fragment).
        _ => {
            assert!(
                b.dst == a.dst || t.destination(),
                "a destination address changed unreported"
            );
            assert!(
                b.src == a.src || t.source(),
                "a source address changed unreported"
            );
            if t.icmp_error() {
                assert_eq!(t.destination(), b.dst != a.dst, "outer destination");
                assert_eq!(t.source(), b.src != a.src, "outer source");
            }
        }
    }
    // Only addresses, ports and checksums change (anything past the ICMP header of an
    // ICMP error: its quote is translated too).
    let v4 = b.src.is_ipv4();
    let mut allowed: Vec<std::ops::Range<usize>> = Vec::new();
    if v4 {
        allowed.extend([10..12, 12..20]);
    } else {
        allowed.push(8..40);
    }
    let l4 = b.l4_offset;
    if t.icmp_error() {
        assert!(
            is_icmp_error(b.protocol, before[l4]),
            "icmp_error set on an ICMP error"
        );
        allowed.push(l4 + 2..l4 + 4);
        allowed.push(l4 + 8..l4 + b.l4_len);
    } else if !b.later_fragment {
        match b.protocol {
            TCP => allowed.extend([l4..l4 + 4, l4 + 16..l4 + 18]),
            UDP => allowed.extend([l4..l4 + 4, l4 + 6..l4 + 8]),
            SCTP => allowed.extend([l4..l4 + 4, l4 + 8..l4 + 12]),
            _ => {}
        }
    }
    for (i, (x, y)) in before.iter().zip(after).enumerate() {
        if x != y {
            assert!(
                allowed.iter().any(|r| r.contains(&i)),
                "byte {i} changed ({x:#04x} -> {y:#04x}) outside addresses, ports and checksums"
            );
        }
    }
    // Checksums: what verified before verifies after.
    let (sb, sa) = (sums(before), sums(after));
    for (name, x, y) in [
        ("IPv4 header", sb.ipv4_header, sa.ipv4_header),
        ("transport", sb.transport, sa.transport),
        (
            "quoted IPv4 header",
            sb.quoted_ipv4_header,
            sa.quoted_ipv4_header,
        ),
    ] {
        if x == Some(true) {
            assert_eq!(y, Some(true), "{name} checksum verified before, not after");
        }
    }
    if t.icmp_error() {
        assert_eq!(
            sa.transport,
            Some(true),
            "a translated ICMP error's checksum"
        );
    }
    if b.protocol == SCTP && !b.fragment && b.l4_len >= 12 {
        assert!(sctp_crc_ok(&after[l4..l4 + a.l4_len]), "SCTP CRC32c after");
    }
    if b.protocol == UDP && v4 && !b.fragment && b.l4_len >= 8 {
        let zero = |p: &[u8]| p[l4 + 6..l4 + 8] == [0, 0];
        assert_eq!(
            zero(before),
            zero(after),
            "an IPv4 UDP checksum of zero stays zero"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The two packet targets
// ---------------------------------------------------------------------------------------

/// One operation's header byte: bits 0-2 what (0-4 a [`Call`], 5 expire, 6-7 a structured
/// packet through the forward path in `packet_cluster`, else like 3), bits 5-7 the time
/// step ([`STEPS_MS`]) taken before it.
pub fn op_byte(what: u8, step: u8) -> u8 {
    (what & 7) | (step << 5)
}

/// `packet_fixed`: a selector byte for [`fixed_cluster`], then up to [`MAX_OPS`]
/// operations: an op byte ([`op_byte`]), a big-endian u16 length and that many packet
/// bytes (the rest of the input when shorter).
pub fn packet_fixed(data: &[u8]) -> Harness {
    let mut input = Bytes::new(data);
    let state = fixed_cluster(input.byte());
    let mut h = Harness::new(&state);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        h.advance(op >> 5);
        let len = usize::from(input.u16());
        let packet = input.take(len);
        match op & 7 {
            5 => h.expire(),
            what => {
                h.run(Call::from_byte(what), packet);
            }
        }
    }
    h
}

/// `packet_cluster`: a cluster ([`decode_cluster`]), then up to [`MAX_OPS`] operations.
/// An op byte ([`op_byte`]), then for 0-4: a length-prefixed raw packet as in
/// [`packet_fixed`]; 5: expire; 6: a packet built from the cluster's addresses (source
/// index, destination index, protocol, flags, source port u16, destination-port index,
/// payload length, then a byte offset u16 and a value overwriting the packet there when
/// the offset is in it), through the forward path; 7: an update (remove or empty a Slice,
/// remove a Service, or put a removed Service back).
pub fn packet_cluster(data: &[u8]) -> Harness {
    let mut input = Bytes::new(data);
    let state = decode_cluster(&mut input);
    let addresses = addresses(&state);
    let ports = ports(&state);
    let mut h = Harness::new(&state);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        h.advance(op >> 5);
        match op & 7 {
            5 => h.expire(),
            6 => {
                let src = addresses[input.below(addresses.len())];
                let dst = addresses[input.below(addresses.len())];
                let protocol = [TCP, UDP, SCTP, ICMPV4][input.below(4)];
                let flags = input.byte();
                let sport = input.u16();
                let dport = ports[input.below(ports.len())];
                let payload = vec![0x5a; input.below(16)];
                let mut packet = build(
                    protocol,
                    SocketAddr::new(src, sport),
                    SocketAddr::new(dst, dport),
                    flags,
                    &payload,
                );
                let at = usize::from(input.u16());
                let value = input.byte();
                if let Some(b) = packet.get_mut(at) {
                    *b = value;
                }
                h.run(Call::Path(Path::Forward), &packet);
            }
            7 => {
                let which = input.below(state.services.len());
                let name = state.services[which].name.clone();
                let update = match input.below(4) {
                    0 => Update::RemoveEndpointSlice {
                        service: name,
                        name: state.endpoint_slices[which].name.clone(),
                    },
                    1 => Update::UpsertEndpointSlice(Box::new(EndpointSlice {
                        endpoints: Vec::new(),
                        ..state.endpoint_slices[which].clone()
                    })),
                    2 => Update::RemoveService(name),
                    _ => Update::UpsertService(Box::new(state.services[which].clone())),
                };
                h.engine
                    .update(update)
                    .expect("the engine owns its control plane");
                h.check_counters();
            }
            what => {
                let len = usize::from(input.u16());
                let packet = input.take(len);
                h.run(Call::from_byte(what), packet);
            }
        }
    }
    h
}
