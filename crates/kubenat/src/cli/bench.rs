//! `kubenat bench`: rule lookup and rewrite at scale, measured.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::builder::RangedU64ValueParser;

use super::{Failure, OutputArg, emit_as, examples, phase_spinner};

/// Rule lookup and rewrite at scale: a synthetic cluster and traffic, measured.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat bench",
    "kubenat bench --services 1000000 --endpoints 4 --flows 1000000 --threads 2 -o json",
    "kubenat bench --services 1000 --new-flow-ratio 0.1 --batch 32",
    "kubenat bench --services 1000 --endpoints 0      # every connection rejected: the reject path",
))]
pub struct Bench {
    /// ClusterIP Services in the synthetic cluster (TCP 80 -> 8080), at least 1.
    #[arg(long, default_value_t = 10_000, value_parser = positive)]
    services: usize,
    /// Ready endpoints per Service, 0 to 1000 (an EndpointSlice's limit); 0 measures the
    /// reject path (no endpoints: ICMP port unreachable).
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1000))]
    endpoints: usize,
    /// Distinct connections, at least 1 (the conntrack table holds them all).
    #[arg(long, default_value_t = 100_000, value_parser = positive)]
    flows: usize,
    /// Worker threads for the threaded phase, at least 1 (1: no threaded phase).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    threads: usize,
    /// Share of packets that open a new connection in the mixed phase, 0 to 1 (0: no mixed
    /// phase).
    #[arg(long, default_value_t = 0.0, value_name = "RATIO", value_parser = parse_ratio)]
    new_flow_ratio: f64,
    /// Packets handed to the engine at once, 1 to 256.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    batch: u16,
    /// Packets per timed phase (raised to one per flow).
    #[arg(long, default_value_t = 2_000_000)]
    packets: usize,
    /// One-Service updates to time (0: none).
    #[arg(long, default_value_t = 1_000)]
    updates: usize,
    /// Hand packets over unverified, so the engine checks their checksums as the kernel
    /// does at PREROUTING (by default they come verified, as from a NIC that checks them).
    #[arg(long)]
    verify_checksums: bool,
    /// Let the batches that grow the connection tables fault in their memory themselves,
    /// rather than a helper thread between batches (kubenat_core::offload).
    #[arg(long)]
    no_memory_helper: bool,
    /// Also write every timed batch and update, in the order they ran, to FILE as CSV
    /// (`phase,index,ns`): runs with the same arguments line up batch by batch
    /// (benches/batch-floor.sh compares them).
    #[arg(long, value_name = "FILE")]
    batch_times: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArg,
}

/// A count of at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least 1 is needed".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        Ok(_) => Err("a share is 0 to 1 (0.1: one packet in ten opens a connection)".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Bench {
    pub fn run(self) -> Result<(), Failure> {
        let config = kubenat_bench::run::Config {
            services: self.services,
            endpoints: self.endpoints,
            flows: self.flows,
            threads: self.threads,
            new_flow_ratio: self.new_flow_ratio,
            batch: usize::from(self.batch),
            packets: self.packets,
            updates: self.updates,
            seed: 42,
            verify_checksums: self.verify_checksums,
            memory_helper: !self.no_memory_helper,
        };
        // Opened first, so a path that cannot be written fails before a run of minutes.
        let batch_times = match &self.batch_times {
            Some(path) => Some((path, File::create(path).map_err(|e| cannot_write(path, e))?)),
            None => None,
        };
        let held = || Some(kubenat::memory::held());
        let spinner = phase_spinner();
        let mut phase = |what: &str| {
            if let Some(spinner) = &spinner {
                spinner.set_message(what.to_string());
            }
        };
        let report = kubenat_bench::run::run(&config, &held, &mut phase);
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        if let Some((path, file)) = batch_times {
            let mut out = BufWriter::new(file);
            kubenat_bench::in_order::write_csv(&report, &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| cannot_write(path, e))?;
        }
        emit_as(self.output.format, &report, kubenat::bench::text)
    }
}

fn cannot_write(path: &Path, error: std::io::Error) -> Failure {
    Failure::Runtime(format!("{}: {error}", path.display()))
}
