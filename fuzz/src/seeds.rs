//! The seed corpus: real packets, manifests and captures, encoded as each target reads its
//! input. `cargo run --manifest-path fuzz/Cargo.toml --example seed-corpus` writes them to
//! `fuzz/corpus/<target>/<name>` (deterministic: rerunning rewrites the same files).

use std::net::SocketAddr;

use crate::packets::{ACK, Call, FIN, ICMPV4, RST, SCTP, SYN, TCP, UDP, build, op_byte};
use kubenat_core::{Hook, Path};

/// One corpus file.
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// `packet_fixed` input: the cluster selector, then each packet with its call and time step.
pub fn fixed_input(selector: u8, ops: &[(Call, u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![selector];
    for (call, step, packet) in ops {
        out.push(op_byte(call.to_byte(), *step));
        out.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        out.extend_from_slice(packet);
    }
    out
}

const FWD: Call = Call::Path(Path::Forward);
const LOCAL: Call = Call::Path(Path::LocalOut);
const PRE: Call = Call::Hook(Hook::Prerouting);
const POST: Call = Call::Hook(Hook::Postrouting);

/// Selector bits of [`crate::packets::fixed_cluster`]: nodoa (1), dual-stack (32).
const NODOA: u8 = 1;
const DUAL: u8 = 1 | 32;
const SMALL_TABLE: u8 = 1 | 8;
const TWO_PORTS: u8 = 1 | 16;

fn tcp(src: &str, dst: &str, flags: u8) -> Vec<u8> {
    build(TCP, sa(src), sa(dst), flags, b"")
}

fn udp(src: &str, dst: &str) -> Vec<u8> {
    build(UDP, sa(src), sa(dst), 0, b"query")
}

/// Sets the IPv4 header checksum of `packet` (after a header change).
fn fix_ipv4_checksum(packet: &mut [u8]) {
    let (mut h, _) = etherparse::Ipv4Header::from_slice(packet).expect("ipv4");
    h.header_checksum = h.calc_header_checksum();
    let bytes = h.to_bytes();
    packet[..bytes.len()].copy_from_slice(&bytes);
}

/// An IPv4 packet with four option bytes (NOP NOP NOP EOL: IHL 6), valid checksums.
fn with_ipv4_options(packet: &[u8]) -> Vec<u8> {
    let mut out = packet[..20].to_vec();
    out[0] = 0x46;
    out.extend_from_slice(&[1, 1, 1, 0]);
    out.extend_from_slice(&packet[20..]);
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut out);
    out
}

/// An IPv6 packet with hop-by-hop, routing and (atomic) fragment headers before its
/// transport; the transport checksum does not cover extension headers.
fn with_ipv6_extensions(packet: &[u8]) -> Vec<u8> {
    let next = packet[6];
    let mut out = packet[..40].to_vec();
    out[6] = 0; // hop-by-hop
    // Hop-by-hop: next routing (43), length 0 (8 bytes), PadN of 4.
    out.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]);
    // Routing: next fragment (44), length 0, type 253 (experimental), segments left 0.
    out.extend_from_slice(&[44, 0, 253, 0, 0, 0, 0, 0]);
    // Fragment: next = transport, offset 0, no more fragments, id 0x1234.
    out.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0x12, 0x34]);
    out.extend_from_slice(&packet[40..]);
    let payload = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&payload.to_be_bytes());
    out
}

/// Splits an IPv4 datagram (20-byte header) into fragments carrying `first` transport
/// bytes, then the rest.
fn ipv4_fragments(datagram: &[u8], first: usize, id: u16) -> [Vec<u8>; 2] {
    let l4 = &datagram[20..];
    let make = |offset: usize, data: &[u8], more: bool| {
        let mut out = datagram[..20].to_vec();
        out[4..6].copy_from_slice(&id.to_be_bytes());
        let flags = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
        out[6..8].copy_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(data);
        let total = out.len() as u16;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        fix_ipv4_checksum(&mut out);
        out
    };
    [
        make(0, &l4[..first], true),
        make(first, &l4[first..], false),
    ]
}

