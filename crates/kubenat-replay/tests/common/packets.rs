//! Packets (etherparse) and the link headers around them.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use super::sa;

// ---- packets (etherparse) ----------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct Seg<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub psh: bool,
    pub payload: &'a [u8],
}

pub fn seg<'a>(src: SocketAddr, dst: SocketAddr, seq: u32, ack: Option<u32>) -> Seg<'a> {
    Seg {
        src,
        dst,
        seq,
        ack,
        syn: false,
        psh: false,
        payload: b"",
    }
}

pub fn v4(addr: SocketAddr) -> [u8; 4] {
    match addr.ip() {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// A TCP/IPv4 packet, built and checksummed by etherparse.
pub fn tcp(s: Seg) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(v4(s.src), v4(s.dst), 64).tcp(
        s.src.port(),
        s.dst.port(),
        s.seq,
        64_000,
    );
    if s.syn {
        b = b.syn();
    }
    if s.psh {
        b = b.psh();
    }
    if let Some(ack) = s.ack {
        b = b.ack(ack);
    }
    let mut out = Vec::new();
    b.write(&mut out, s.payload).unwrap();
    out
}

pub fn syn(src: &str, dst: &str) -> Vec<u8> {
    tcp(Seg {
        syn: true,
        ..seg(sa(src), sa(dst), 1000, None)
    })
}

// ---- link headers ------------------------------------------------------------------------

pub const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc8];
pub const MAC_NODE: [u8; 6] = [0x02, 0, 0, 0, 0, 0x65];

pub fn ethertype(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        0x86DD
    } else {
        0x0800
    }
}

/// Ethernet II from the client's MAC to the node's, with the given VLAN tag types (outer
/// first) before the IP ethertype.
pub fn eth_tagged(ip: &[u8], tags: &[u16]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_NODE);
    f.extend_from_slice(&MAC_CLIENT);
    for (i, tag) in tags.iter().enumerate() {
        f.extend_from_slice(&tag.to_be_bytes());
        // PCP 0, VLAN 100 + i
        f.extend_from_slice(&(100 + i as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

pub fn eth(ip: &[u8]) -> Vec<u8> {
    eth_tagged(ip, &[])
}

/// Linux cooked v1: PACKET_HOST, ARPHRD_ETHER, the sender's 6-byte address.
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6];
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Linux cooked v2: protocol, reserved, ifindex 3, ARPHRD_ETHER, PACKET_HOST, address.
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(ip);
    f
}

pub fn raw(ip: &[u8]) -> Vec<u8> {
    ip.to_vec()
}

/// An ARP request (who has 192.168.0.101?) from the client.
pub fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_CLIENT);
    f.extend_from_slice(&[192, 168, 0, 200]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 168, 0, 101]);
    f
}
