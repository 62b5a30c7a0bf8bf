//! `kubenat run` on live traffic in network namespaces: tests/live-run.sh builds the notes'
//! node with real TCP clients and servers and checks ClusterIP, NodePort with masquerade, a
//! refused port, and the host restored after SIGINT and after SIGKILL with `--cleanup`.
//!
//! Needs root (CI is root). Not root is a failure with the reason, never a silent skip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs the script with `KUBENAT_IO_URING` set to `io_uring`: "1" moves packets through an
/// io_uring where the kernel allows one, "0" one `read`/`writev` per packet.
fn live_run(io_uring: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/live-run.sh");
    let start = Instant::now();
    // The script bounds every wait itself; `timeout` bounds the whole.
    let output = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_kubenat"))
        .env("KUBENAT_IO_URING", io_uring)
        .current_dir(&root)
        .output()
        .expect("running bash tests/live-run.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/live-run.sh failed ({}, KUBENAT_IO_URING={io_uring}):\n{stderr}",
        output.status
    );
    assert!(stderr.contains("live-run: ok"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(120));
}

#[test]
fn live_run_in_network_namespaces() {
    live_run("1");
}

#[test]
fn live_run_with_one_call_per_packet() {
    live_run("0");
}