/// Splits an IPv6 datagram (no extensions) with a fragment header.
fn ipv6_fragments(datagram: &[u8], first: usize, id: u32) -> [Vec<u8>; 2] {
    let next = datagram[6];
    let l4 = &datagram[40..];
    let make = |offset: usize, data: &[u8], more: bool| {
        let mut out = datagram[..40].to_vec();
        out[6] = 44;
        let field = ((offset / 8) as u16) << 3 | u16::from(more);
        out.extend_from_slice(&[next, 0]);
        out.extend_from_slice(&field.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(data);
        let payload = (out.len() - 40) as u16;
        out[4..6].copy_from_slice(&payload.to_be_bytes());
        out
    };
    [
        make(0, &l4[..first], true),
        make(first, &l4[first..], false),
    ]
}

/// An ICMP(v4) error from `from` to `to` quoting `quoted` (cut to 28 bytes as routers do).
fn icmp_error(from: &str, to: &str, icmp_type: etherparse::Icmpv4Type, quoted: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
        (from.parse().unwrap(), to.parse().unwrap());
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64)
        .icmpv4(icmp_type)
        .write(&mut out, &quoted[..quoted.len().min(28)])
        .expect("icmp error");
    out
}

fn icmpv6_error(from: &str, to: &str, quoted: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (from.parse().unwrap(), to.parse().unwrap());
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv6(s.octets(), d.octets(), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut out, &quoted[..quoted.len().min(48)])
        .expect("icmpv6 error");
    out
}

/// What a packet looks like after the engine translated it (for quoting in ICMP errors and
/// building replies), from a throwaway engine of the same cluster.
fn translated(selector: u8, call: Call, packet: &[u8]) -> Vec<u8> {
    let mut h = crate::packets::Harness::new(&crate::packets::fixed_cluster(selector));
    h.probe_replies = false;
    h.run(call, packet).1
}

/// Swaps addresses and ports of a TCP/UDP packet as it left, for the reply.
fn reply(packet: &[u8], flags: u8) -> Vec<u8> {
    let s = crate::packets::seen(packet).expect("packet");
    let (sport, dport) = s.ports.expect("ports");
    build(
        s.protocol,
        SocketAddr::new(s.dst, dport),
        SocketAddr::new(s.src, sport),
        flags,
        b"",
    )
}

