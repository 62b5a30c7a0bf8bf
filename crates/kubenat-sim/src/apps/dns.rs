//! DNS: the zones (the cluster's, built from the Services, and a static outside one), a
//! server app on UDP port 53, and the stub resolver pods and PCs use, with the search list
//! and `ndots` of a pod's `/etc/resolv.conf`.
//!
//! Wire format by `simple-dns` (small, no I/O or async runtime, parses and writes A, AAAA
//! and SRV records).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kubenat_core::{Protocol, Service};
use simple_dns::rdata::{A, AAAA, RData, SRV};
use simple_dns::{
    CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;

use super::{App, Ctx};
use crate::clock::Instant;
use crate::journey::{FlowView, RequestId, Step};

/// TTL of every answer, as CoreDNS's kubernetes plugin defaults to.
const TTL: u32 = 5;

/// Names a DNS server answers for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Zone {
    /// Lower-case name -> addresses.
    pub addresses: BTreeMap<String, Vec<IpAddr>>,
    /// Lower-case `_port._proto.name` -> (port, target name).
    pub services: BTreeMap<String, (u16, String)>,
    /// The suffix this server is authoritative for (`cluster.local`); names outside it are
    /// refused (this simulator's cluster DNS forwards nowhere). Empty: answers for anything.
    pub domain: String,
}

impl Zone {
    /// The cluster zone CoreDNS's kubernetes plugin serves: `<svc>.<ns>.svc.<domain>` with
    /// the Service's cluster IPs, and `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV records
    /// for named ports.
    pub fn cluster(services: &[Service], domain: &str) -> Zone {
        let mut zone = Zone {
            domain: domain.to_ascii_lowercase(),
            ..Zone::default()
        };
        for s in services {
            let fqdn = format!("{}.{}.svc.{}", s.name.name, s.name.namespace, zone.domain)
                .to_ascii_lowercase();
            zone.addresses
                .entry(fqdn.clone())
                .or_default()
                .extend(s.cluster_ips.iter().copied());
            for p in s.ports.iter().filter(|p| !p.name.is_empty()) {
                let proto = match p.protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                    Protocol::Sctp => "sctp",
                };
                zone.services.insert(
                    format!("_{}._{proto}.{fqdn}", p.name).to_ascii_lowercase(),
                    (p.port, fqdn.clone()),
                );
            }
        }
        zone
    }

    /// A zone of plain A records (the company's outside DNS).
    pub fn records<'a>(records: impl IntoIterator<Item = (&'a str, Ipv4Addr)>) -> Zone {
        let mut zone = Zone::default();
        for (name, ip) in records {
            zone.addresses
                .entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default()
                .push(IpAddr::V4(ip));
        }
        zone
    }

    fn authoritative_for(&self, name: &str) -> bool {
        self.domain.is_empty()
            || name == self.domain
            || name.ends_with(&format!(".{}", self.domain))
    }
}

