//! # kubenat-inspect
//!
//! A node's rules seen from outside, the same for every shell (the `kubenat` command, the
//! browser playground): [`probe`] sends one connection's first packet through a fresh
//! engine of the node and keeps the engine's reasons, [`report`] renders that trace as
//! `kubenat trace` prints it (text and the JSON contract), [`rules`] lists the node's
//! compiled tables as `kubenat rules` does.
//!
//! ```
//! use kubenat_core::{Protocol, reference};
//! use kubenat_inspect::{probe, report};
//!
//! let state = reference::cluster("nodoa");
//! let traced = probe::trace(
//!     state,
//!     Protocol::Tcp,
//!     "10.10.0.102:42000".parse()?,
//!     "10.10.1.101:3307".parse()?,
//! );
//! let json = report::json(&traced);
//! assert_eq!(json.verdict, "translated");
//! assert_eq!(json.endpoint.as_deref(), Some("10.10.0.103:3306"));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

pub mod probe;
pub mod report;
pub mod rules;
