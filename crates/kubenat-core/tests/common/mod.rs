//! Helpers shared by the integration tests, one module a theme. Packets are built and
//! verified with etherparse, never with the engine's own code.
//!
//! Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod cluster_shape;
pub mod clusters;
pub mod flow_table;
pub mod generated;
pub mod packets;
pub mod runner;
pub mod twins;

use std::net::{IpAddr, SocketAddr};

use kubenat_core::IpNet;

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("CIDR")
}
