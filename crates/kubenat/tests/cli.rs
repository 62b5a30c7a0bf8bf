//! The `kubenat` command as a whole: what it does without arguments, a reader that goes
//! away, help and usage errors, completions, the manual page and the exit codes.

mod common;

use common::{TempDir, args_with, assert_exits_saying, kubenat, lan_capture, stderr, stdout};

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
    let bench = |extra: &[&'static str]| {
        let mut args: Vec<String> = vec!["bench".into()];
        args.extend(common::SMALL_BENCH.iter().map(|s| s.to_string()));
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
