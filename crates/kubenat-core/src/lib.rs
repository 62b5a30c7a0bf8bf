//! # kubenat-core
//!
//! One node's Kubernetes service data plane, as kube-proxy programs it into netfilter, in
//! userspace and without I/O: [`compile`] turns Services, EndpointSlices, Nodes and the
//! proxy settings ([`ClusterState`]) into hash tables; an [`Engine`] then rewrites raw IP
//! packets in place (DNAT to an endpoint, conntrack with reverse NAT, masquerade,
//! REJECT/DROP with a reason) and returns a [`Verdict`].
//!
//! The engine takes time as an argument ([`Instant`]) and never reads a clock, opens a socket
//! or allocates per packet, so the same engine runs under a pcap replay, a simulator, a
//! benchmark or someone else's event loop. See `docs/architecture.md` in the repository for
//! the pipeline and `examples/embed.rs` for a complete loop.

mod addr;
pub mod categorize;
pub mod checksum;
pub mod compile;
pub mod conntrack;
mod counters;
mod engine;
mod expiring;
mod icmp;
pub mod maglev;
pub mod model;
mod packet;
mod policy;
pub mod reference;
pub mod reject;
pub mod tables;
mod time;
pub mod trace;
mod transitions;
mod verdict;

pub use addr::Addr;
pub use compile::{ServiceMap, Update, compile};
pub use counters::Counters;
pub use engine::{Engine, Path};
pub use model::*;
pub use time::Instant;
pub use trace::{Trace, TraceStep};
pub use verdict::{DropReason, Flow, Hook, RejectReason, Translation, Verdict};
