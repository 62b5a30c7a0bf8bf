//! `--pcap`: one capture per link, raw IP, nanosecond virtual timestamps, every packet a
//! valid IPv4 packet with correct checksums (checked by etherparse, and by tshark when it
//! is installed).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kubenat_sim::{CaptureFile, Run, Scenario, simulate};
use pcap_file::pcap::PcapReader;
use pcap_file::{DataLink, TsResolution};

/// failover.yaml, shortened: MariaDB dies at 300 ms, so the captures hold a rescheduled
/// pod's veth, packets to a dead address and the engines' rewrites on every path.
fn failover_run(dir: &str) -> Run {
    let scenario = kubenat_e2e::scenario("failover.yaml").with_requests(12);
    let scenario = Scenario {
        events: vec![kubenat_sim::TimedEvent {
            at: Duration::from_millis(300),
            action: kubenat_sim::Action::KillPod {
                pod: "mariadb-0".into(),
            },
        }],
        ..scenario
    };
    simulate(&scenario, Some(&kubenat_e2e::scratch_dir!(dir))).expect("scenario runs")
}

struct Packet {
    ts: Duration,
    data: Vec<u8>,
}

fn read(file: &CaptureFile) -> Vec<Packet> {
    let bytes = kubenat_e2e::capture_bytes(file);
    let mut reader =
        PcapReader::new(bytes.as_slice()).unwrap_or_else(|e| panic!("{}: header: {e}", file.name));
    let header = reader.header();
    assert_eq!(header.datalink, DataLink::RAW, "{}", file.name);
    assert_eq!(
        header.ts_resolution,
        TsResolution::NanoSecond,
        "{}",
        file.name
    );
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: record: {e}", file.name));
        assert_eq!(
            p.orig_len as usize,
            p.data.len(),
            "{}: truncated",
            file.name
        );
        packets.push(Packet {
            ts: p.timestamp,
            data: p.data.into_owned(),
        });
    }
    packets
}

#[test]
fn every_link_has_a_capture_and_every_packet_is_valid() {
    let run = failover_run("captures-valid");
    let report = &run.report;
    let links = &report.summary.links;
    assert_eq!(run.captures.len(), links.len(), "one capture per link");
    let names: BTreeSet<&str> = run.captures.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), run.captures.len(), "file names are unique");
    assert_eq!(run.captures[0].name, "lan.pcap");
    // The original MariaDB veth and its replacement's both have a file.
    let mariadb: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.contains("mariadb-0"))
        .collect();
    assert_eq!(mariadb.len(), 2, "{names:?}");
    assert!(names.contains("veth-nodoc-mariadb-0.pcap"), "{names:?}");

    let end = Duration::from_nanos(report.summary.simulated_ns);
    let mut total = 0;
    for (file, link) in run.captures.iter().zip(links) {
        assert_eq!(file.link, link.name);
        let packets = read(file);
        assert_eq!(packets.len() as u64, link.packets, "{}", file.name);
        assert_eq!(
            packets.iter().map(|p| p.data.len() as u64).sum::<u64>(),
            link.bytes,
            "{}",
            file.name
        );
        assert!(!packets.is_empty(), "{} carried nothing", file.name);
        for (i, pair) in packets.windows(2).enumerate() {
            assert!(
                pair[0].ts <= pair[1].ts,
                "{}: packet {} goes back in time",
                file.name,
                i + 2
            );
        }
        assert!(
            packets.last().unwrap().ts <= end,
            "{}: after the end",
            file.name
        );
        for (i, p) in packets.iter().enumerate() {
            kubenat_e2e::check_packet(&p.data)
                .unwrap_or_else(|e| panic!("{} packet {}: {e}", file.name, i + 1));
        }
        total += packets.len();
    }
    assert!(total > 500, "only {total} packets captured");
}

