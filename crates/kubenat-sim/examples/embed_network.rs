//! Embedding the simulator's pieces in a simulator of your own: your event loop and clock,
//! the fabric's wires, a node with its kubenat engine per Kubernetes node, smoltcp hosts
//! running apps (one of them yours). No `kubenat_sim::run`, no `Sim`.
//!
//! A pod on nodoa (WordPress's address in the notes) asks mariadb-service:3307 for the
//! blog's name. nodoa's engine DNATs the connection to the MariaDB pod on nodoc; the
//! pod network carries it over the LAN; MariaDB answers; the answer comes back through
//! nodoa's conntrack, which restores the Service address the app connected to.
//!
//! Run it with `cargo run -p kubenat-sim --example embed_network`.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use kubenat_core::{Engine, reference};
use kubenat_sim::apps::mariadb::{BLOGNAME_QUERY, MariaDb};
use kubenat_sim::apps::tcp::Stream;
use kubenat_sim::apps::{App, Ctx};
use kubenat_sim::clock::{Instant, Rng, millis};
use kubenat_sim::fabric::{Fabric, HostId, Port};
use kubenat_sim::host::Host;
use kubenat_sim::journey::Journal;
use kubenat_sim::node::KubeNode;
use kubenat_sim::queue::EventQueue;

/// Your own app: one query to the database Service, the answer handed out through `answer`.
struct AskTheDatabase {
    service: SocketAddr,
    stream: Option<Stream>,
    answer: Rc<RefCell<Option<String>>>,
}

impl App for AskTheDatabase {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let (mut stream, flow) = Stream::connect(cx, self.service).expect("connects");
                println!("{:>8.3} ms  client connects: {flow}", millis(cx.now));
                stream.send(format!("QUERY {BLOGNAME_QUERY}\n").as_bytes());
                self.stream.insert(stream)
            }
        };
        let progress = stream.pump(cx.sockets);
        if stream.peer_done(cx.sockets) && self.answer.borrow().is_none() {
            let reply = String::from_utf8_lossy(&stream.inbox).into_owned();
            *self.answer.borrow_mut() = Some(reply);
            cx.sockets
                .get_mut::<smoltcp::socket::tcp::Socket>(stream.handle)
                .close();
            cx.retire(stream.handle);
        }
        progress.then_some(cx.now)
    }
}

/// What your loop handles, in time order.
enum Event {
    Arrive { to: Port, packet: Vec<u8> },
    Wake(HostId),
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("literal address")
}

fn destination(packet: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19])
}

fn main() {
    let veth = Duration::from_micros(20);
    let mut fabric = Fabric::new(
        "192.168.0.0/16".parse().expect("literal"),
        "10.10.0.0/16".parse().expect("literal"),
        Duration::from_micros(200),
    );
    // Nodes with their engines, each compiled for its own node as its kube-proxy would.
    let mut nodes: Vec<KubeNode> = [("nodoa", "192.168.0.101"), ("nodoc", "192.168.0.103")]
        .into_iter()
        .map(|(name, address)| {
            let id = fabric.add_node(name, ip(address));
            KubeNode::new(
                id,
                name,
                ip(address),
                Engine::new(&reference::cluster(name)),
            )
        })
        .collect();
    let answer = Rc::new(RefCell::new(None));
    let client_app = AskTheDatabase {
        service: "10.10.1.101:3307".parse().expect("literal"),
        stream: None,
        answer: Rc::clone(&answer),
    };
    // Hosts in the fabric's order: host ids index this vector.
    let pods: [(&str, &str, usize, Box<dyn App>); 2] = [
        ("client", "10.10.0.102", 0, Box::new(client_app)),
        (
            "mariadb-0",
            "10.10.0.103",
            1,
            Box::new(MariaDb::new(3306, "Mi Empresa")),
        ),
    ];
    let mut rng = Rng::new(42);
    let mut hosts = Vec::new();
    for (name, address, node, app) in pods {
        let id = fabric.add_pod(name, ip(address), node, veth);
        assert_eq!(id, hosts.len());
        let gateway = Some(ip("169.254.1.1"));
        hosts.push(Host::new(name, ip(address), 32, gateway, app, rng.fork()));
    }

    let mut journal = Journal::default();
    let mut queue = EventQueue::default();
    for h in 0..hosts.len() {
        queue.push(Instant::ZERO, Event::Wake(h));
    }
    let limit = Instant::from_millis(100);
    while answer.borrow().is_none() {
        let Some((now, event)) = queue.pop().filter(|(at, _)| *at <= limit) else {
            break;
        };
        let (from, (sent, wake)) = match event {
            Event::Wake(h) => (h, hosts[h].service(now, &mut journal)),
            Event::Arrive {
                to: Port::Host(h),
                packet,
            } => {
                hosts[h].device.push_rx(packet);
                (h, hosts[h].service(now, &mut journal))
            }
            Event::Arrive {
                to: Port::Node(n),
                packet,
            } => {
                if let Some(out) = nodes[n].forward(packet, now, &fabric, &mut journal) {
                    println!(
                        "{:>8.3} ms  {} forwards to {} {} -> {}",
                        millis(now),
                        nodes[n].name,
                        fabric.port_name(out.to),
                        ip_pair(&out.packet).0,
                        ip_pair(&out.packet).1,
                    );
                    let latency = fabric.carry(out.link, out.packet.len());
                    queue.push(
                        now + latency,
                        Event::Arrive {
                            to: out.to,
                            packet: out.packet,
                        },
                    );
                }
                continue;
            }
        };
        for packet in sent {
            if let Some((to, link)) = fabric.from_host(from, destination(&packet)) {
                let latency = fabric.carry(link, packet.len());
                queue.push(now + latency, Event::Arrive { to, packet });
            }
        }
        if let Some(at) = wake {
            queue.push(at, Event::Wake(from));
        }
    }

    let answer = answer
        .borrow()
        .clone()
        .expect("the database answered within 100 ms");
    println!("client got {answer:?} from mariadb-service");
    assert_eq!(answer, "ROW Mi Empresa\nOK\n");
    for node in &nodes {
        let c = node.engine.counters();
        println!(
            "{}: {} translated, {} accepted, {} connections tracked",
            node.name,
            c.translated,
            c.accepted,
            node.engine.connections()
        );
    }
    // The DNAT and the reverse NAT both happened on nodoa, the client's node.
    assert!(nodes[0].engine.counters().translated >= 2);
    assert_eq!(nodes[1].engine.counters().translated, 0);
}

/// Source and destination of an IPv4 packet, for printing.
fn ip_pair(packet: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        destination(packet),
    )
}
