//! `-` for the standard streams: manifests, captures and scenarios read from standard
//! input, captures and diagrams written to standard output.

mod common;

use common::{
    EXAMPLE, TempDir, args_with, assert_exits_saying, kubenat, kubenat_with_stdin, lan_capture,
    stderr, stdout,
};
use serde_json::Value;

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
