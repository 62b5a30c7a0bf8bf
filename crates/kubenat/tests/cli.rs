//! The `kubenat` command as users run it: exit codes, the trace JSON contract, rules
//! goldens, errors that name the place.

mod common;

use common::{EXAMPLE, assert_golden, kubenat};
use serde_json::Value;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn no_arguments_simulates_the_notes_network() {
    let out = kubenat(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let simulate = stdout(&kubenat(&["simulate"]));
    assert!(text.starts_with(&simulate), "{text}");
    for expected in [
        "request 1: GET http://web1.miempresa.com/ -> HTTP 200",
        "matches Ingress default/web1",
        "=> 10.10.0.103:3306 [default/mariadb-service:mysql",
        "4 requests: 4 succeeded, 0 failed",
        "sequence: wordpress-5d8f7c9b6-abcde -> wordpress-5d8f7c9b6-fghij -> \
         wordpress-5d8f7c9b6-abcde -> wordpress-5d8f7c9b6-fghij",
        "kubenat story",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // `kubenat simulate | true`: the reader is gone before the simulation prints.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kubenat"))
        .arg("simulate")
        .current_dir(common::repo_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubenat runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("kubenat ends");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

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
fn help_shows_examples_and_usage_errors_exit_2() {
    let help = kubenat(&["--help"]);
    assert!(help.status.success());
    assert!(stdout(&help).contains("Examples:"));
    let trace_help = kubenat(&["trace", "--help"]);
    assert!(stdout(&trace_help).contains("Examples:"));
    assert_eq!(
        kubenat(&["trace", "--node", "nodoa"]).status.code(),
        Some(2)
    );
    assert_eq!(kubenat(&["no-such-command"]).status.code(), Some(2));
}

/// (node, proto, src, dst, dport) -> verdict, endpoints it may pick, masquerade, reason,
/// service.
type TraceRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const TRACE_ROWS: &[TraceRow] = &[
    ("nodoa", "tcp", "192.168.0.10", "192.168.0.101", "30880", "translated", &["10.10.0.105:80"], true, None, Some("default/nginx:http")),
    ("nodoc", "tcp", "192.168.0.10:40000", "192.168.0.103", "30880", "translated", &["10.10.0.105:80"], true, None, Some("default/nginx:http")),
    ("nodoa", "tcp", "192.168.0.10", "192.168.0.102", "30880", "accept", &[], false, None, None),
    ("nodob", "tcp", "10.10.0.105:41000", "10.10.1.102", "8080", "translated", &["10.10.0.102:80", "10.10.0.112:80"], false, None, Some("default/wp-service:http")),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], false, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "tcp", "192.168.0.200", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], true, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "tcp", "192.168.0.101", "10.10.1.101", "3307", "translated", &["10.10.0.103:3306"], true, None, Some("default/mariadb-service:mysql")),
    ("nodoa", "udp", "10.10.0.102", "10.10.1.10", "53", "translated", &["10.10.0.10:53"], false, None, Some("kube-system/kube-dns:dns")),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.101", "3306", "reject", &[], false, Some("port-not-served"), None),
    ("nodoa", "udp", "10.10.0.102", "10.10.1.101", "3307", "reject", &[], false, Some("port-not-served"), None),
    ("nodoa", "tcp", "10.10.0.102", "10.10.1.200", "80", "drop", &[], false, Some("unallocated-service-ip"), None),
    ("nodoa", "tcp", "10.10.0.102", "10.10.0.101", "3306", "accept", &[], false, None, None),
    ("nodoa", "sctp", "10.10.0.102", "10.10.1.101", "3307", "reject", &[], false, Some("port-not-served"), None),
];

#[test]
fn trace_json_contract_on_the_example() {
    for &(node, proto, src, dst, dport, verdict, endpoints, masquerade, reason, service) in
        TRACE_ROWS
    {
        let mut args = vec!["trace"];
        args.extend(EXAMPLE);
        args.extend([
            "--node", node, "--proto", proto, "--src", src, "--dst", dst, "--dport", dport,
            "--output", "json",
        ]);
        let out = kubenat(&args);
        let row = format!("{node} {proto} {src} -> {dst}:{dport}");
        assert!(out.status.success(), "{row}: {}", stderr(&out));
        let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["verdict"], verdict, "{row}");
        match json["endpoint"].as_str() {
            Some(endpoint) => assert!(endpoints.contains(&endpoint), "{row}: endpoint {endpoint}"),
            None => assert!(endpoints.is_empty(), "{row}: no endpoint"),
        }
        assert_eq!(json["masquerade"], masquerade, "{row}");
        assert_eq!(json["reason"].as_str(), reason, "{row}");
        assert_eq!(json["service"].as_str(), service, "{row}");
        let steps = json["steps"].as_array().unwrap();
        assert!(
            !steps.is_empty() && steps.iter().all(Value::is_string),
            "{row}"
        );
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "endpoint",
                "masquerade",
                "reason",
                "service",
                "steps",
                "verdict"
            ]
        );
    }
}

#[test]
fn trace_text_explains_each_hop() {
    let mut args = vec!["trace"];
    args.extend(EXAMPLE);
    args.extend([
        "--node",
        "nodoa",
        "--src",
        "192.168.0.10",
        "--dst",
        "192.168.0.101",
        "--dport",
        "30880",
    ]);
    let text = stdout(&kubenat(&args));
    assert!(
        text.contains("service default/nginx:http matched by its node port"),
        "{text}"
    );
    assert!(
        text.contains("masquerade: external traffic with externalTrafficPolicy Cluster"),
        "{text}"
    );
    assert!(
        text.contains("=> default/nginx:http: sent to endpoint 10.10.0.105:80, source masqueraded"),
        "{text}"
    );
}

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

#[test]
fn bad_input_exits_1_naming_the_place() {
    let dir = std::env::temp_dir().join(format!("kubenat-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: wp-service\n  namespace: default\nspec:\n  clusterIP: 10.10.1.102\n  ports:\n  - name: http\n    port: 70000\n    targetPort: 80\n",
    )
    .unwrap();
    let out = kubenat(&[
        "trace",
        "--cluster",
        bad.to_str().unwrap(),
        "--node",
        "nodoa",
        "--src",
        "10.10.0.1",
        "--dst",
        "10.10.1.102",
        "--dport",
        "8080",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("bad.yaml:10: Service default/wp-service: spec.ports[0].port: 70000"),
        "{message}"
    );
    let missing = kubenat(&["rules", "--cluster", "no/such/file.yaml", "--node", "nodoa"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no/such/file.yaml"));
    let mut args = vec!["trace"];
    args.extend(EXAMPLE);
    args.extend([
        "--node",
        "nodoz",
        "--src",
        "10.10.0.1",
        "--dst",
        "10.10.1.102",
        "--dport",
        "8080",
    ]);
    let unknown = kubenat(&args);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("nodoz"));
    std::fs::remove_dir_all(dir).unwrap();
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
    assert_eq!(impossible.status.code(), Some(1));
    assert!(stderr(&impossible).contains("--generate nodes=1,pods=3,services=2: pods=3"));
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