/// What [`answer`] did, for the journey.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    pub id: u16,
    pub name: String,
    pub qtype: String,
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`, `FORMERR`.
    pub rcode: &'static str,
    /// Answer records as text (`10.10.1.101`, `0 100 3307 mariadb-service...`).
    pub answers: Vec<String>,
}

fn qtype_name(qtype: QTYPE) -> String {
    match qtype {
        QTYPE::TYPE(TYPE::A) => "A".into(),
        QTYPE::TYPE(TYPE::AAAA) => "AAAA".into(),
        QTYPE::TYPE(TYPE::SRV) => "SRV".into(),
        other => format!("{other:?}"),
    }
}

/// The reply to a query, and what it said. `None` for bytes that are not a DNS query.
pub fn answer(zone: &Zone, query: &[u8]) -> Option<(Vec<u8>, Answered)> {
    let packet = Packet::parse(query).ok()?;
    if packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let mut reply = Packet::new_reply(packet.id());
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    let Some(question) = packet.questions.first() else {
        *reply.rcode_mut() = RCODE::FormatError;
        let done = Answered {
            id: packet.id(),
            name: String::new(),
            qtype: String::new(),
            rcode: "FORMERR",
            answers: Vec::new(),
        };
        return Some((reply.build_bytes_vec().ok()?, done));
    };
    let name = question
        .qname
        .to_string()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let qtype = question.qtype;
    reply.questions.push(question.clone());
    let mut answers = Vec::new();
    let rcode = if !zone.authoritative_for(&name) {
        *reply.rcode_mut() = RCODE::Refused;
        "REFUSED"
    } else {
        let owner = Name::new_unchecked(&name);
        let addresses = zone.addresses.get(&name);
        let srv = zone.services.get(&name);
        match qtype {
            QTYPE::TYPE(TYPE::A) | QTYPE::TYPE(TYPE::AAAA) => {
                for ip in addresses.into_iter().flatten() {
                    let rdata = match (qtype, ip) {
                        (QTYPE::TYPE(TYPE::A), IpAddr::V4(v4)) => RData::A(A::from(*v4)),
                        (QTYPE::TYPE(TYPE::AAAA), IpAddr::V6(v6)) => RData::AAAA(AAAA::from(*v6)),
                        _ => continue,
                    };
                    answers.push(ip.to_string());
                    reply
                        .answers
                        .push(ResourceRecord::new(owner.clone(), CLASS::IN, TTL, rdata));
                }
            }
            QTYPE::TYPE(TYPE::SRV) => {
                if let Some((port, target)) = srv {
                    answers.push(format!("0 100 {port} {target}"));
                    reply.answers.push(ResourceRecord::new(
                        owner.clone(),
                        CLASS::IN,
                        TTL,
                        RData::SRV(SRV {
                            priority: 0,
                            weight: 100,
                            port: *port,
                            target: Name::new_unchecked(target),
                        }),
                    ));
                    for ip in zone.addresses.get(target).into_iter().flatten() {
                        if let IpAddr::V4(v4) = ip {
                            reply.additional_records.push(ResourceRecord::new(
                                Name::new_unchecked(target),
                                CLASS::IN,
                                TTL,
                                RData::A(A::from(*v4)),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        if addresses.is_none() && srv.is_none() {
            *reply.rcode_mut() = RCODE::NameError;
            "NXDOMAIN"
        } else {
            "NOERROR"
        }
    };
    let bytes = reply.build_bytes_vec().ok()?;
    drop(reply);
    let done = Answered {
        id: packet.id(),
        name,
        qtype: qtype_name(qtype),
        rcode,
        answers,
    };
    Some((bytes, done))
}

/// A query for `name` of type A.
pub fn query_a(id: u16, name: &str) -> Vec<u8> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet.build_bytes_vec().expect("a query builds")
}

/// Reads a reply: its id, rcode and first A record.
pub fn read_reply(bytes: &[u8]) -> Option<(u16, RCODE, Option<Ipv4Addr>)> {
    let packet = Packet::parse(bytes).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let a = packet.answers.iter().find_map(|rr| match &rr.rdata {
        RData::A(a) => Some(Ipv4Addr::from(a.address)),
        _ => None,
    });
    Some((packet.id(), packet.rcode(), a))
}

fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 8192]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 8192]),
    )
}

/// A DNS server on UDP port 53.
pub struct DnsServer {
    /// Shared by every replica: the cluster zone of 10,000 Services is about 3 MB.
    zone: Arc<Zone>,
    socket: Option<SocketHandle>,
}

impl DnsServer {
    /// A server answering from `zone` (a `Zone` or an `Arc<Zone>` its replicas share).
    pub fn new(zone: impl Into<Arc<Zone>>) -> DnsServer {
        DnsServer {
            zone: zone.into(),
            socket: None,
        }
    }
}

impl App for DnsServer {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        let handle = *self.socket.get_or_insert_with(|| {
            let mut socket = udp_socket();
            socket.bind(53).expect("port 53 is free");
            cx.sockets.add(socket)
        });
        loop {
            let socket = cx.sockets.get_mut::<udp::Socket>(handle);
            let Ok((query, meta)) = socket.recv() else {
                break;
            };
            let query = query.to_vec();
            let local = SocketAddr::new(
                meta.local_address.map_or(IpAddr::V4(cx.ip), IpAddr::from),
                53,
            );
            let remote = SocketAddr::from(meta.endpoint);
            let Some((reply, done)) = answer(&self.zone, &query) else {
                continue;
            };
            let mut out = udp::UdpMetadata::from(meta.endpoint);
            out.local_address = meta.local_address;
            let _ = cx
                .sockets
                .get_mut::<udp::Socket>(handle)
                .send_slice(&reply, out);
            let request = cx.request_of(&FlowView::udp(remote, local));
            cx.record(
                request,
                Step::DnsAnswer {
                    name: done.name,
                    rcode: done.rcode.into(),
                    answers: done.answers,
                },
            );
        }
        None
    }
}

/// A stub resolver's `/etc/resolv.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolverConfig {
    pub server: SocketAddr,
    /// `search` domains, tried in order.
    pub search: Vec<String>,
    /// `options ndots:N`: names with fewer dots try the search list first.
    pub ndots: usize,
    /// Per try (`options timeout`).
    pub timeout: Duration,
    /// Tries per name (`options attempts`).
    pub attempts: u32,
}

