//! Writes the ruleset kube-proxy would program for a synthetic cluster of N services, for
//! `benches/kernel.sh`:
//!
//! ```text
//! kernel-rules --services 10000 [--endpoints 4] --format nft|iptables > rules
//! ```
//!
//! `nft` is `kubenat_nft::render` of the compiled tables (what `kubenat rules --format nft`
//! prints); `iptables` is kube-proxy's iptables-mode `nat` table for `iptables-restore`.
//! Prints `{"kubenat_compile_seconds": …}` on stderr: kubenat's compile of the same cluster.

use std::io::Write as _;
use std::time::Instant;

fn main() {
    let mut services = 1000usize;
    let mut endpoints = 4usize;
    let mut format = String::from("nft");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--services" => services = value().parse().unwrap_or_else(|_| usage("--services N")),
            "--endpoints" => endpoints = value().parse().unwrap_or_else(|_| usage("--endpoints M")),
            "--format" => format = value(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let state = kubenat_bench::synthetic::cluster(services, endpoints, 1);
    let start = Instant::now();
    let tables = kubenat_core::compile(&state);
    let compile_seconds = start.elapsed().as_secs_f64();
    let text = match format.as_str() {
        "nft" => kubenat_nft::render(&tables),
        "iptables" => kubenat_benches::iptables_restore(&tables),
        other => usage(&format!("unknown format {other} (nft or iptables)")),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .expect("writing the ruleset");
    eprintln!("{{\"kubenat_compile_seconds\": {compile_seconds}}}");
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "kernel-rules: {problem}\nusage: kernel-rules --services N [--endpoints M] --format nft|iptables"
    );
    std::process::exit(2)
}
