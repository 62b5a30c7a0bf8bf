//! Small real applications on smoltcp sockets. Each is an [`App`]: the host polls it after
//! its interface has moved packets, and the app reads and writes its sockets.

pub mod balancer;
pub mod dns;
pub mod http;
pub mod ingress;
pub mod mariadb;
pub mod pc;
pub mod tcp;
pub mod web;
pub mod wordpress;

use std::net::Ipv4Addr;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};

use crate::clock::{Instant, Rng};
use crate::journey::{FlowView, Journal, RequestId, Step};

/// What an application sees when polled.
pub struct Ctx<'a> {
    pub now: Instant,
    /// The host's name (pod name, `PC`, ...), as hops show it.
    pub host: &'a str,
    pub ip: Ipv4Addr,
    pub iface: &'a mut Interface,
    pub sockets: &'a mut SocketSet<'static>,
    pub journal: &'a mut Journal,
    pub rng: &'a mut Rng,
    pub ports: &'a mut PortAllocator,
    /// Sockets the app is done with; the host removes each once it is closed.
    pub retired: &'a mut Vec<SocketHandle>,
    /// The ports the host serves ([`tcp::Listener`]).
    pub listening: &'a mut tcp::Listening,
}

impl Ctx<'_> {
    /// Records a hop of request `id` at this host.
    pub fn record(&mut self, id: Option<RequestId>, step: Step) {
        self.journal.record(id, self.now, self.host, step);
    }

    /// The request a flow arriving here (or leaving from here) belongs to.
    pub fn request_of(&self, flow: &FlowView) -> Option<RequestId> {
        self.journal.request_of(flow)
    }

    /// Hands a socket back to the host.
    pub fn retire(&mut self, handle: SocketHandle) {
        if !self.retired.contains(&handle) {
            self.retired.push(handle);
        }
    }
}

/// An application. `poll` returns when it wants to be polled again without news from the
/// network: `Some(now)` (or earlier) after progress that may enable more, a future time
/// for a timer, `None` to wait for packets.
pub trait App {
    fn poll(&mut self, cx: &mut Ctx<'_>) -> Option<Instant>;
}

/// Ephemeral ports (49152-65535), handed out in turn from a random start, as Linux's
/// `ip_local_port_range` with a per-host random offset.
#[derive(Clone, Debug)]
pub struct PortAllocator {
    next: u16,
}

impl PortAllocator {
    pub const FIRST: u16 = 49152;

    /// A port sequence starting at a random place.
    pub fn new(rng: &mut Rng) -> PortAllocator {
        let span = u64::from(u16::MAX - Self::FIRST) + 1;
        PortAllocator {
            next: Self::FIRST + rng.below(span) as u16,
        }
    }

    /// The next port.
    pub fn next_port(&mut self) -> u16 {
        let port = self.next;
        self.next = if port == u16::MAX {
            Self::FIRST
        } else {
            port + 1
        };
        port
    }
}

/// The earlier of two wake-up times.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
