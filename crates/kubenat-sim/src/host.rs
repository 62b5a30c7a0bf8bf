//! A host: one smoltcp interface (`Medium::Ip`) on an in-memory device, its sockets, and
//! the application that uses them. Pods and LAN machines are hosts; nodes are routers
//! ([`crate::node`]).

use std::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::Socket;
use smoltcp::socket::tcp::State;
use smoltcp::wire::{HardwareAddress, IpCidr};

use crate::apps::tcp::Listening;
use crate::apps::{App, Ctx, PortAllocator, earliest};
use crate::clock::{Instant, Rng, TICK, from_smoltcp, to_smoltcp};
use crate::device::SimDevice;
use crate::journey::Journal;

/// The MTU of every device (Ethernet's).
pub const MTU: usize = 1500;

/// One network stack with its application.
pub struct Host {
    pub name: String,
    pub ip: Ipv4Addr,
    pub iface: Interface,
    pub device: SimDevice,
    pub sockets: SocketSet<'static>,
    pub app: Box<dyn App>,
    pub ports: PortAllocator,
    pub rng: Rng,
    retired: Vec<SocketHandle>,
    listening: Listening,
    /// The wake-up armed in the event queue.
    pub scheduled: Option<Instant>,
    /// False once the host is stopped (a dead pod): it sends nothing and takes nothing.
    pub alive: bool,
}

impl Host {
    /// A host with address `ip/prefix` and, if given, a default route via `gateway`.
    pub fn new(
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
        app: Box<dyn App>,
        mut rng: Rng,
    ) -> Host {
        let mut device = SimDevice::new(MTU);
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = rng.next_u64();
        let mut iface = Interface::new(config, &mut device, to_smoltcp(Instant::ZERO));
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(ip.into(), prefix))
                .expect("room for an address");
        });
        if let Some(gw) = gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .expect("room for a route");
        }
        Host {
            name: name.to_string(),
            ip,
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            app,
            ports: PortAllocator::new(&mut rng),
            rng,
            retired: Vec::new(),
            listening: Listening::default(),
            scheduled: None,
            alive: true,
        }
    }

    /// Runs the stack and the app at `now`: returns the packets sent and when to come back.
    pub fn service(
        &mut self,
        now: Instant,
        journal: &mut Journal,
    ) -> (Vec<Vec<u8>>, Option<Instant>) {
        let t = to_smoltcp(now);
        let mut app_wake = None;
        for packet in self.device.received() {
            self.listening.prepare(packet, &mut self.sockets);
        }
        for _ in 0..16 {
            self.iface.poll(t, &mut self.device, &mut self.sockets);
            let mut cx = Ctx {
                now,
                host: &self.name,
                ip: self.ip,
                iface: &mut self.iface,
                sockets: &mut self.sockets,
                journal,
                rng: &mut self.rng,
                ports: &mut self.ports,
                retired: &mut self.retired,
                listening: &mut self.listening,
            };
            app_wake = self.app.poll(&mut cx);
            if app_wake.is_none_or(|w| w > now) {
                break;
            }
        }
        self.iface.poll(t, &mut self.device, &mut self.sockets);
        self.reap();
        let stack_wake = self.iface.poll_at(t, &self.sockets).map(from_smoltcp);
        let wake = earliest(app_wake, stack_wake).map(|w| w.max(now + TICK));
        (self.device.take_tx(), wake)
    }

    /// Removes retired sockets once they are closed or in TIME-WAIT: such a socket sends and
    /// takes nothing more, and where Linux keeps a small timewait record, smoltcp would keep
    /// both buffers for the whole wait (1.5 GB at 50,000 requests in a generated cluster).
    fn reap(&mut self) {
        let sockets = &mut self.sockets;
        self.retired.retain(|&h| {
            let closed = match sockets.get_mut::<Socket>(h) {
                Socket::Tcp(s) => matches!(s.state(), State::Closed | State::TimeWait),
                _ => true,
            };
            if closed {
                sockets.remove(h);
            }
            !closed
        });
    }
}
