//! A Kubernetes node as a router: every packet it forwards goes through its kube-proxy
//! engine as on a Linux node: PREROUTING (DNAT, reverse NAT), the routing decision,
//! POSTROUTING (masquerade). Rejections are answered with the engine's ICMP reply.

use std::net::{IpAddr, Ipv4Addr};

use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::trace::Selection;
use kubenat_core::{Engine, Flow, Hook, PacketMeta, TraceStep, Verdict};

use crate::clock::Instant;
use crate::fabric::{Fabric, LinkId, NodeId, NodeRoute, Port};
use crate::journey::{FlowView, Journal, RequestId, Step};

/// One node: its name, LAN address and engine.
pub struct KubeNode {
    pub id: NodeId,
    pub name: String,
    pub ip: Ipv4Addr,
    pub engine: Engine,
    /// Packets with nowhere to go (see [`crate::report::NodeStats::unrouted`]).
    pub unrouted: u64,
    /// The engine timer armed in the event queue.
    pub scheduled: Option<Instant>,
}

/// A packet leaving a node.
pub struct Out {
    pub to: Port,
    pub link: LinkId,
    pub packet: Vec<u8>,
}

fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    (packet.len() >= 20 && packet[0] >> 4 == 4)
        .then(|| Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

/// Decrements the TTL as a router does, fixing the header checksum; false when it runs out.
fn decrement_ttl(packet: &mut [u8]) -> bool {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if packet[8] <= 1 || packet.len() < ihl {
        return false;
    }
    packet[8] -= 1;
    packet[10] = 0;
    packet[11] = 0;
    let mut sum = 0u32;
    for chunk in packet[..ihl].chunks(2) {
        sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !(sum as u16);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    true
}

fn selection(s: Selection, candidates: usize) -> String {
    match s {
        Selection::RoundRobin { index, of } => {
            format!("endpoint {} of {of}, round robin", index + 1)
        }
        Selection::Maglev { slot, of } => {
            format!("maglev slot {slot} of {of} ({candidates} endpoints)")
        }
        Selection::Affinity => "session affinity".into(),
        other => format!("{other:?}"),
    }
}

impl KubeNode {
    /// Node `id` of the fabric, forwarding through `engine`.
    pub fn new(id: NodeId, name: &str, ip: Ipv4Addr, engine: Engine) -> KubeNode {
        KubeNode {
            id,
            name: name.to_string(),
            ip,
            engine,
            unrouted: 0,
            scheduled: None,
        }
    }

    /// Forwards a packet that arrived at the node (from a pod or the LAN).
    pub fn forward(
        &mut self,
        mut packet: Vec<u8>,
        now: Instant,
        fabric: &Fabric,
        journal: &mut Journal,
    ) -> Option<Out> {
        let mut pre = Vec::new();
        // smoltcp computes every checksum, so they are verified as the kernel would; the
        // metadata carries the packet's connection on to POSTROUTING.
        let mut meta = PacketMeta::default();
        let first =
            self.engine
                .process_traced(Hook::Prerouting, &mut packet, &mut meta, now, &mut pre);
        let before = pre.iter().find_map(|s| match s {
            TraceStep::Received { flow, .. } => Some(FlowView::from(*flow)),
            _ => None,
        });
        let request = before.and_then(|f| journal.request_of(&f));
        match first {
            Verdict::Drop(reason) => {
                self.verdict(journal, request, now, before, format!("dropped ({reason})"));
                return None;
            }
            Verdict::Reject(reason) => {
                self.verdict(
                    journal,
                    request,
                    now,
                    before,
                    format!("rejected ({reason})"),
                );
                let mut reply = vec![0; MAX_REPLY_LEN];
                let len = self.engine.write_reject_reply(&packet, &mut reply).ok()?;
                reply.truncate(len);
                let dst = destination(&reply)?;
                return self.route_out(reply, dst, fabric);
            }
            Verdict::Accept | Verdict::Translated(_) => {}
            other => {
                // A verdict this simulator does not know yet: the packet goes no further.
                let text = format!("stopped ({other:?})");
                self.verdict(journal, request, now, before, text);
                return None;
            }
        }
        let dst = destination(&packet)?;
        let route = fabric.from_node(self.id, dst);
        if matches!(route, NodeRoute::Local | NodeRoute::Unreachable) {
            self.unrouted += 1;
            self.verdict(
                journal,
                request,
                now,
                before,
                format!("not forwarded: {} is {}", dst, fabric.describe(route)),
            );
            return None;
        }
        if !decrement_ttl(&mut packet) {
            self.verdict(journal, request, now, before, "TTL exceeded".into());
            return None;
        }
        let second = self
            .engine
            .process_with(Hook::Postrouting, &mut packet, &mut meta, now);
        match second {
            Verdict::Drop(reason) => {
                self.verdict(
                    journal,
                    request,
                    now,
                    before,
                    format!("dropped at POSTROUTING ({reason})"),
                );
                return None;
            }
            Verdict::Reject(reason) => {
                self.verdict(
                    journal,
                    request,
                    now,
                    before,
                    format!("rejected at POSTROUTING ({reason})"),
                );
                return None;
            }
            Verdict::Accept | Verdict::Translated(_) => {}
            other => {
                // A verdict this simulator does not know yet: the packet goes no further.
                let text = format!("stopped at POSTROUTING ({other:?})");
                self.verdict(journal, request, now, before, text);
                return None;
            }
        }
        let after = match (second, first) {
            (Verdict::Translated(_), _) | (_, Verdict::Translated(_)) => {
                Flow::of_packet(&packet).map(FlowView::from)
            }
            _ => before,
        };
        if let (Some(before), Some(after)) = (before, after)
            && pre
                .iter()
                .any(|s| matches!(s, TraceStep::ConntrackCreated { .. }))
        {
            if let Some(id) = request {
                journal.register(after, id);
            }
            let (mut service, mut frontend, mut endpoint, mut chosen, mut masquerade) =
                (None, None, None, None, None);
            for s in &pre {
                match s {
                    TraceStep::ServiceMatched {
                        service: name,
                        frontend: how,
                    } => {
                        service = Some(name.to_string());
                        frontend = Some(frontend_name(how));
                    }
                    TraceStep::EndpointChosen {
                        endpoint: e,
                        selection: sel,
                        candidates,
                        ..
                    } => {
                        endpoint = Some(*e);
                        chosen = Some(selection(*sel, *candidates));
                    }
                    TraceStep::Masquerade { reason } => masquerade = Some(reason.to_string()),
                    _ => {}
                }
            }
            let step = Step::Node {
                node: self.name.clone(),
                before,
                after,
                service,
                frontend,
                endpoint,
                selection: chosen,
                masquerade,
                next: fabric.describe(route),
            };
            journal.record(request, now, &self.name, step);
        }
        let (to, link) = match route {
            NodeRoute::Pod { host, link } => (Port::Host(host), link),
            NodeRoute::ViaNode { node, link } => (Port::Node(node), link),
            NodeRoute::Lan { to, link } => (to, link),
            NodeRoute::Local | NodeRoute::Unreachable => unreachable!("handled above"),
        };
        Some(Out { to, link, packet })
    }

    /// A packet the node itself sends (its ICMP replies): routed, not translated.
    fn route_out(&mut self, packet: Vec<u8>, dst: Ipv4Addr, fabric: &Fabric) -> Option<Out> {
        let (to, link) = match fabric.from_node(self.id, dst) {
            NodeRoute::Pod { host, link } => (Port::Host(host), link),
            NodeRoute::ViaNode { node, link } => (Port::Node(node), link),
            NodeRoute::Lan { to, link } => (to, link),
            NodeRoute::Local | NodeRoute::Unreachable => {
                self.unrouted += 1;
                return None;
            }
        };
        Some(Out { to, link, packet })
    }

    fn verdict(
        &self,
        journal: &mut Journal,
        request: Option<RequestId>,
        now: Instant,
        flow: Option<FlowView>,
        verdict: String,
    ) {
        if let (Some(_), Some(flow)) = (request, flow) {
            journal.record(
                request,
                now,
                &self.name,
                Step::NodeVerdict {
                    node: self.name.clone(),
                    flow,
                    verdict,
                },
            );
        }
    }

    /// The node's LAN address as an `IpAddr`.
    pub fn address(&self) -> IpAddr {
        IpAddr::V4(self.ip)
    }
}

fn frontend_name(f: &kubenat_core::tables::Frontend) -> String {
    use kubenat_core::tables::Frontend;
    match f {
        Frontend::ClusterIp => "cluster IP",
        Frontend::ExternalIp => "external IP",
        Frontend::LoadBalancerIp => "load-balancer IP",
        Frontend::NodePort => "node port",
    }
    .to_string()
}
