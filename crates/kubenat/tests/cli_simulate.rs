//! `kubenat simulate` and `kubenat story`: the report, its captures and diagram, generated
//! clusters, `--summary`, and the story of the notes' flows in text and JSON.

mod common;

use common::{assert_exits_saying, key_set, kubenat, stderr, stdout};
use serde_json::Value;

#[test]
fn story_traces_every_flow_of_the_notes() {
    let out = kubenat(&["story"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for expected in [
        "default/nginx:http -> endpoint 10.10.0.105:80, source masqueraded to the node",
        "default/wp-service:http -> endpoint 10.10.0.102:80, source kept",
        "default/mariadb-service:mysql -> endpoint 10.10.0.103:3306, source kept",
        "request 2 -> 10.10.0.112:80",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn story_json_has_every_flow_and_the_round_robin() {
    let out = kubenat(&["story", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let story: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        key_set(&story),
        ["cluster", "flows", "nodes", "round_robin", "services"]
    );
    let flows = story["flows"].as_array().unwrap();
    // (node, src, dst, verdict, endpoint, masquerade)
    type StoryRow = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
    );
    #[rustfmt::skip]
    let expected: [StoryRow; 6] = [
        ("nodoa", "192.168.0.10:40001", "192.168.0.101:30880", "translated", Some("10.10.0.105:80"), true),
        ("nodob", "10.10.0.105:41000", "10.10.1.102:8080", "translated", Some("10.10.0.102:80"), false),
        ("nodoa", "10.10.0.102:53001", "10.10.1.10:53", "translated", Some("10.10.0.10:53"), false),
        ("nodoa", "10.10.0.102:42000", "10.10.1.101:3307", "translated", Some("10.10.0.103:3306"), false),
        ("nodoa", "10.10.0.102:42001", "10.10.0.101:3306", "accept", None, false),
        ("nodoa", "10.10.0.102:42002", "10.10.1.101:3306", "reject", None, false),
    ];
    assert_eq!(flows.len(), expected.len());
    for (flow, (node, src, dst, verdict, endpoint, masquerade)) in flows.iter().zip(expected) {
        assert_eq!(flow["node"], node);
        assert_eq!(flow["src"], src);
        assert_eq!(flow["dst"], dst);
        assert_eq!(flow["path"], "forward");
        assert_eq!(flow["trace"]["verdict"], verdict, "{flow}");
        assert_eq!(flow["trace"]["endpoint"].as_str(), endpoint, "{flow}");
        assert_eq!(flow["trace"]["masquerade"], masquerade, "{flow}");
    }
    assert_eq!(flows[5]["trace"]["reason"], "port-not-served");
    let turns: Vec<&str> = story["round_robin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["reply_verdict"], "translated", "{t}");
            t["endpoint"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        turns,
        [
            "10.10.0.102:80",
            "10.10.0.112:80",
            "10.10.0.102:80",
            "10.10.0.112:80"
        ]
    );
    let nginx_node_port = story["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "node port")
        .unwrap();
    assert_eq!(nginx_node_port["service"], "default/nginx:http");
    assert_eq!(nginx_node_port["port"], 30880);
    assert_eq!(nginx_node_port["address"], Value::Null);
    assert_eq!(story["nodes"].as_array().unwrap().len(), 4);
}

#[test]
fn simulate_writes_report_captures_and_diagram() {
    let dir = std::env::temp_dir().join(format!("kubenat-sim-cli-{}", std::process::id()));
    let svg = dir.join("journey.svg");
    let out = kubenat(&[
        "simulate",
        "--requests",
        "2",
        "--pcap",
        dir.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json.is_object());
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<?xml"));
    assert!(dir.join("lan.pcap").exists());
    let missing = kubenat(&["simulate", "no/such/scenario.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn simulate_generate_measures_a_generated_cluster() {
    let out = kubenat(&[
        "simulate",
        "--generate",
        "nodes=4,pods=20,services=5",
        "--requests",
        "2",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["nodes"], 4);
    assert_eq!(json["requests"], 18);
    assert_eq!(json["succeeded"], 18);
    assert!(json["simulated_packets"].as_u64().unwrap() > 18 * 10);
    for figure in [
        "packets_per_wall_second",
        "wall_seconds_per_simulated_second",
    ] {
        assert!(json[figure].as_f64().unwrap() > 0.0, "{figure}");
    }
    assert!(json["peak_bytes"].as_u64().unwrap() > 0);
    let text = stdout(&kubenat(&[
        "simulate",
        "--generate",
        "nodes=4,pods=20,services=5",
    ]));
    assert!(
        text.contains("requests      9: 9 succeeded, 0 failed"),
        "{text}"
    );
    assert!(text.contains("packets per wall second"), "{text}");

    // A size that cannot be is the user's error; one that does not parse, a usage error.
    let impossible = kubenat(&["simulate", "--generate", "nodes=1,pods=3,services=2"]);
    assert_exits_saying(
        &impossible,
        1,
        "--generate nodes=1,pods=3,services=2: pods=3",
    );
    let garbled = kubenat(&["simulate", "--generate", "nodes=1,pods=3"]);
    assert_eq!(garbled.status.code(), Some(2));
    let both = kubenat(&[
        "simulate",
        "notes",
        "--generate",
        "nodes=4,pods=20,services=5",
    ]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn simulate_summary_prints_only_the_totals() {
    let scenario = "examples/miempresa/failover.yaml";
    let full = kubenat(&["simulate", scenario]);
    assert!(full.status.success(), "{}", stderr(&full));
    let full = stdout(&full);
    let summary = kubenat(&["simulate", scenario, "--summary"]);
    assert!(summary.status.success(), "{}", stderr(&summary));
    let summary = stdout(&summary);
    assert!(full.lines().count() > 1000, "the full report has every hop");
    assert!(summary.lines().count() < 40, "{summary}");
    assert!(!summary.contains("request 1:"), "{summary}");
    // The header, then exactly the full report's closing totals and events.
    let (header, totals) = summary.split_once("\n\n").unwrap();
    assert!(full.starts_with(header), "{header}");
    assert!(totals.starts_with("60 requests: "), "{totals}");
    assert!(full.ends_with(totals), "{totals}");
    assert!(
        totals.contains("event at 1000.000 ms: kill pod mariadb-0"),
        "{totals}"
    );

    let json = |args: &[&str]| -> Value {
        let out = kubenat(args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let full = json(&["simulate", scenario, "-o", "json"]);
    let summary = json(&["simulate", scenario, "--summary", "-o", "json"]);
    assert_eq!(full["journeys"].as_array().unwrap().len(), 60);
    assert_eq!(summary["journeys"], Value::Array(vec![]));
    for field in ["scenario", "seed", "summary", "disruptions", "places"] {
        assert_eq!(summary[field], full[field], "{field}");
    }
    // A generated cluster's report is totals already.
    let generated = ["simulate", "--generate", "nodes=4,pods=20,services=5"];
    let mut with_summary = generated.to_vec();
    with_summary.push("--summary");
    let out = kubenat(&with_summary);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("requests      9: 9 succeeded"),
        "{}",
        stdout(&out)
    );
}
