//! The `kubenat` command as users run it: exit codes, the trace JSON contract, rules
//! goldens, errors that name the place, and one grammar across commands (`-o`, `-` for
//! standard streams, `--dst IP:PORT`, help, completions, the manual page).

mod common;

use common::{EXAMPLE, assert_golden, kubenat, kubenat_with_stdin};
use serde_json::Value;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The command exited with `code` and said `text` on stderr.
fn assert_exits_saying(out: &std::process::Output, code: i32, text: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert!(stderr(out).contains(text), "{}", stderr(out));
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
    assert_exits_saying(&missing, 1, "no/such/file.yaml");
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
    assert_exits_saying(&unknown, 1, "nodoz");
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

/// A temporary directory of this test process, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kubenat-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A capture of the notes' LAN, from the simulator, for replays.
fn lan_capture(dir: &TempDir) -> String {
    let out = kubenat(&[
        "simulate",
        "--requests",
        "1",
        "--pcap",
        dir.0.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir.path("lan.pcap")
}

fn args_with<'a>(command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command];
    if matches!(command, "trace" | "rules" | "replay") {
        args.extend(EXAMPLE);
        args.extend(["--node", "nodoa"]);
    }
    args.extend(rest);
    args
}

/// The YAML of a command, read back as the JSON data model.
fn yaml_value(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

fn key_set(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
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
        (
            "bench",
            vec![
                "--services",
                "10",
                "--flows",
                "10",
                "--packets",
                "100",
                "--updates",
                "10",
            ],
            false,
        ),
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
fn dash_reads_the_manifests_from_stdin() {
    let cluster =
        std::fs::read(common::repo_root().join("examples/miempresa/cluster.yaml")).unwrap();
    let flow = [
        "--node",
        "nodoa",
        "--src",
        "10.10.0.102",
        "--dst",
        "10.10.1.101:3307",
        "-o",
        "json",
    ];
    let mut from_stdin = vec![
        "trace",
        "--cluster",
        "-",
        "--cluster",
        "examples/miempresa/kube-proxy.yaml",
    ];
    from_stdin.extend(flow);
    let piped = kubenat_with_stdin(&from_stdin, &cluster);
    assert!(piped.status.success(), "{}", stderr(&piped));
    let mut from_files = vec!["trace"];
    from_files.extend(EXAMPLE);
    from_files.extend(flow);
    assert_eq!(stdout(&piped), stdout(&kubenat(&from_files)));
    let json: Value = serde_json::from_str(&stdout(&piped)).unwrap();
    assert_eq!(json["endpoint"], "10.10.0.103:3306");

    let rules = kubenat_with_stdin(&["rules", "--cluster", "-", "--node", "nodoa"], &cluster);
    assert!(rules.status.success(), "{}", stderr(&rules));
    assert!(stdout(&rules).contains("default/mariadb-service:mysql"));

    // Standard input can be read once.
    let twice = kubenat_with_stdin(
        &[
            "rules",
            "--cluster",
            "-",
            "--cluster",
            "-",
            "--node",
            "nodoa",
        ],
        &cluster,
    );
    assert_exits_saying(&twice, 2, "standard input");
}

#[test]
fn replay_dash_reads_and_writes_the_capture_on_stdio() {
    let dir = TempDir::new("replay-stdio");
    let capture = lan_capture(&dir);
    let to_file = dir.path("to-file.pcap");
    let by_files = kubenat(&args_with(
        "replay",
        &["--in", &capture, "--out", &to_file, "-o", "json"],
    ));
    assert!(by_files.status.success(), "{}", stderr(&by_files));
    let expected_capture = std::fs::read(&to_file).unwrap();
    assert!(expected_capture.len() > 24, "a pcap header and packets");

    // --in - --out -: the capture on stdout, the summary on stderr.
    let input = std::fs::read(&capture).unwrap();
    let piped = kubenat_with_stdin(
        &args_with("replay", &["--in", "-", "--out", "-", "-o", "json"]),
        &input,
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout, expected_capture);
    let summary: Value = serde_json::from_str(&stderr(&piped)).unwrap();
    let expected: Value = serde_json::from_str(&stdout(&by_files)).unwrap();
    assert_eq!(summary, expected);

    // --out - alone, text: the capture on stdout, the text summary on stderr.
    let out = kubenat(&args_with("replay", &["--in", &capture, "--out", "-"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, expected_capture);
    assert!(
        stderr(&out).contains("written to standard output"),
        "{}",
        stderr(&out)
    );

    // --in - alone: the capture written to the file, the summary on stdout.
    let to_file_again = dir.path("again.pcap");
    let out = kubenat_with_stdin(
        &args_with("replay", &["--in", "-", "--out", &to_file_again]),
        &input,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&to_file_again).unwrap(), expected_capture);
    assert!(stdout(&out).contains("packets"), "{}", stdout(&out));

    // Not a capture on stdin: a bad input file, named `-`.
    let garbage = kubenat_with_stdin(
        &args_with("replay", &["--in", "-", "--out", "-"]),
        b"not a capture",
    );
    assert_eq!(garbage.status.code(), Some(1));
    assert!(
        stderr(&garbage).starts_with("-: not a pcap"),
        "{}",
        stderr(&garbage)
    );
    assert!(garbage.stdout.is_empty());

    // A capture cut short: what was replayed before the cut reaches stdout as it reaches
    // a file, and the error names the record.
    let cut = &input[..input.len() - 10];
    let cut_file = dir.path("cut.pcap");
    std::fs::write(&cut_file, cut).unwrap();
    let partial_file = dir.path("partial.pcap");
    let to_file = kubenat(&args_with(
        "replay",
        &["--in", &cut_file, "--out", &partial_file],
    ));
    assert_eq!(to_file.status.code(), Some(1), "{}", stderr(&to_file));
    let piped = kubenat_with_stdin(&args_with("replay", &["--in", "-", "--out", "-"]), cut);
    assert_eq!(piped.status.code(), Some(1), "{}", stderr(&piped));
    assert!(
        stderr(&piped).starts_with("-: unreadable capture at record"),
        "{}",
        stderr(&piped)
    );
    let partial = std::fs::read(&partial_file).unwrap();
    assert!(partial.len() > 24, "some records were written");
    assert_eq!(piped.stdout, partial);

    // The manifests and the capture cannot both be stdin.
    let both = kubenat_with_stdin(
        &[
            "replay",
            "--cluster",
            "-",
            "--node",
            "nodoa",
            "--in",
            "-",
            "--out",
            "-",
        ],
        &input,
    );
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn simulate_dash_reads_the_scenario_and_svg_dash_writes_the_diagram() {
    // The notes' scenario file, its manifests made relative to where kubenat runs.
    let scenario =
        std::fs::read_to_string(common::repo_root().join("examples/miempresa/scenario.yaml"))
            .unwrap()
            .replace("  - cluster.yaml", "  - examples/miempresa/cluster.yaml")
            .replace(
                "  - kube-proxy.yaml",
                "  - examples/miempresa/kube-proxy.yaml",
            );
    let piped = kubenat_with_stdin(&["simulate", "-", "--requests", "2"], scenario.as_bytes());
    assert!(piped.status.success(), "{}", stderr(&piped));
    let from_file = kubenat(&[
        "simulate",
        "examples/miempresa/scenario.yaml",
        "--requests",
        "2",
    ]);
    assert_eq!(stdout(&piped), stdout(&from_file));

    let svg = kubenat(&["simulate", "--requests", "1", "--svg", "-"]);
    assert!(svg.status.success(), "{}", stderr(&svg));
    assert!(stdout(&svg).starts_with("<?xml"), "{}", stdout(&svg));
    assert!(stdout(&svg).trim_end().ends_with("</svg>"));
    assert!(
        stderr(&svg).contains("1 requests: 1 succeeded, 0 failed"),
        "{}",
        stderr(&svg)
    );

    assert_eq!(kubenat(&["simulate", "--pcap", "-"]).status.code(), Some(2));
}

/// (--src, --dst, --dport) -> exit code, and the endpoint when traced.
type DestinationRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    i32,
    Option<&'static str>,
);

#[rustfmt::skip]
const DESTINATIONS: &[DestinationRow] = &[
    ("10.10.0.102", "10.10.1.101:3307", None, 0, Some("10.10.0.103:3306")),
    ("10.10.0.102", "10.10.1.101", Some("3307"), 0, Some("10.10.0.103:3306")),
    ("10.10.0.102:42000", "10.10.1.101:3306", None, 0, None),
    // The port given twice, or not at all.
    ("10.10.0.102", "10.10.1.101:3307", Some("3307"), 2, None),
    ("10.10.0.102", "10.10.1.101:3307", Some("80"), 2, None),
    ("10.10.0.102", "10.10.1.101", None, 2, None),
    // Not an address, a port out of range, an IPv6 address and port without brackets.
    ("10.10.0.102", "mariadb-service:3307", None, 2, None),
    ("10.10.0.102", "10.10.1.101:99999", None, 2, None),
    ("fd00::5", "fd00::10:80", None, 2, None),
    // IPv6: [addr]:port, or the address and --dport.
    ("fd00::5", "[fd00::10]:80", None, 0, None),
    ("[fd00::5]:4000", "fd00::10", Some("80"), 0, None),
    // Families must match.
    ("fd00::5", "10.10.1.101:3307", None, 2, None),
    ("10.10.0.102", "[fd00::10]:80", None, 2, None),
    // --src keeps its own contract, and a bad one is an argument error too.
    ("x:99999", "10.10.1.101:3307", None, 2, None),
    ("10.10.0.102:70000", "10.10.1.101:3307", None, 2, None),
];

#[test]
fn dst_takes_ip_or_ip_port_and_the_port_once() {
    for &(src, dst, dport, code, endpoint) in DESTINATIONS {
        let mut args = args_with("trace", &["--src", src, "--dst", dst, "-o", "json"]);
        if let Some(dport) = dport {
            args.extend(["--dport", dport]);
        }
        let out = kubenat(&args);
        let row = format!("--src {src} --dst {dst} --dport {dport:?}");
        assert_eq!(out.status.code(), Some(code), "{row}: {}", stderr(&out));
        if code == 0 {
            let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(json["endpoint"].as_str(), endpoint, "{row}");
        } else {
            assert!(out.stdout.is_empty(), "{row}");
            assert!(
                stderr(&out).starts_with("error: "),
                "{row}: {}",
                stderr(&out)
            );
        }
    }
}

const SUBCOMMANDS: [&str; 8] = [
    "trace",
    "rules",
    "simulate",
    "story",
    "bench",
    "replay",
    "completions",
    "man",
];

/// The arguments and options of a `--help`, each with its description: on the same line
/// (clap's short layout) or the next (its long one).
fn options_of(help: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut options = Vec::new();
    let mut in_section = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() && !line.starts_with(' ') {
            in_section = matches!(*line, "Arguments:" | "Options:");
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if !in_section
            || indent > 6
            || !(trimmed.starts_with('-') || trimmed.starts_with('[') || trimmed.starts_with('<'))
        {
            continue;
        }
        match trimmed.split_once("  ") {
            Some((header, description)) => {
                options.push((header.to_string(), description.to_string()))
            }
            None => options.push((
                trimmed.to_string(),
                lines.get(i + 1).unwrap_or(&"").to_string(),
            )),
        }
    }
    options
}

#[test]
fn every_flag_has_help_and_every_subcommand_its_own_examples() {
    for command in SUBCOMMANDS {
        let out = kubenat(&[command, "--help"]);
        assert!(out.status.success(), "{command}");
        let help = stdout(&out);
        let options = options_of(&help);
        assert!(options.len() >= 2, "{command}: {options:?}");
        for (flag, description) in &options {
            assert!(
                description.trim().len() > 3,
                "{command}: {flag} has no help text"
            );
        }
        let examples = help
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("{command}: no examples"))
            .1;
        assert!(
            examples.contains(&format!("kubenat {command}")),
            "{command}: {examples}"
        );
        for other in SUBCOMMANDS.iter().filter(|&&o| o != command) {
            assert!(
                !examples.contains(&format!("kubenat {other} ")),
                "{command}'s examples show `kubenat {other}`: {examples}"
            );
        }
        assert!(!help.contains("Exit codes:"), "{command}");
    }
    // The flags the issue found bare, by name.
    for (command, flag) in [
        ("trace", "--dst"),
        ("trace", "--dport"),
        ("bench", "--services"),
        ("bench", "--endpoints"),
        ("bench", "--threads"),
        ("bench", "--batch"),
    ] {
        let help = stdout(&kubenat(&[command, "--help"]));
        let (_, description) = options_of(&help)
            .into_iter()
            .find(|(header, _)| header.starts_with(flag))
            .unwrap_or_else(|| panic!("{command} {flag}"));
        assert!(description.trim().len() > 10, "{command} {flag}");
    }
    // The overview: examples of every command, the grammar, the exit codes.
    let help = stdout(&kubenat(&["--help"]));
    for command in [
        "trace",
        "rules",
        "simulate",
        "story",
        "bench",
        "replay",
        "completions",
        "man",
    ] {
        assert!(
            help.contains(&format!("kubenat {command}")),
            "{command} in {help}"
        );
    }
    for line in [
        "Exit codes:",
        "0  success",
        "1  a bad input file",
        "2  a rejected argument",
        "3  a runtime or system failure",
    ] {
        assert!(help.contains(line), "{line:?} in {help}");
    }
}

#[test]
fn completions_and_man_page() {
    let bash = kubenat(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", stderr(&bash));
    let script = stdout(&bash);
    assert!(script.contains("_kubenat()"), "{script}");
    assert!(script.contains("complete -F _kubenat"), "{script}");
    for word in ["trace", "--dport", "--new-flow-ratio", "--output"] {
        assert!(script.contains(word), "{word}");
    }
    for (shell, marker) in [
        ("zsh", "#compdef kubenat"),
        ("fish", "complete -c kubenat"),
        ("elvish", "kubenat"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = kubenat(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(stdout(&out).contains(marker), "{shell}");
    }
    assert_eq!(kubenat(&["completions", "tcsh"]).status.code(), Some(2));
    assert_eq!(kubenat(&["completions"]).status.code(), Some(2));

    let man = kubenat(&["man"]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(page.contains(".TH kubenat 1"), "{page}");
    assert!(page.contains("kubenat\\-trace(1)"), "{page}");
    assert!(page.contains("Exit codes:"), "{page}");
    let trace = stdout(&kubenat(&["man", "trace"]));
    assert!(trace.contains(".TH kubenat-trace 1"), "{trace}");
    assert!(trace.contains("\\-\\-dport"), "{trace}");
    assert_eq!(kubenat(&["man", "nope"]).status.code(), Some(2));
}

#[test]
fn exit_codes_0_ok_1_bad_input_2_rejected_argument_3_runtime() {
    let dir = TempDir::new("exit-codes");
    let capture = lan_capture(&dir);
    let not_a_capture = dir.path("not-a-capture.pcap");
    std::fs::write(&not_a_capture, "hello").unwrap();
    let no_dir = dir.path("no/such/dir/out.pcap");
    let no_dir_svg = dir.path("no/such/dir/journey.svg");
    let small = [
        "--services",
        "10",
        "--flows",
        "10",
        "--packets",
        "100",
        "--updates",
        "10",
    ];
    let bench = |extra: &[&'static str]| {
        let mut args: Vec<String> = vec!["bench".into()];
        args.extend(small.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let trace = |src: &str, dst: &str, dport: &str| {
        let mut args: Vec<String> = args_with("trace", &[])
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--src", src, "--dst", dst, "--dport", dport].map(String::from));
        args
    };
    let strings = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rows: Vec<(Vec<String>, i32)> = vec![
        (strings(&["story"]), 0),
        (bench(&["--endpoints", "0"]), 0),
        (bench(&["--new-flow-ratio", "1", "--batch", "256"]), 0),
        // Rejected arguments, whether clap or kubenat rejects them.
        (strings(&["no-such-command"]), 2),
        (strings(&["story", "--no-such-flag"]), 2),
        (trace("10.10.0.102", "10.10.1.101", "70000"), 2),
        (trace("x:99999", "10.10.1.101", "3307"), 2),
        (bench(&["--services", "0"]), 2),
        (bench(&["--flows", "0"]), 2),
        (bench(&["--threads", "0"]), 2),
        (bench(&["--endpoints", "1001"]), 2),
        (bench(&["--endpoints", "-1"]), 2),
        (bench(&["--new-flow-ratio", "2"]), 2),
        (bench(&["--new-flow-ratio", "-0.5"]), 2),
        (bench(&["--new-flow-ratio", "NaN"]), 2),
        (bench(&["--batch", "0"]), 2),
        (bench(&["--batch", "257"]), 2),
        // Bad input files.
        (
            strings(&["rules", "--cluster", "no/such/file.yaml", "--node", "nodoa"]),
            1,
        ),
        (strings(&["simulate", "no/such/scenario.yaml"]), 1),
        (
            strings(&args_with(
                "replay",
                &["--in", &not_a_capture, "--out", &dir.path("x.pcap")],
            )),
            1,
        ),
        (
            strings(&args_with(
                "replay",
                &["--in", "no/such/capture.pcap", "--out", &dir.path("x.pcap")],
            )),
            1,
        ),
        // The system fails: an output that cannot be written.
        (
            strings(&args_with("replay", &["--in", &capture, "--out", &no_dir])),
            3,
        ),
        (
            strings(&["simulate", "--requests", "1", "--svg", &no_dir_svg]),
            3,
        ),
    ];
    for (args, code) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kubenat(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        if code == 2 {
            assert!(
                stderr(&out).starts_with("error: "),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
    // Standard output that cannot be written to.
    if std::path::Path::new("/dev/full").exists() {
        let full = std::fs::File::create("/dev/full").unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubenat"))
            .arg("story")
            .current_dir(common::repo_root())
            .stdout(full)
            .output()
            .unwrap();
        assert_exits_saying(&out, 3, "cannot write the output");
    }
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
fn bench_json_keeps_its_fields() {
    let out = kubenat(&[
        "bench",
        "--services",
        "10",
        "--flows",
        "10",
        "--packets",
        "100",
        "--updates",
        "10",
        "--threads",
        "2",
        "--new-flow-ratio",
        "0.5",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for field in [
        "config",
        "compile_seconds",
        "lookup_hit_ns",
        "lookup_miss_ns",
        "ceiling_mlookups_per_second",
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
}

#[test]
fn unknown_fields_warn_and_strict_refuses_them() {
    let cluster =
        std::fs::read_to_string(common::repo_root().join("examples/miempresa/cluster.yaml"))
            .unwrap();
    let proxy =
        std::fs::read_to_string(common::repo_root().join("examples/miempresa/kube-proxy.yaml"))
            .unwrap();
    // A KubeProxyConfiguration typo ahead of the real fields, read from standard input.
    let typo = proxy.replacen(
        "kind: KubeProxyConfiguration\n",
        "kind: KubeProxyConfiguration\nmdoe: iptables\n",
        1,
    );
    assert_ne!(typo, proxy, "the example has a KubeProxyConfiguration");
    let line = typo.lines().position(|l| l == "mdoe: iptables").unwrap() + 1;
    let input = format!("{cluster}\n---\n{typo}");
    let line = cluster.lines().count() + 2 + line;
    let args = [
        "trace",
        "--cluster",
        "-",
        "--node",
        "nodoa",
        "--src",
        "10.10.0.102",
        "--dst",
        "10.10.1.101:3307",
    ];
    let lenient = kubenat_with_stdin(&args, input.as_bytes());
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
    let warning = format!("warning: <stdin>:{line}: KubeProxyConfiguration: unknown field mdoe");
    assert!(stderr(&lenient).contains(&warning), "{}", stderr(&lenient));

    let mut strict_args = args.to_vec();
    strict_args.push("--strict");
    let strict = kubenat_with_stdin(&strict_args, input.as_bytes());
    assert_exits_saying(&strict, 1, "unknown field mdoe");
    assert!(stdout(&strict).is_empty());
}
