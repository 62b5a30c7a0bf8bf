//! The invariants of the `manifest` and `replay` fuzz targets, shared with the stable test
//! that replays their corpus (`crates/kubenat/tests/fuzz_corpus.rs` includes this file and
//! `packets.rs` with `#[path]`, as modules `inputs` and `packets` at its root).
#![allow(dead_code)]

use std::path::PathBuf;

use kubenat_core::reject::MAX_REPLY_LEN;
use kubenat_core::{Engine, Instant, Path, Verdict};
use pcap_file::pcap::PcapReader;

use crate::packets::{self, Call, Harness, TCP};

// ---------------------------------------------------------------------------------------
// manifest
// ---------------------------------------------------------------------------------------

/// `manifest`: the input as text (invalid UTF-8 replaced) through
/// `kubenat_k8s::parse_str`. It never panics and is deterministic; errors come as a
/// non-empty list whose lines point inside the text; a parsed file gives each of its nodes
/// a cluster state that an engine compiles, and a SYN to every Service address and port goes
/// through the packet invariants.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first = kubenat_k8s::parse_str("fuzz.yaml", &text);
    let again = kubenat_k8s::parse_str("fuzz.yaml", &text);
    assert_eq!(first, again, "parsing is deterministic");
    // Lines as YAML counts them: CR LF, CR and LF each end one.
    let lines =
        1 + text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    let check_line = |d: &kubenat_k8s::Diagnostic| {
        let shown = d.to_string();
        assert!(!shown.is_empty());
        if let Some(line) = d.line {
            assert!(
                (1..=lines + 1).contains(&line),
                "diagnostic line {line} outside a text of {lines} lines: {shown}"
            );
        }
    };
    let manifests = match first {
        Err(errors) => {
            assert!(!errors.is_empty(), "an error comes with a diagnostic");
            errors.iter().for_each(check_line);
            return;
        }
        Ok(m) => m,
    };
    manifests.warnings.iter().for_each(check_line);
    for node in manifests.node_names().iter().take(3) {
        let Ok(mut state) = manifests.cluster_state(node) else {
            continue;
        };
        assert_eq!(&state.proxy.node_name, node);
        // The table is allocated up front: keep the fuzzer's memory bounded.
        state.proxy.conntrack_capacity = state.proxy.conntrack_capacity.min(1024);
        let mut h = Harness::new(&state);
        let clients = ["10.244.0.77:40000", "203.0.113.7:40001"];
        for service in state.services.iter().take(4) {
            for address in service.cluster_ips.iter().take(2) {
                for port in service.ports.iter().take(2) {
                    for client in clients {
                        let client: std::net::SocketAddr = client.parse().unwrap();
                        let protocol = port.protocol.ip_number();
                        let packet = packets::build(
                            protocol,
                            client,
                            std::net::SocketAddr::new(*address, port.port),
                            if protocol == TCP { packets::SYN } else { 1 },
                            b"",
                        );
                        h.run(Call::Path(Path::Forward), &packet);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// replay
// ---------------------------------------------------------------------------------------

/// Where a replay input and output are written (one pair per process).
fn scratch() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("kubenat-fuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    (dir.join("input.cap"), dir.join("output.pcap"))
}

/// The cluster a replay runs against: nodoa of the notes' cluster, dual-stack.
fn replay_cluster() -> kubenat_core::ClusterState {
    packets::fixed_cluster(1 | 32)
}

/// `replay`: the input as a capture file through `kubenat_replay::replay` (forward path).
/// It never panics; progress only moves forward and stays within the file; on success the
/// summary adds up (packets = verdicts, reasons = drops + rejects, written = accepted +
/// translated + replies), agrees with the engine's counters, and the output re-reads as a
/// pcap of exactly `written` records. For a raw-IP pcap the output is also compared record
/// by record with the same packets run straight through an engine with every packet
/// invariant checked.
pub fn replay(data: &[u8]) {
    let (input, output) = scratch();
    std::fs::write(&input, data).expect("write the capture");
    let _ = std::fs::remove_file(&output);
    let mut engine = Engine::new(&replay_cluster());
    let mut last = 0u64;
    let total = data.len() as u64;
    let mut progress = |read: u64, of: u64| {
        assert_eq!(of, total, "progress total is the file size");
        assert!(read <= of, "progress {read} past the end {of}");
        assert!(read >= last, "progress went back from {last} to {read}");
        last = read;
    };
    let result = kubenat_replay::replay(&mut engine, &input, &output, Path::Forward, &mut progress);
    let summary = match result {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
        Ok(summary) => summary,
    };
    let v = |k: &str| {
        summary
            .by_verdict
            .get(k)
            .copied()
            .expect("all four verdicts")
    };
    assert_eq!(summary.by_verdict.len(), 4, "{:?}", summary.by_verdict);
    let (translated, accept, reject, drop) = (v("translated"), v("accept"), v("reject"), v("drop"));
    assert_eq!(
        summary.packets,
        translated + accept + reject + drop,
        "{summary:?}"
    );
    assert_eq!(
        summary.by_reason.values().sum::<u64>(),
        drop + reject,
        "reasons add up: {summary:?}"
    );
    assert!(
        (translated + accept..=translated + accept + reject).contains(&summary.written),
        "written: {summary:?}"
    );
    let c = engine.counters();
    assert_eq!(c.translated, translated, "engine translations");
    assert_eq!(c.rejected, reject, "engine rejects");
    assert!(
        c.accepted <= accept && c.dropped <= drop,
        "engine counters {c:?} vs {summary:?}"
    );
    for (reason, n) in c.drop_reasons() {
        assert_eq!(
            summary.by_reason.get(reason.as_str()).copied().unwrap_or(0),
            n,
            "drop reason {reason}"
        );
    }
    for (reason, n) in c.reject_reasons() {
        assert_eq!(
            summary.by_reason.get(reason.as_str()).copied().unwrap_or(0),
            n,
            "reject reason {reason}"
        );
    }
    let written = std::fs::read(&output).expect("the output exists");
    let mut reader = PcapReader::new(&written[..]).expect("the output is a pcap");
    let snaplen = reader.header().snaplen as usize;
    let mut records = Vec::new();
    while let Some(record) = reader.next_raw_packet() {
        let record = record.expect("output record");
        assert!(record.data.len() <= snaplen, "record beyond the snaplen");
        assert!(record.orig_len >= record.incl_len);
        records.push(record.data.to_vec());
    }
    assert_eq!(records.len() as u64, summary.written, "records written");
    compare_raw_pcap(data, &records, snaplen);
}

/// For a pcap of raw IP (link types 101, 228, 229), runs every record straight through a
/// fresh engine on the same cluster (checking the packet invariants) and compares what
/// should leave with the replay's output.
fn compare_raw_pcap(data: &[u8], records: &[Vec<u8>], snaplen: usize) {
    let Ok(mut reader) = PcapReader::new(data) else {
        return;
    };
    let header = reader.header();
    let version = match u32::from(header.datalink) {
        101 => None,
        228 => Some(4),
        229 => Some(6),
        _ => return,
    };
    let micros = header.ts_resolution == pcap_file::TsResolution::MicroSecond;
    let mut h = Harness::new(&replay_cluster());
    h.probe_replies = false;
    let mut expected: Vec<Vec<u8>> = Vec::new();
    while let Some(Ok(record)) = reader.next_raw_packet() {
        let nanos = u64::from(record.ts_frac) * if micros { 1000 } else { 1 };
        h.now = Instant::from_nanos(u64::from(record.ts_sec) * 1_000_000_000 + nanos);
        let packet = record.data.to_vec();
        if let (Some(v), Some(first)) = (version, packet.first())
            && first >> 4 != v
        {
            continue;
        }
        let (verdict, out) = h.run(Call::Path(Path::Forward), &packet);
        match verdict {
            Verdict::Accept | Verdict::Translated(_) => expected.push(out),
            Verdict::Reject(_) => {
                let mut reply = [0u8; MAX_REPLY_LEN];
                if let Ok(len) = h.engine.write_reject_reply(&out, &mut reply) {
                    expected.push(reply[..len].to_vec());
                }
            }
            Verdict::Drop(_) => {}
            // replay writes nothing for a verdict it does not know.
            _ => {}
        }
    }
    assert_eq!(
        expected.len(),
        records.len(),
        "replay wrote what the engine let through"
    );
    for (i, (want, got)) in expected.iter().zip(records).enumerate() {
        assert_eq!(
            &want[..want.len().min(snaplen)],
            &got[..],
            "output record {i}"
        );
    }
}
