//! # kubenat-core
//!
//! One node's Kubernetes service data plane, as kube-proxy programs it into netfilter, in
//! userspace and without I/O: [`compile()`] turns Services, EndpointSlices, Nodes and the
//! proxy settings ([`ClusterState`]) into hash tables; an [`Engine`] then rewrites raw IP
//! packets in place (DNAT to an endpoint, conntrack with reverse NAT, masquerade,
//! REJECT/DROP with a reason) and returns a [`Verdict`].
//!
//! The engine takes time as an argument ([`Instant`]) and never reads a clock, opens a socket
//! or allocates per packet, so the same engine runs under a pcap replay, a simulator, a
//! benchmark or someone else's event loop. See `docs/architecture.md` in the repository for
//! the pipeline and `examples/embed.rs` for a complete loop.
//!
//! Where to start:
//!
//! - [`ClusterState`]: the input, Kubernetes objects ([`Service`], [`EndpointSlice`],
//!   [`Node`]) and kube-proxy settings ([`ProxyConfig`]), plain data at the crate root
//!   ([`IpNet`] is re-exported from the `ipnet` crate); with the `reference` feature,
//!   `reference::cluster` builds a small complete one.
//! - [`Engine`]: the packet path; its documentation shows the embedding loop.
//! - [`ControlPlane`]: the cluster compiled once and published as immutable snapshots
//!   ([`tables::ClusterTables`]) that any number of engines follow
//!   ([`Engine::follow`]); [`Update`]s are incremental changes to it (or to an engine's
//!   own, with [`Engine::update`]).
//! - [`Verdict`], [`DropReason`], [`RejectReason`], [`Counters`]: what happened and why;
//!   [`trace`] records every decision for one packet.
//! - [`tables`], [`conntrack`], [`maglev`], [`categorize`], [`checksum`], [`reject`]: the
//!   building blocks, public for tools and tests.
//!
//! ## Building packets
//!
//! The engine takes raw IPv4 or IPv6 packets with no link header and never builds them.
//! Build test packets with [`etherparse`], re-exported here so its version is the engine's
//! (`kubenat_core::etherparse::PacketBuilder`), and check the rewritten ones with it too:
//! it computes and verifies every checksum. `examples/packets.rs` builds TCP, UDP and
//! rejected packets and checks what the engine does to each
//! (`cargo run -p kubenat-core --example packets`).
//!
//! ```
//! use kubenat_core::{Engine, Flow, Path, Instant, Verdict, reference};
//!
//! // The kube-proxy of node "nodob" in the reference cluster.
//! let mut engine = Engine::new(&reference::cluster("nodob"));
//! // An outside PC (192.168.0.200) opens a TCP connection to nginx's NodePort on nodob.
//! let mut syn = Vec::new();
//! kubenat_core::etherparse::PacketBuilder::ipv4([192, 168, 0, 200], [192, 168, 0, 102], 64)
//!     .tcp(50000, 30880, 1, 64240)
//!     .syn()
//!     .write(&mut syn, &[])
//!     .unwrap();
//! // PREROUTING DNATs it to the nginx pod, POSTROUTING masquerades it to nodob's address
//! // (externalTrafficPolicy Cluster), all rewritten in place.
//! let verdict = engine.process_path(Path::Forward, &mut syn, Instant::ZERO);
//! assert!(matches!(verdict, Verdict::Translated(r) if r.destination() && r.source()));
//! let after = Flow::of_packet(&syn).unwrap();
//! assert_eq!(after.destination, "10.10.0.105:80".parse().unwrap());
//! assert_eq!(after.source.ip(), "192.168.0.102".parse::<std::net::IpAddr>().unwrap());
//! ```

#![warn(missing_docs)]

mod addr;
mod build;
pub mod categorize;
pub mod checksum;
mod chunks;
mod cidr;
mod compile;
pub mod conntrack;
mod control_plane;
mod counters;
mod endpoint_list;
mod engine;
mod expiring;
mod flow_index;
mod icmp;
mod known;
pub mod maglev;
mod meta;
mod model;
mod node_names;
pub mod offload;
mod packet;
mod policy;
mod port_lines;
#[cfg(any(test, feature = "reference"))]
pub mod reference;
pub mod reject;
mod service_port;
mod slab;
pub mod tables;
mod time;
pub mod trace;
mod transitions;
mod update_between;
mod verdict;
mod wire;

/// The packet library the engine parses with, for building and checking packets (see
/// "Building packets" above).
pub use etherparse;

pub use addr::Addr;
pub use compile::compile;
pub use control_plane::{ControlPlane, Publication, Update};
pub use counters::Counters;
pub use engine::{Engine, NotOwner, Path};
pub use meta::{ChecksumStatus, PacketMeta};
pub use model::*; // the model types' one public path
pub use time::Instant;
pub use trace::{Trace, TraceStep};
pub use verdict::{DropReason, Flow, Hook, RejectReason, Rewrite, Verdict};
