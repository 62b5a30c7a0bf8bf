//! Shared by the replay tests: the course notes' addresses, packets built with etherparse,
//! captures written and read back with pcap-file, and checks that never use kubenat's code.
#![allow(dead_code)]

pub mod capture;
pub mod checks;
pub mod packets;

use std::net::SocketAddr;
use std::path::Path as FsPath;

use kubenat_core::{Engine, Path, reference};
use kubenat_replay::{Summary, replay};

// ---- addresses of the course notes -------------------------------------------------------

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The PC of the notes, talking to nginx's NodePort on nodoa.
pub const CLIENT: &str = "192.168.0.200:40000";
pub const NODE_PORT: &str = "192.168.0.101:30880";
/// nginx's only endpoint (on nodob): where the NodePort must lead.
pub const NGINX_ENDPOINT: &str = "10.10.0.105:80";
pub const NODOA: &str = "192.168.0.101";
/// 2023-11-14T22:13:20Z, in nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;

pub fn engine() -> Engine {
    Engine::new(&reference::cluster("nodoa"))
}

pub fn run(input: &FsPath, output: &FsPath, path: Path) -> Summary {
    let mut engine = engine();
    replay(&mut engine, input, output, path, &mut |_, _| {}).expect("replay succeeds")
}

pub fn verdicts(s: &Summary) -> [u64; 4] {
    ["translated", "accept", "reject", "drop"].map(|k| s.by_verdict[k])
}
