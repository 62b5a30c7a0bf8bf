//! Imports manifest files (`-` for standard input) and says what they hold, how long the
//! import took and the process's peak memory: the import benchmark in docs/benchmarks.md.
//!
//! ```text
//! cargo run --release -p kubenat --example import -- dump.json [more.yaml ...]
//! ```

use std::time::Instant;

// As in the kubenat command: millions of small allocations, which glibc's malloc makes slow.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the kubenat command does for every command but `run`.
    kubenat::memory::keep_freed_pages();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: import FILE... (`-` is standard input)");
        std::process::exit(2);
    }
    let start = Instant::now();
    let loaded = kubenat_k8s::load(&paths);
    let seconds = start.elapsed().as_secs_f64();
    match loaded {
        Ok(manifests) => println!(
            "{{\"services\": {}, \"endpoint_slices\": {}, \"nodes\": {}, \"warnings\": {}, \"seconds\": {seconds:.3}, \"peak_rss_mb\": {:.1}}}",
            manifests.services.len(),
            manifests.endpoint_slices.len(),
            manifests.nodes.len(),
            manifests.warnings.len(),
            peak_rss_mb().unwrap_or(f64::NAN),
        ),
        Err(errors) => {
            for error in errors.iter().take(10) {
                eprintln!("{error}");
            }
            std::process::exit(1);
        }
    }
}

/// VmHWM from /proc/self/status (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1000.0)
}