impl ResolverConfig {
    /// What the kubelet writes for a pod in `namespace` (ClusterFirst DNS policy).
    pub fn pod(namespace: &str, cluster_dns: Ipv4Addr, domain: &str) -> ResolverConfig {
        ResolverConfig {
            server: SocketAddr::new(IpAddr::V4(cluster_dns), 53),
            search: vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ],
            ndots: 5,
            timeout: Duration::from_secs(1),
            attempts: 2,
        }
    }

    /// A plain client with no search list.
    pub fn plain(server: Ipv4Addr) -> ResolverConfig {
        ResolverConfig {
            server: SocketAddr::new(IpAddr::V4(server), 53),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(1),
            attempts: 2,
        }
    }

    /// The names tried for `name`, in order (glibc's rules).
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let expanded = self.search.iter().map(|d| format!("{name}.{d}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_string()).chain(expanded).collect()
        } else {
            expanded.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// The result of a resolution: the name that answered and its address.
pub type Resolution = Result<(String, Ipv4Addr), String>;

/// One resolution in progress: a fresh UDP socket (random source port, as glibc does) per
/// query, the search list walked on NXDOMAIN or an empty answer, retries on timeout.
pub struct Resolver {
    config: ResolverConfig,
    name: String,
    request: Option<RequestId>,
    candidates: Vec<String>,
    index: usize,
    attempt: u32,
    queries: u32,
    socket: Option<SocketHandle>,
    id: u16,
    deadline: Instant,
}

impl Resolver {
    /// Starts resolving `name` for `request`.
    pub fn start(
        config: &ResolverConfig,
        name: &str,
        request: Option<RequestId>,
        cx: &mut Ctx<'_>,
    ) -> Resolver {
        let mut r = Resolver {
            candidates: config.candidates(name),
            config: config.clone(),
            name: name.to_string(),
            request,
            index: 0,
            attempt: 0,
            queries: 0,
            socket: None,
            id: 0,
            deadline: cx.now,
        };
        r.send(cx);
        r
    }

    fn close(&mut self, cx: &mut Ctx<'_>) {
        if let Some(h) = self.socket.take() {
            cx.sockets.remove(h);
        }
    }

    fn send(&mut self, cx: &mut Ctx<'_>) {
        self.close(cx);
        let candidate = self.candidates[self.index].clone();
        let port = cx.ports.next_port();
        let mut socket = udp_socket();
        socket.bind(port).expect("ephemeral port binds");
        self.id = cx.rng.next_u64() as u16;
        let query = query_a(self.id, &candidate);
        let _ = socket.send_slice(&query, self.config.server);
        self.socket = Some(cx.sockets.add(socket));
        self.deadline = cx.now + self.config.timeout;
        self.queries += 1;
        let local = SocketAddr::new(IpAddr::V4(cx.ip), port);
        if let Some(id) = self.request {
            cx.journal
                .register(FlowView::udp(local, self.config.server), id);
        }
        cx.record(
            self.request,
            Step::DnsQuery {
                name: candidate,
                qtype: "A".into(),
                server: self.config.server,
            },
        );
    }

    fn finish(&mut self, cx: &mut Ctx<'_>, result: Resolution) -> Option<Resolution> {
        self.close(cx);
        let (fqdn, address) = match &result {
            Ok((fqdn, ip)) => (Some(fqdn.clone()), Some(*ip)),
            Err(_) => (None, None),
        };
        cx.record(
            self.request,
            Step::Resolved {
                name: self.name.clone(),
                fqdn,
                address,
                queries: self.queries,
            },
        );
        Some(result)
    }

    /// Advances; `Some` once the resolution is over.
    pub fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Resolution> {
        let handle = self.socket?;
        while let Ok((bytes, meta)) = cx.sockets.get_mut::<udp::Socket>(handle).recv() {
            if SocketAddr::from(meta.endpoint) != self.config.server {
                continue;
            }
            let Some((id, rcode, a)) = read_reply(bytes) else {
                continue;
            };
            if id != self.id {
                continue;
            }
            if let (RCODE::NoError, Some(ip)) = (rcode, a) {
                let fqdn = self.candidates[self.index].clone();
                return self.finish(cx, Ok((fqdn, ip)));
            }
            return self.next_candidate(cx, format!("{rcode:?}"));
        }
        if cx.now >= self.deadline {
            self.attempt += 1;
            if self.attempt < self.config.attempts {
                self.send(cx);
                return None;
            }
            return self.next_candidate(cx, "timed out".into());
        }
        None
    }

    fn next_candidate(&mut self, cx: &mut Ctx<'_>, why: String) -> Option<Resolution> {
        self.index += 1;
        self.attempt = 0;
        if self.index < self.candidates.len() {
            self.send(cx);
            None
        } else {
            let name = self.name.clone();
            self.finish(cx, Err(format!("cannot resolve {name}: {why}")))
        }
    }

    /// When a retry is due.
    pub fn wake(&self) -> Option<Instant> {
        self.socket.map(|_| self.deadline)
    }
}
