//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// Compares `rendered` with `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file.
pub fn assert_golden(name: &str, rendered: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if rendered != expected {
        let first = rendered
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
        panic!(
            "output differs from {} at line {}:\n  got:      {:?}\n  expected: {:?}\n\
             (review, then rerun with UPDATE_GOLDEN=1)",
            path.display(),
            first + 1,
            rendered.lines().nth(first),
            expected.lines().nth(first),
        );
    }
}

/// The repository root, where `examples/` lives.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the `kubenat` binary from the repository root.
pub fn kubenat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubenat"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("kubenat runs")
}

/// The example cluster's manifests, as `--cluster` arguments.
pub const EXAMPLE: [&str; 4] = [
    "--cluster",
    "examples/miempresa/cluster.yaml",
    "--cluster",
    "examples/miempresa/kube-proxy.yaml",
];

/// Runs the `kubenat` binary from the repository root with `input` on its standard input.
pub fn kubenat_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubenat"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubenat runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A command that fails before reading its input closes the pipe: not an error here.
    let writer = std::thread::spawn({
        let input = input.to_vec();
        move || {
            let _ = stdin.write_all(&input);
        }
    });
    let out = child.wait_with_output().expect("kubenat ends");
    writer.join().expect("the writer thread ends");
    out
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The command exited with `code` and said `text` on stderr.
pub fn assert_exits_saying(out: &std::process::Output, code: i32, text: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert!(stderr(out).contains(text), "{}", stderr(out));
}

/// A temporary directory of this test process, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kubenat-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A capture of the notes' LAN, from the simulator, for replays.
pub fn lan_capture(dir: &TempDir) -> String {
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

/// `kubenat bench`'s flags for a run of a second or less.
pub const SMALL_BENCH: [&str; 8] = [
    "--services",
    "10",
    "--flows",
    "10",
    "--packets",
    "100",
    "--updates",
    "10",
];

pub fn args_with<'a>(command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command];
    if matches!(command, "trace" | "rules" | "replay") {
        args.extend(EXAMPLE);
        args.extend(["--node", "nodoa"]);
    }
    args.extend(rest);
    args
}

pub fn key_set(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}