/// Seeds for `packet_fixed`.
pub fn packet_fixed() -> Vec<Seed> {
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, selector: u8, ops: Vec<(Call, u8, Vec<u8>)>| {
        seeds.push((name.to_string(), fixed_input(selector, &ops)));
    };
    let pod = "10.10.0.50:40000";
    let mariadb = "10.10.1.101:3307";
    let outside = "192.168.0.200:51000";
    let node_port = "192.168.0.101:30880";
    // TCP: a whole connection to a ClusterIP, and to a NodePort with masquerade.
    let syn = tcp(pod, mariadb, SYN);
    let syn_out = translated(NODOA, FWD, &syn);
    add(
        "tcp-handshake-and-close-clusterip",
        NODOA,
        vec![
            (FWD, 0, syn.clone()),
            (FWD, 1, reply(&syn_out, SYN | ACK)),
            (FWD, 1, tcp(pod, mariadb, ACK)),
            (FWD, 1, tcp(pod, mariadb, FIN | ACK)),
            (FWD, 1, reply(&syn_out, FIN | ACK)),
            (FWD, 1, tcp(pod, mariadb, ACK)),
        ],
    );
    let np_syn = tcp(outside, node_port, SYN);
    let np_out = translated(NODOA, FWD, &np_syn);
    add(
        "tcp-nodeport-masquerade-rst",
        NODOA,
        vec![
            (FWD, 0, np_syn.clone()),
            (FWD, 1, reply(&np_out, SYN | ACK)),
            (FWD, 1, tcp(outside, node_port, RST)),
            (FWD, 3, tcp(outside, node_port, SYN)),
        ],
    );
    add("tcp-syn", NODOA, vec![(FWD, 0, syn.clone())]);
    add(
        "tcp-syn-ack-unknown",
        NODOA,
        vec![(FWD, 0, reply(&syn_out, SYN | ACK))],
    );
    add(
        "tcp-ack-midstream",
        NODOA,
        vec![(FWD, 0, tcp(pod, mariadb, ACK))],
    );
    add(
        "tcp-fin",
        NODOA,
        vec![(FWD, 0, tcp(pod, mariadb, FIN | ACK))],
    );
    add("tcp-rst", NODOA, vec![(FWD, 0, tcp(pod, mariadb, RST))]);
    add(
        "tcp-syn-hooks",
        NODOA,
        vec![
            (PRE, 0, syn.clone()),
            (POST, 0, syn_out.clone()),
            (
                Call::Hook(Hook::Output),
                0,
                tcp("192.168.0.101:40001", mariadb, SYN),
            ),
            (LOCAL, 0, tcp("127.0.0.1:40002", "127.0.0.1:30880", SYN)),
        ],
    );
    add(
        "tcp-reject-port-not-served",
        NODOA,
        vec![(FWD, 0, tcp(pod, "10.10.1.101:80", SYN))],
    );
    add(
        "tcp-iptables-localhost-nodeport",
        NODOA | 4,
        vec![(LOCAL, 0, tcp("127.0.0.1:40003", "127.0.0.1:30880", SYN))],
    );
    // UDP: DNS to kube-dns and its reply.
    let dns = udp("10.10.0.50:33000", "10.10.1.10:53");
    let dns_out = translated(NODOA, FWD, &dns);
    add(
        "udp-dns-and-reply",
        NODOA,
        vec![
            (FWD, 0, dns.clone()),
            (FWD, 1, reply(&dns_out, 0)),
            (FWD, 4, dns.clone()),
        ],
    );
    // SCTP INIT to the dual-stack echo Service, both families.
    add(
        "sctp-init-v4",
        DUAL,
        vec![(
            FWD,
            0,
            build(
                SCTP,
                sa("10.10.0.50:5000"),
                sa("10.10.1.120:7000"),
                1,
                &[0; 16],
            ),
        )],
    );
    add(
        "sctp-init-v6",
        DUAL,
        vec![(
            FWD,
            0,
            build(
                SCTP,
                sa("[fd00:10::50]:5000"),
                sa("[fd00:10:1::120]:7000"),
                1,
                &[0; 16],
            ),
        )],
    );
    // ICMP echo to a cluster IP and to an unallocated service address.
    add(
        "icmp-echo",
        NODOA,
        vec![
            (
                FWD,
                0,
                build(ICMPV4, sa("10.10.0.50:7"), sa("10.10.1.101:0"), 0, b"ping"),
            ),
            (
                FWD,
                0,
                build(ICMPV4, sa("10.10.0.50:7"), sa("10.10.1.222:0"), 0, b"ping"),
            ),
        ],
    );
    // ICMP errors quoting a translated flow (from the endpoint, and from the client's side)
    // and an unknown one.
    add(
        "icmp-error-quoting-translated-flow",
        NODOA,
        vec![
            (FWD, 0, np_syn.clone()),
            (
                FWD,
                1,
                icmp_error(
                    "10.10.0.105",
                    "192.168.0.101",
                    etherparse::Icmpv4Type::DestinationUnreachable(
                        etherparse::icmpv4::DestUnreachableHeader::Port,
                    ),
                    &np_out,
                ),
            ),
            (
                FWD,
                1,
                icmp_error(
                    "192.168.0.200",
                    "10.10.0.105",
                    etherparse::Icmpv4Type::TimeExceeded(
                        etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
                    ),
                    &reply(&np_syn, SYN | ACK),
                ),
            ),
        ],
    );
    add(
        "icmp-error-quoting-unknown-flow",
        NODOA,
        vec![(
            FWD,
            0,
            icmp_error(
                "10.10.0.77",
                "10.10.0.50",
                etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::Port,
                ),
                &tcp(pod, "10.10.0.77:80", SYN),
            ),
        )],
    );
    // IPv6: SYN with extension headers, an ICMPv6 error about a translated flow.
    let syn6 = tcp("[fd00:10::50]:40000", "[fd00:10:1::120]:7000", SYN);
    let syn6_out = translated(DUAL, FWD, &syn6);
    add(
        "ipv6-extension-headers",
        DUAL,
        vec![(FWD, 0, with_ipv6_extensions(&syn6))],
    );
    add(
        "ipv6-syn-and-icmpv6-error",
        DUAL,
        vec![
            (FWD, 0, syn6.clone()),
            (
                FWD,
                1,
                icmpv6_error("fd00:10::120", "fd00:10::50", &syn6_out),
            ),
        ],
    );
    // IPv4 options.
    add(
        "ipv4-options",
        NODOA,
        vec![(FWD, 0, with_ipv4_options(&np_syn))],
    );
    // Fragments: IPv4 and IPv6 datagrams in two, in order, out of order, and alone.
    let big = build(
        UDP,
        sa("10.10.0.50:33001"),
        sa("10.10.1.10:53"),
        0,
        &[7; 40],
    );
    let [f1, f2] = ipv4_fragments(&big, 16, 77);
    add(
        "ipv4-fragments",
        NODOA,
        vec![(FWD, 0, f1.clone()), (FWD, 0, f2.clone())],
    );
    add(
        "ipv4-fragments-reversed",
        NODOA,
        vec![(FWD, 0, f2.clone()), (FWD, 0, f1.clone())],
    );
    add("ipv4-later-fragment-alone", NODOA, vec![(FWD, 0, f2)]);
    let big6 = build(
        UDP,
        sa("[fd00:10::50]:33002"),
        sa("[fd00:10:1::120]:7000"),
        0,
        &[7; 40],
    );
    let [g1, g2] = ipv6_fragments(&big6, 16, 78);
    add("ipv6-fragments", DUAL, vec![(FWD, 0, g1), (FWD, 0, g2)]);
    // Limits: a tiny conntrack table, two masquerade ports.
    add(
        "conntrack-full",
        SMALL_TABLE,
        (0..8)
            .map(|i| {
                (
                    FWD,
                    0,
                    tcp(&format!("10.10.0.50:{}", 41000 + i), mariadb, SYN),
                )
            })
            .collect(),
    );
    add(
        "masquerade-ports-exhausted",
        TWO_PORTS,
        (0..4)
            .map(|i| {
                (
                    FWD,
                    0,
                    tcp(&format!("192.168.0.200:{}", 42000 + i), node_port, SYN),
                )
            })
            .collect(),
    );
    // Expiry between packets.
    let mut ops = vec![(FWD, 0, dns.clone())];
    ops.push((Call::from_byte(5), 5, Vec::new()));
    ops.push((FWD, 0, dns));
    let mut bytes = fixed_input(NODOA, &ops);
    // op 5 is "expire": fix its byte (Call::from_byte folds 5 into 0).
    bytes[1 + 3 + ops[0].2.len()] = op_byte(5, 5);
    seeds.push(("udp-expire-then-new".into(), bytes));
    seeds
        .into_iter()
        .map(|(name, bytes)| Seed {
            target: "packet_fixed",
            name,
            bytes,
        })
        .collect()
}