/// A veth carries only its pod's traffic: every packet has the pod's address on one side.
/// The LAN carries node-to-node pod traffic, so pod addresses appear there too.
#[test]
fn each_capture_holds_the_packets_of_its_link() {
    let run = failover_run("captures-per-link");
    let pod_net: ipnet::Ipv4Net = "10.10.0.0/16".parse().unwrap();
    let lan: ipnet::Ipv4Net = "192.168.0.0/16".parse().unwrap();
    for file in &run.captures {
        let packets = read(file);
        if file.name == "lan.pcap" {
            let any = |f: &dyn Fn(Ipv4Addr) -> bool| {
                packets.iter().any(|p| {
                    let (s, d) = kubenat_e2e::addresses(&p.data);
                    f(s) && f(d)
                })
            };
            assert!(
                any(&|a| lan.contains(&a)),
                "LAN: no machine-to-machine packet"
            );
            assert!(any(&|a| pod_net.contains(&a)), "LAN: no pod-to-pod packet");
            continue;
        }
        // The pod's address: the veth's place in the report's places at the same name.
        let pod_name = &file.link[file.link.find("<-> ").unwrap() + 4..];
        let ips: Vec<Ipv4Addr> = run
            .report
            .places
            .iter()
            .filter(|p| p.name == pod_name && p.kind == "pod")
            .map(|p| p.ip)
            .collect();
        assert!(!ips.is_empty(), "{}: no place for {pod_name}", file.name);
        let owner = packets
            .iter()
            .map(|p| kubenat_e2e::addresses(&p.data))
            .find_map(|(s, d)| ips.iter().find(|ip| **ip == s || **ip == d))
            .copied()
            .unwrap_or_else(|| panic!("{}: no packet of {ips:?}", file.name));
        for (i, p) in packets.iter().enumerate() {
            let (s, d) = kubenat_e2e::addresses(&p.data);
            assert!(
                s == owner || d == owner,
                "{} packet {}: {s} -> {d} is not {owner}'s",
                file.name,
                i + 1
            );
        }
    }
}

#[test]
fn run_with_writes_the_captures_and_tshark_finds_no_bad_checksum() {
    let dir = kubenat_e2e::scratch_dir!("captures-run-with");
    let options = kubenat_sim::Options {
        pcap_dir: Some(dir.clone()),
        svg: None,
    };
    let scenario = kubenat_e2e::scenario("failover.yaml").with_requests(6);
    let report = kubenat_sim::run_with(&scenario, &options).expect("runs");
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written.len(), report.summary.links.len(), "{written:?}");
    assert!(written.contains(&"lan.pcap".to_string()));
    if Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("tshark not installed: checked with etherparse only");
    } else {
        for (name, link) in written.iter().zip(sorted_links(&report)) {
            tshark_check(&dir.join(name), link);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The links' packet counts in file-name order.
fn sorted_links(report: &kubenat_sim::Report) -> Vec<u64> {
    let run_names = |name: &str| -> String {
        if name.starts_with("lan ") {
            "lan.pcap".into()
        } else {
            let (node, pod) = name["veth ".len()..].split_once(" <-> ").unwrap();
            format!("veth-{node}-{pod}.pcap")
        }
    };
    let mut links: Vec<(String, u64)> = report
        .summary
        .links
        .iter()
        .map(|l| (run_names(&l.name), l.packets))
        .collect();
    links.sort();
    links.into_iter().map(|(_, n)| n).collect()
}

fn tshark_check(path: &Path, packets: u64) {
    let count = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs");
    assert!(
        count.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&count.stderr)
    );
    let lines = String::from_utf8_lossy(&count.stdout).lines().count() as u64;
    assert_eq!(
        lines,
        packets,
        "{}: tshark reads every packet",
        path.display()
    );
    let bad = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "ip.checksum.status==Bad||tcp.checksum.status==Bad||udp.checksum.status==Bad||_ws.malformed||_ws.expert.severity==error",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        bad.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout),
        "",
        "{}: tshark finds bad packets",
        path.display()
    );
}

/// The checker used above catches a wrong checksum: a captured packet with one byte of a
/// header changed and its checksum left alone fails it.
#[test]
fn a_changed_byte_fails_the_check() {
    let run = failover_run("captures-changed-byte");
    let packets = read(&run.captures[0]);
    let tcp = packets.iter().find(|p| p.data[9] == 6).unwrap();
    let udp = packets.iter().find(|p| p.data[9] == 17).unwrap();
    kubenat_e2e::check_packet(&tcp.data).unwrap();
    for (what, packet, index) in [
        ("IPv4 TTL", &tcp.data, 8),
        ("TCP source port", &tcp.data, 21),
        ("UDP destination port", &udp.data, 23),
        ("last payload byte", &udp.data, udp.data.len() - 1),
    ] {
        let mut changed = packet.clone();
        changed[index] ^= 0x10;
        assert!(kubenat_e2e::check_packet(&changed).is_err(), "{what}");
    }
}
