//! TCP traffic to synthetic Services through a raw socket, for the kernel's forwarding rate
//! in `benches/kernel.sh` (run it inside the client namespace; it sends only where that
//! namespace routes):
//!
//! ```text
//! flood --services N --seconds S --mode new|established [--flows F]
//! ```
//!
//! `new`: every packet is a SYN of a connection never seen before (a fresh client address
//! and port), to a random one of the N services, so the kernel walks its NAT rules for
//! each. `established`: the same `F` connections over and over (conntrack hits after the
//! first packet of each). Prints `{"sent": …, "seconds": …}`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use kubenat_bench::synthetic::{self, FlowSpec, Rng};
use kubenat_core::checksum;

const BATCH: usize = 64;
const LEN: usize = 40;

fn main() {
    let mut services = 1000usize;
    let mut seconds = 10u64;
    let mut mode = String::from("new");
    let mut flows = 1024usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("{arg} N")))
        };
        match arg.as_str() {
            "--services" => services = number() as usize,
            "--seconds" => seconds = number(),
            "--flows" => flows = number().max(1) as usize,
            "--mode" => mode = value.clone(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let established = match mode.as_str() {
        "new" => false,
        "established" => true,
        other => usage(&format!("unknown mode {other}")),
    };

    // SAFETY: plain socket(2); the descriptor is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        eprintln!("flood: raw socket: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    let template = synthetic::packet(
        &FlowSpec {
            client: "10.128.0.0:10000".parse().expect("literal"),
            service: SocketAddr::new(IpAddr::V4(synthetic::service_ip(0)), 80),
        },
        true,
    );
    assert_eq!(template.len(), LEN, "a SYN without options is 40 bytes");
    let fixed: Vec<FlowSpec> = synthetic::flows(services, flows, 7);
    let mut rng = Rng::new(1);
    let mut buffers = [[0u8; LEN]; BATCH];
    let mut addresses: [libc::sockaddr_in; BATCH] =
        // SAFETY: sockaddr_in is plain old data; all zeros is a valid value.
        unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] =
        // SAFETY: as above, filled in below.
        unsafe { std::mem::zeroed() };
    let mut messages: [libc::mmsghdr; BATCH] =
        // SAFETY: as above, filled in below.
        unsafe { std::mem::zeroed() };
    let mut sent = 0u64;
    let mut next = 0u64;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        for k in 0..BATCH {
            let flow = if established {
                fixed[(next as usize) % fixed.len()]
            } else {
                // Client addresses in 10.128.0.0/9 with 50,000 ports each: a fresh 4-tuple
                // for every packet for the next 4e11 packets.
                let client =
                    Ipv4Addr::from(u32::from_be_bytes([10, 128, 0, 0]) + (next / 50_000) as u32);
                FlowSpec {
                    client: SocketAddr::new(IpAddr::V4(client), 10_000 + (next % 50_000) as u16),
                    service: SocketAddr::new(
                        IpAddr::V4(synthetic::service_ip(rng.below(services))),
                        80,
                    ),
                }
            };
            next += 1;
            write_syn(&mut buffers[k], &template, &flow, !established);
            let IpAddr::V4(dst) = flow.service.ip() else {
                unreachable!()
            };
            addresses[k].sin_family = libc::AF_INET as libc::sa_family_t;
            addresses[k].sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        }
        for k in 0..BATCH {
            iovecs[k].iov_base = buffers[k].as_mut_ptr().cast();
            iovecs[k].iov_len = LEN;
            messages[k].msg_hdr.msg_name = (&raw mut addresses[k]).cast();
            messages[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            messages[k].msg_hdr.msg_iov = &raw mut iovecs[k];
            messages[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every message points at live buffers and addresses of this frame.
        let n = unsafe { libc::sendmmsg(fd, messages.as_mut_ptr(), BATCH as u32, 0) };
        if n < 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ENOBUFS) {
                continue;
            }
            eprintln!("flood: sendmmsg: {error}");
            std::process::exit(1);
        }
        sent += n as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("{{\"sent\": {sent}, \"seconds\": {elapsed}}}");
}

/// `template` (a SYN) readdressed to `flow`, checksums updated incrementally (RFC 1624), as
/// an ACK when `syn` is false.
fn write_syn(out: &mut [u8; LEN], template: &[u8], flow: &FlowSpec, syn: bool) {
    out.copy_from_slice(template);
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (flow.client.ip(), flow.service.ip()) else {
        unreachable!("synthetic traffic is IPv4")
    };
    let mut new = [0u8; 12];
    new[..4].copy_from_slice(&src.octets());
    new[4..8].copy_from_slice(&dst.octets());
    new[8..10].copy_from_slice(&flow.client.port().to_be_bytes());
    new[10..12].copy_from_slice(&flow.service.port().to_be_bytes());
    let old: [u8; 12] = {
        let mut o = [0u8; 12];
        o[..8].copy_from_slice(&out[12..20]);
        o[8..12].copy_from_slice(&out[20..24]);
        o
    };
    let ip_sum = u16::from_be_bytes([out[10], out[11]]);
    out[10..12].copy_from_slice(&checksum::update(ip_sum, &old[..8], &new[..8]).to_be_bytes());
    let mut tcp_sum = checksum::update(u16::from_be_bytes([out[36], out[37]]), &old, &new);
    if !syn {
        // Flags byte 33 (with the data offset byte 32 as one word): SYN (0x02) -> ACK (0x10).
        let old_word = [out[32], out[33]];
        out[33] = 0x10;
        tcp_sum = checksum::update(tcp_sum, &old_word, &[out[32], out[33]]);
    }
    out[12..20].copy_from_slice(&new[..8]);
    out[20..24].copy_from_slice(&new[8..12]);
    out[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "flood: {problem}\nusage: flood --services N --seconds S --mode new|established [--flows F]"
    );
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readdressed_packets_have_valid_checksums() {
        let template = synthetic::packet(
            &FlowSpec {
                client: "10.128.0.0:10000".parse().unwrap(),
                service: "172.16.0.0:80".parse().unwrap(),
            },
            true,
        );
        let flow = FlowSpec {
            client: "10.129.2.3:40000".parse().unwrap(),
            service: "172.16.3.4:80".parse().unwrap(),
        };
        for syn in [true, false] {
            let mut out = [0u8; LEN];
            write_syn(&mut out, &template, &flow, syn);
            let sliced = etherparse::SlicedPacket::from_ip(&out).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
                panic!()
            };
            let header = ip.header().to_header();
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else {
                panic!()
            };
            let expected = tcp
                .to_header()
                .calc_checksum_ipv4(&header, tcp.payload())
                .unwrap();
            assert_eq!(tcp.checksum(), expected);
            assert_eq!(tcp.syn(), syn);
            assert_eq!(tcp.ack(), !syn);
            assert_eq!(tcp.source_port(), 40000);
        }
    }
}
