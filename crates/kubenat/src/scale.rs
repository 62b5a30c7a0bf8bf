//! `kubenat simulate --generate`: a generated cluster's run, measured: how much was
//! simulated, how fast, and in how much memory.

use std::fmt::Write as _;
use std::time::Duration;

use kubenat_sim::Report;
use kubenat_sim::generate::ClusterSize;
use kubenat_sim::report::ProgrammingLatency;
use serde::Serialize;

/// The figures of one run. The JSON of `--output json`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Measured {
    pub scenario: String,
    pub seed: u64,
    pub nodes: usize,
    pub pods: usize,
    pub services: usize,
    pub requests: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Requests lost to rollouts (`churn=N`; none without).
    pub lost: Option<usize>,
    /// From each EndpointSlice change to the last node applying it (`churn=N`).
    pub programming: Option<ProgrammingLatency>,
    /// Packets carried, counted once per link crossed.
    pub simulated_packets: u64,
    pub simulated_seconds: f64,
    pub events: u64,
    /// Building the network: the cluster compiled once, every node's engine, every pod's
    /// stack.
    pub build_seconds: f64,
    /// Playing it, to the report.
    pub run_seconds: f64,
    pub packets_per_wall_second: f64,
    pub wall_seconds_per_simulated_second: f64,
    /// The most bytes held at once, from the counting allocator (none when not counted).
    pub peak_bytes: Option<u64>,
}

impl Measured {
    pub fn new(
        size: ClusterSize,
        report: &Report,
        build: Duration,
        run: Duration,
        peak_bytes: Option<u64>,
    ) -> Measured {
        let s = &report.summary;
        let simulated_packets = s.links.iter().map(|l| l.packets).sum();
        let simulated_seconds = s.simulated_ns as f64 / 1e9;
        let run_seconds = run.as_secs_f64();
        Measured {
            scenario: report.scenario.clone(),
            seed: report.seed,
            nodes: size.nodes,
            pods: size.pods,
            services: size.services,
            requests: s.requests,
            succeeded: s.succeeded,
            failed: s.failed,
            lost: s.lost,
            programming: s.programming.clone(),
            simulated_packets,
            simulated_seconds,
            events: s.events,
            build_seconds: build.as_secs_f64(),
            run_seconds,
            packets_per_wall_second: simulated_packets as f64 / run_seconds.max(1e-9),
            wall_seconds_per_simulated_second: run_seconds / simulated_seconds.max(1e-9),
            peak_bytes,
        }
    }

    /// The figures for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {} (seed {})", self.scenario, self.seed);
        let _ = writeln!(
            out,
            "requests      {}: {} succeeded, {} failed",
            self.requests, self.succeeded, self.failed
        );
        if let Some(lost) = self.lost {
            let _ = writeln!(out, "churn         {lost} request(s) lost to rollouts");
        }
        if let Some(p) = &self.programming {
            let ms = |ns: u64| ns as f64 / 1e6;
            let _ = writeln!(
                out,
                "programming   {} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                p.changes,
                ms(p.p50_ns),
                ms(p.p99_ns),
                ms(p.max_ns)
            );
        }
        let _ = writeln!(
            out,
            "simulated     {:.3} s, {} packets, {} events",
            self.simulated_seconds, self.simulated_packets, self.events
        );
        let _ = writeln!(
            out,
            "wall          build {:.2} s, run {:.2} s",
            self.build_seconds, self.run_seconds
        );
        let _ = writeln!(
            out,
            "speed         {:.0} packets per wall second, {:.2} wall seconds per simulated second",
            self.packets_per_wall_second, self.wall_seconds_per_simulated_second
        );
        if let Some(peak) = self.peak_bytes {
            let _ = writeln!(out, "memory        peak {:.1} MB held", peak as f64 / 1e6);
        }
        out
    }
}
