//! Independent checks of replay's output: etherparse, and tshark when it is installed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path as FsPath;
use std::process::Command;

use etherparse::{IpNumber, Ipv4Slice, TcpSlice};

// ---- independent checks ------------------------------------------------------------------

/// (source, destination) of a TCP/IPv4 packet, after etherparse checked the IPv4 and TCP
/// checksums from scratch.
pub fn checked_tcp(ip: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let v4 = Ipv4Slice::from_slice(ip).expect("IPv4 parses");
    let h = v4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    assert_eq!(v4.payload().ip_number, IpNumber::TCP);
    let t = TcpSlice::from_slice(v4.payload().payload).expect("TCP parses");
    let expected = t
        .to_header()
        .calc_checksum_ipv4_raw(h.source, h.destination, t.payload())
        .unwrap();
    assert_eq!(t.checksum(), expected, "TCP checksum");
    (
        SocketAddr::new(Ipv4Addr::from(h.source).into(), t.source_port()),
        SocketAddr::new(Ipv4Addr::from(h.destination).into(), t.destination_port()),
        t.payload().to_vec(),
    )
}

/// Checks the checksums of every packet of `pcap` with tshark, when it is installed.
pub fn tshark_checksums(pcap: &FsPath) {
    let Ok(out) = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "tcp.checksum.status==Bad || ip.checksum.status==Bad || udp.checksum.status==Bad \
             || icmp.checksum.status==Bad || _ws.malformed || _ws.expert.severity==error",
        ])
        .output()
    else {
        eprintln!("tshark not installed: checksums checked by etherparse only");
        return;
    };
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = String::from_utf8_lossy(&out.stdout);
    assert!(
        bad.trim().is_empty(),
        "tshark flags packets of {}:\n{bad}",
        pcap.display()
    );
}

/// tshark's reading of some fields of every packet (None without tshark).
pub fn tshark_fields(pcap: &FsPath, fields: &[&str]) -> Option<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}
