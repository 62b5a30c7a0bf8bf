//! Reports in every format: `-o json` and `-o yaml` the same document for every reporting
//! command, the rules' goldens and `-o nft`, the bench report's fields.

mod common;

use common::{
    EXAMPLE, SMALL_BENCH, TempDir, args_with, assert_golden, key_set, kubenat, lan_capture, stderr,
    stdout,
};
use serde_json::Value;

#[test]
fn rules_text_and_json_match_goldens() {
    for (format, golden) in [("text", "nodoa.rules.txt"), ("json", "nodoa.rules.json")] {
        let mut args = vec!["rules"];
        args.extend(EXAMPLE);
        args.extend(["--node", "nodoa", "--format", format]);
        let out = kubenat(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_golden(golden, &stdout(&out));
    }
}

/// The YAML of a command, read back as the JSON data model.
fn yaml_value(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

#[test]
fn every_reporting_command_takes_dash_o_json_and_yaml_the_same_document() {
    let dir = TempDir::new("output-formats");
    let capture = lan_capture(&dir);
    let replayed = dir.path("replayed.pcap");
    // (command, arguments after it, deterministic: the YAML equals the JSON exactly)
    let rows: &[(&str, Vec<&str>, bool)] = &[
        (
            "trace",
            vec!["--src", "10.10.0.102", "--dst", "10.10.1.101:3307"],
            true,
        ),
        ("rules", vec![], true),
        ("story", vec![], true),
        ("replay", vec!["--in", &capture, "--out", &replayed], true),
        ("simulate", vec!["--requests", "1"], true),
        (
            "simulate",
            vec!["--generate", "nodes=4,pods=20,services=5"],
            false,
        ),
        ("bench", SMALL_BENCH.to_vec(), false),
    ];
    for (command, rest, deterministic) in rows {
        let mut documents = Vec::new();
        for flag in ["-o", "--output"] {
            let mut args = args_with(command, rest);
            args.extend([flag, "json"]);
            let out = kubenat(&args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            let json: Value = serde_json::from_str(&stdout(&out))
                .unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"));
            assert!(json.is_object(), "{args:?}");
            documents.push(json);
        }
        let mut args = args_with(command, rest);
        args.extend(["-o", "yaml"]);
        let out = kubenat(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let yaml = yaml_value(&stdout(&out));
        if *deterministic {
            assert_eq!(
                documents[0], documents[1],
                "{args:?}: -o and --output differ"
            );
            assert_eq!(yaml, documents[0], "{args:?}: the YAML is another document");
        } else {
            assert_eq!(key_set(&yaml), key_set(&documents[0]), "{args:?}");
        }
        let mut args = args_with(command, rest);
        args.extend(["-o", "xml"]);
        assert_eq!(kubenat(&args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn rules_dash_o_nft_prints_what_format_nft_printed() {
    let mut printed = Vec::new();
    for flags in [["--format", "nft"], ["-o", "nft"], ["--output", "nft"]] {
        let out = kubenat(&args_with("rules", &flags));
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
        printed.push(stdout(&out));
    }
    assert_eq!(printed[0], printed[1]);
    assert_eq!(printed[0], printed[2]);
    assert_golden("nodoa.nft", &printed[0]);
    // `--format` is an alias of `--output`, for every value.
    let json = kubenat(&args_with("rules", &["--format", "yaml"]));
    assert!(json.status.success());
    assert_eq!(
        stdout(&json),
        stdout(&kubenat(&args_with("rules", &["-o", "yaml"])))
    );
}

#[test]
fn bench_json_keeps_its_fields() {
    let mut args = vec!["bench"];
    args.extend(SMALL_BENCH);
    args.extend([
        "--threads",
        "2",
        "--new-flow-ratio",
        "0.5",
        "--output",
        "json",
    ]);
    let out = kubenat(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for field in [
        "config",
        "compile_seconds",
        "lookup_hit_ns",
        "lookup_miss_ns",
        "ceiling_mlookups_per_second",
        "machine_pauses",
        "new_flows",
        "new_flows_pregrown",
        "established",
        "mixed",
        "threaded",
        "update",
        "memory",
    ] {
        assert!(!report[field].is_null(), "{field}");
    }
    assert_eq!(report["config"]["services"], 10);
    assert_eq!(report["config"]["threads"], 2);
    assert_eq!(report["config"]["new_flow_ratio"], 0.5);
    assert!(report["memory"]["bytes_per_connection"].as_f64().unwrap() > 0.0);
    // 10 Services: the cluster's bytes are the objects and the snapshot; another engine
    // adds its turns and settings only (well under a kilobyte per service port).
    let memory = &report["memory"];
    assert!(memory["cluster_bytes_per_service_port"].as_f64().unwrap() > 0.0);
    let extra = memory["engine_extra_bytes"].as_u64().unwrap();
    assert!(extra > 0 && extra < 64 * 1024, "engine_extra_bytes {extra}");
    let new_flows = &report["new_flows"];
    assert!(
        new_flows["max_batch_ns"].as_u64().unwrap() >= new_flows["batch_p99_ns"].as_u64().unwrap()
    );
    // Grown tables take no memory in a batch; growing ones count what they took there.
    assert!(new_flows["conntrack_grown_on_packet_path"].is_u64());
    assert_eq!(
        report["new_flows_pregrown"]["conntrack_grown_on_packet_path"],
        0
    );
}

#[test]
fn bench_counts_the_memory_growing_tables_took_in_batches() {
    // Without the helper every growth is the packet path's own: 3,000 connections take
    // three slab chunks and several index tables in the new-flow phase, none once grown.
    let args = [
        "bench",
        "--services",
        "10",
        "--flows",
        "3000",
        "--packets",
        "3000",
        "--updates",
        "1",
        "--no-memory-helper",
    ];
    let json = kubenat(&[&args[..], &["-o", "json"]].concat());
    assert!(json.status.success(), "{}", stderr(&json));
    let report: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let grown = |phase: &str| report[phase]["conntrack_grown_on_packet_path"].as_u64();
    assert!(grown("new_flows").is_some_and(|n| n > 3), "{report}");
    assert_eq!(grown("new_flows_pregrown"), Some(0));
    assert_eq!(grown("established"), Some(0));
    let text = stdout(&kubenat(&args));
    let new_flows = text.lines().find(|l| l.starts_with("new flows")).unwrap();
    assert!(
        new_flows.contains("conntrack allocations in batches"),
        "{text}"
    );
}

#[test]
fn bench_writes_every_batch_in_order_or_fails_before_running() {
    let dir = TempDir::new("batch-times");
    let file = dir.path("batches.csv");
    let out = kubenat(&[&["bench", "--batch-times", &file][..], &SMALL_BENCH].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().next(), Some("phase,index,ns,conntrack_grown"));
    for phase in [
        "new_flows,0,",
        "established,0,",
        "new_flows_pregrown,0,",
        "update,0,",
    ] {
        assert!(csv.lines().any(|l| l.starts_with(phase)), "{phase}\n{csv}");
    }
    // A file that cannot be written is a runtime failure (exit 3) naming it.
    let missing = dir.path("no-such-folder/batches.csv");
    let out = kubenat(&[&["bench", "--batch-times", &missing][..], &SMALL_BENCH].concat());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
}
