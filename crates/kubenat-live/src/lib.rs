//! `kubenat run`: a node's engine on the live traffic of a Linux network namespace.
//!
//! Policy routing steers every IPv4 packet arriving on the node's interfaces, and every
//! packet the node sends to a Service address, into a TUN device (see [`routing`]). The
//! packet loop reads them in batches, runs each through [`Engine::process_path`] (DNAT and
//! reverse NAT, then masquerade), and writes back what passes, rewritten, or the ICMP port
//! unreachable for what is rejected; the kernel routes what comes back out of the TUN as
//! usual, neighbour resolution included. The namespace needs no NAT rules of its own.
//!
//! Every change to the host is journaled before it is made and undone on exit, on an error
//! and on a panic; [`cleanup`] undoes what a run killed outright left behind.
//!
//! IPv6 is steered too when the cluster has IPv6 addresses (a Service's or the node's),
//! except ICMPv6, which carries neighbour discovery: ICMPv6 errors about translated
//! connections pass untranslated.

mod batch_io;
mod datapath;
mod host;
mod ip;
mod journal;
mod link_watch;
pub mod routing;
mod signals;
mod stats;
mod sysctl;
mod tun;

use std::fmt;

use kubenat_core::{ClusterState, Engine, Instant};

pub use datapath::Totals;
pub use signals::Signals;

/// What to take over.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The interfaces whose arriving traffic goes through kubenat; empty: all but lo.
    pub interfaces: Vec<String>,
    /// Print the counters this often (they are printed on SIGUSR1 in any case).
    pub stats_every: Option<std::time::Duration>,
}

/// Where a run is attached, for the `ready` line.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The TUN device the traffic goes through.
    pub tun: String,
    /// The interfaces whose arriving traffic is steered into it.
    pub interfaces: Vec<String>,
}

/// Why a run could not start, or stopped.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error(e.to_string())
    }
}

/// Takes over the Service NAT of this network namespace for `state`'s node until `signals`
/// delivers SIGINT or SIGTERM, then restores the namespace. `ready` is called once packets
/// go through kubenat. On SIGHUP, `reload` gives the cluster as it is now (the `--cluster`
/// files read again): what changed is applied to the running engine as updates, so
/// established connections keep their endpoints; an error keeps the rules as they were.
/// Block the signals ([`Signals::block`]) before anything else starts a thread.
pub fn run(
    state: ClusterState,
    options: &Options,
    signals: &Signals,
    ready: impl FnOnce(&Attachment),
    mut reload: impl FnMut() -> Result<ClusterState, String>,
) -> Result<Totals, Error> {
    need_root()?;
    let services = routing::service_destinations(&state);
    let ipv6 = routing::steers_ipv6(&services, &state.proxy.node_ips);
    let node_ports = routing::node_port_ranges(&state);
    let node_ips = state.proxy.node_ips.clone();
    let mut current = state.clone();
    let mut engine = Engine::from_state(state);
    let steering = host::Steering {
        services: &services,
        node_ips: &node_ips,
        node_ports: &node_ports,
        ipv6,
    };
    let mut attached = host::attach(&steering, &options.interfaces)
        .map_err(|e| Error(format!("attaching to the network namespace: {e}")))?;
    // Opened before `ready`: a device added once the caller hears it is not missed.
    let watch = match attached.steered.follows_new() {
        true => Some(
            link_watch::LinkWatch::open()
                .map_err(|e| Error(format!("watching the namespace's devices (netlink): {e}")))?,
        ),
        false => None,
    };
    // Those that came between listing the devices and opening the watch.
    steer_new_interfaces(&mut attached.steered);
    ready(&Attachment {
        tun: attached.tun.name().to_string(),
        interfaces: attached.steered.interfaces.clone(),
    });
    let mut steer_new = || steer_new_interfaces(&mut attached.steered);
    let start = std::time::Instant::now();
    let clock = || Instant::from_nanos(start.elapsed().as_nanos() as u64);
    let tun_name = attached.tun.name().to_string();
    let mut apply_reload = |engine: &mut Engine| match reload() {
        Ok(next) => {
            let applied = apply_changes(engine, &current, &next, &tun_name, ipv6);
            eprintln!("kubenat run: SIGHUP: {applied} changes applied");
            current = next;
        }
        Err(e) => eprintln!("kubenat run: SIGHUP: {e}; the rules stay as they were"),
    };
    let mut reporter = stats::Reporter::new(options.stats_every);
    let events = datapath::Events {
        signals,
        reload: &mut apply_reload,
        links: watch
            .as_ref()
            .map(|w| (w, &mut steer_new as &mut dyn FnMut())),
    };
    let totals = datapath::run(&mut engine, &attached.tun, events, clock, &mut reporter);
    let failures = attached.detach();
    let totals = totals.map_err(|e| Error(format!("packet loop: {e}")))?;
    if !failures.is_empty() {
        return Err(Error(format!(
            "restoring the network namespace: {}",
            failures.join("; ")
        )));
    }
    Ok(totals)
}

/// Steers the devices that appeared, saying so on stderr. An error is not fatal: a device
/// may be gone again before it could be steered, and the next change looks again.
fn steer_new_interfaces(steered: &mut host::Steered) {
    match steered.steer_new_interfaces() {
        Ok(new) if !new.is_empty() => eprintln!("kubenat run: steering {}", new.join(", ")),
        Ok(_) => {}
        Err(e) => eprintln!("kubenat run: steering new devices: {e}"),
    }
}

/// Applies the changes from `old` to `new` to the engine (its own control plane: every
/// update is taken), and routes the node's own packets to Service addresses that are new
/// into the TUN (routes to addresses that went stay: a packet to them crosses kubenat,
/// which lets it pass). Returns how many updates were applied.
fn apply_changes(
    engine: &mut Engine,
    old: &ClusterState,
    new: &ClusterState,
    tun: &str,
    ipv6: bool,
) -> usize {
    let mut applied = 0;
    for update in kubenat_core::Update::between(old, new) {
        if engine.update(update).is_ok() {
            applied += 1;
        }
    }
    let before = routing::service_destinations(old);
    let added: std::collections::BTreeSet<_> = routing::service_destinations(new)
        .difference(&before)
        .filter(|net| net.addr().is_ipv4() || ipv6)
        .copied()
        .collect();
    if !added.is_empty() {
        if let Err(e) = ip::batch(&routing::service_routes(tun, &added)) {
            eprintln!("kubenat run: SIGHUP: routing new Service addresses: {e}");
        }
    }
    applied
}

/// Undoes what a run that ended without restoring (killed, crashed) changed in this
/// network namespace. Idempotent: returns the number of changes undone, 0 when there were
/// none. The TUN device needs nothing: the kernel removes it with its routes when the run's
/// process ends.
pub fn cleanup() -> Result<usize, Error> {
    need_root()?;
    journal::recover().map_err(|e| Error(format!("cleaning up: {e}")))
}

fn need_root() -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error(
            "kubenat run changes the network namespace (a TUN device, routing rules, \
             sysctls): run it as root"
                .into(),
        ));
    }
    Ok(())
}