/// Seeds for `packet_cluster`: a cluster description, then packets built from its
/// addresses towards each Service (cluster IPs, load-balancer IPs, NodePorts), an update
/// (the first Service's slice emptied while its flows live) and a raw packet.
pub fn packet_cluster() -> Vec<Seed> {
    use crate::packets::{Bytes, addresses, decode_cluster, ports};
    use kubenat_core::Protocol;
    // Cluster bytes as decode_cluster reads them: flags, seed, services - 1, then per
    // Service: kind (type | family << 2), ports - 1, port bytes (protocol | index << 2),
    // policy bits, endpoints, endpoint bytes (node | not-ready 4 | terminating 16).
    let clusters: [(&str, Vec<u8>); 4] = [
        // A dual-stack NodePort with TCP/80 and UDP/53, two endpoints.
        (
            "nodeport-dual",
            vec![0, 7, 0, 1 | 2 << 2, 1, 4, 1, 0, 2, 0, 1],
        ),
        // iptables, Maglev, masquerade-all; a LoadBalancer with source ranges, affinity.
        (
            "lb-ranges-affinity",
            vec![1 | 2 | 4, 9, 0, 2, 0, 4, 8 | 16, 3, 0, 1, 2],
        ),
        // Capacity 2, two masquerade ports; a ClusterIP SCTP Service with eTP/iTP Local
        // and an external IP.
        (
            "tiny-tables-sctp",
            vec![32, 1, 0, 0, 0, 2, 1 | 2 | 4, 2, 1, 0],
        ),
        // Two IPv6 Services, one with terminating endpoints only.
        (
            "v6-terminating",
            vec![
                8,
                3,
                1,
                1 | 1 << 2,
                0,
                4,
                0,
                2,
                1,
                2,
                1 << 2,
                0,
                9,
                0,
                2,
                4 | 16 | 8,
                20,
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, mut cluster) in clusters {
        cluster.resize(64, 0);
        let mut input = Bytes::new(&cluster);
        let state = decode_cluster(&mut input);
        let used = 64 - input.remaining();
        cluster.truncate(used);
        let addrs = addresses(&state);
        let port_list = ports(&state);
        let index = |ip: std::net::IpAddr| addrs.iter().position(|a| *a == ip).unwrap() as u8;
        let port_index = |p: u16| port_list.iter().position(|x| *x == p).unwrap() as u8;
        let mut ops: Vec<Vec<u8>> = Vec::new();
        for service in &state.services {
            for port in &service.ports {
                let (protocol, flags) = match port.protocol {
                    Protocol::Tcp => (0, SYN),
                    Protocol::Udp => (1, 0),
                    Protocol::Sctp => (2, 1),
                };
                let mut targets: Vec<(std::net::IpAddr, u16)> = service
                    .cluster_ips
                    .iter()
                    .chain(&service.load_balancer_ips)
                    .chain(&service.external_ips)
                    .map(|ip| (*ip, port.port))
                    .collect();
                if let Some(node_port) = port.node_port {
                    targets.extend(state.proxy.node_ips.iter().map(|ip| (*ip, node_port)));
                }
                for (dst, dport) in targets {
                    let (client, pod): (std::net::IpAddr, std::net::IpAddr) = if dst.is_ipv4() {
                        (
                            "203.0.113.7".parse().unwrap(),
                            "10.20.1.200".parse().unwrap(),
                        )
                    } else {
                        (
                            "2001:db8:c::7".parse().unwrap(),
                            "fd00:16::11".parse().unwrap(),
                        )
                    };
                    for src in [client, pod] {
                        let [hi, lo] = (40000 + ops.len() as u16).to_be_bytes();
                        let mut op = vec![op_byte(6, 1)];
                        op.extend_from_slice(&[index(src), index(dst), protocol, flags, hi, lo]);
                        op.extend_from_slice(&[port_index(dport), 4, 0xff, 0xff, 0]);
                        ops.push(op);
                    }
                }
            }
        }
        ops.truncate(5);
        let mut bytes = cluster;
        for op in &ops {
            bytes.extend_from_slice(op);
        }
        // Empty the first Service's slice while its flows live, then send its first packet
        // again and expire.
        bytes.extend_from_slice(&[op_byte(7, 1), 0, 1]);
        bytes.extend_from_slice(&ops[0]);
        bytes.extend_from_slice(&[op_byte(5, 6)]);
        out.push(Seed {
            target: "packet_cluster",
            name: name.into(),
            bytes,
        });
    }
    // A raw packet op after a minimal cluster (one ClusterIP TCP/53 Service, no endpoints).
    let mut raw = vec![0; 8];
    let syn = tcp("203.0.113.7:40000", "172.16.0.10:30000", SYN);
    raw.push(op_byte(3, 0));
    raw.extend_from_slice(&(syn.len() as u16).to_be_bytes());
    raw.extend_from_slice(&syn);
    out.push(Seed {
        target: "packet_cluster",
        name: "raw-nodeport-syn".into(),
        bytes: raw,
    });
    out
}

/// Seeds for `manifest`: the miempresa example files and small variants.
pub fn manifest() -> Vec<Seed> {
    // The repository root: above fuzz/ or above crates/<crate>/ (this file is also compiled
    // into the workspace's corpus tests).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("examples/miempresa"))
        .find(|dir| dir.is_dir())
        .expect("examples/miempresa above the crate");
    let cluster = std::fs::read_to_string(root.join("cluster.yaml")).expect("cluster.yaml");
    let proxy = std::fs::read_to_string(root.join("kube-proxy.yaml")).expect("kube-proxy.yaml");
    let service = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, fd00::10]
  ipFamilies: [IPv4, IPv6]
  ports:
  - name: http
    port: 80
    targetPort: 8080
    nodePort: 30080
    protocol: TCP
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
";
    let slice = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
- addresses: [10.244.1.5]
  nodeName: n1
  conditions: {ready: true}
- addresses: [10.244.2.5]
  nodeName: n2
  conditions: {ready: false, serving: true, terminating: true}
";
    let node = "apiVersion: v1
kind: Node
metadata:
  name: n1
spec:
  podCIDRs: [10.244.1.0/24]
status:
  addresses:
  - {type: InternalIP, address: 172.16.0.11}
  - {type: InternalIP, address: 'fd00:16::11'}
";
    let endpoints = "apiVersion: v1
kind: Endpoints
metadata:
  name: web
  namespace: default
subsets:
- addresses:
  - ip: 10.244.1.6
    nodeName: n1
  ports:
  - name: http
    port: 8080
";
    let json = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dns","namespace":"kube-system"},"spec":{"clusterIP":"10.96.0.53","ports":[{"name":"dns","port":53,"protocol":"UDP"}]}}"#;
    let bad_port = service.replace("port: 80", "port: 70000");
    // What `kubectl get -o yaml` and `-o json` print: a List, which the importer streams
    // item by item (YAML cut at the items' dashes, JSON read by its own reader).
    let as_item = |text: &str| {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let rest: String = lines.map(|l| format!("\n  {l}")).collect();
        format!("- {first}{rest}\n")
    };
    let yaml_list = format!(
        "apiVersion: v1\nitems:\n{}{}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        as_item(service),
        as_item(slice)
    );
    let slice_json = r#"{"addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1",
        "endpoints": [{"addresses": ["10.244.1.9"], "conditions": {"ready": true}, "nodeName": "n1"}],
        "kind": "EndpointSlice", "metadata": {"labels": {"kubernetes.io/service-name": "dns"},
        "managedFields": [{"fieldsV1": {"f:ports": {}}, "manager": "kube-controller-manager"}],
        "name": "dns-x1", "namespace": "kube-system"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}"#;
    let json_list = format!(
        "{{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {json},\n        {slice_json}\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {{\"resourceVersion\": \"\"}}\n}}\n"
    );
    let texts: Vec<(&str, String)> = vec![
        ("miempresa-cluster.yaml", cluster.clone()),
        ("miempresa-kube-proxy.yaml", proxy.clone()),
        ("miempresa-both.yaml", format!("{cluster}\n---\n{proxy}")),
        ("service-nodeport-dual.yaml", service.into()),
        ("endpointslice.yaml", slice.into()),
        ("node.yaml", node.into()),
        ("legacy-endpoints.yaml", endpoints.into()),
        (
            "service-slice-node.yaml",
            format!("{service}---\n{slice}---\n{node}---\n{proxy}"),
        ),
        ("service.json", json.into()),
        ("bad-port.yaml", bad_port),
        ("kubectl-list.yaml", yaml_list),
        ("kubectl-list.json", json_list),
        (
            "alias.yaml",
            "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n".into(),
        ),
    ];
    texts
        .into_iter()
        .map(|(name, text)| Seed {
            target: "manifest",
            name: name.into(),
            bytes: text.into_bytes(),
        })
        .collect()
}

/// A little-endian microsecond pcap of `link` with `packets` (one a second).
pub fn pcap(link: u32, nanos: bool, big_endian: bool, packets: &[Vec<u8>]) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(65535));
    out.extend_from_slice(&u32b(link));
    for (i, p) in packets.iter().enumerate() {
        out.extend_from_slice(&u32b(1_700_000_000 + i as u32));
        out.extend_from_slice(&u32b(500));
        out.extend_from_slice(&u32b(p.len() as u32));
        out.extend_from_slice(&u32b(p.len() as u32));
        out.extend_from_slice(p);
    }
    out
}

/// A little-endian pcapng: section header, one interface of `link`, enhanced packet blocks.
pub fn pcapng(link: u16, packets: &[Vec<u8>]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len - 12 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    // if_tsresol = 9 (nanoseconds), then end of options.
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    for (i, p) in packets.iter().enumerate() {
        let ts = (1_700_000_000u64 + i as u64) * 1_000_000_000;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(p.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(p.len() as u32).to_le_bytes());
        epb.extend_from_slice(p);
        block(&mut out, 6, &epb);
    }
    out
}

fn ethernet(ip: &[u8], vlan: bool) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        out.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    }
    let ethertype: u16 = if ip[0] >> 4 == 6 { 0x86DD } else { 0x0800 };
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(ip);
    out
}

/// Seeds for `replay`: tiny pcap and pcapng files.
pub fn replay() -> Vec<Seed> {
    let syn = tcp("192.168.0.200:51000", "192.168.0.101:30880", SYN);
    let syn_out = translated(DUAL, FWD, &syn);
    let conversation = vec![
        syn.clone(),
        reply(&syn_out, SYN | ACK),
        tcp("192.168.0.200:51000", "192.168.0.101:30880", ACK),
        udp("10.10.0.50:33000", "10.10.1.10:53"),
        tcp("10.10.0.50:40000", "10.10.1.101:80", SYN),
        tcp("[fd00:10::50]:40000", "[fd00:10:1::120]:7000", SYN),
        udp("10.10.0.50:1000", "10.10.0.77:2000"),
        vec![0x45, 0, 0],
    ];
    let arp = vec![0xff; 42];
    let mut ether: Vec<Vec<u8>> = conversation.iter().map(|p| ethernet(p, false)).collect();
    ether.push(ethernet(&syn, true));
    ether.push({
        let mut frame = arp;
        frame[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        frame
    });
    let sll: Vec<Vec<u8>> = conversation
        .iter()
        .map(|p| {
            let mut out = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            let proto: u16 = if p.first().map(|b| b >> 4) == Some(6) {
                0x86DD
            } else {
                0x0800
            };
            out.extend_from_slice(&proto.to_be_bytes());
            out.extend_from_slice(p);
            out
        })
        .collect();
    let files = vec![
        ("raw-ip.pcap", pcap(101, false, false, &conversation)),
        (
            "raw-ip-nanos-big-endian.pcap",
            pcap(101, true, true, &conversation),
        ),
        (
            "raw-ipv4-linktype.pcap",
            pcap(228, false, false, &conversation),
        ),
        ("ethernet-vlan.pcap", pcap(1, false, false, &ether)),
        ("linux-sll.pcap", pcap(113, false, false, &sll)),
        ("ethernet.pcapng", pcapng(1, &ether)),
        ("raw-ip.pcapng", pcapng(101, &conversation)),
        ("truncated.pcap", {
            let mut p = pcap(101, false, false, &conversation);
            p.truncate(p.len() - 5);
            p
        }),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| Seed {
            target: "replay",
            name: name.into(),
            bytes,
        })
        .collect()
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut out = packet_fixed();
    out.extend(packet_cluster());
    out.extend(manifest());
    out.extend(replay());
    out
}
