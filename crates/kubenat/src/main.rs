//! `kubenat`: kube-proxy's Service data plane in userspace. With no arguments it simulates
//! the course notes' network and prints each request's journey, hop by hop.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kubenat::{nft, probe, replay, report, rules, scale, story};
use kubenat_core::{ClusterState, Engine, Path, Protocol};
use kubenat_sim::generate::ClusterSize;

const EXAMPLES: &str = "\
Examples:
  kubenat                                   # the course notes' network simulated, each request hop by hop
  kubenat story                             # every flow of the notes traced through a node's rules
  kubenat trace --cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml \\
      --node nodoa --src 192.168.0.10 --dst 192.168.0.101 --dport 30880
  kubenat trace --cluster dump.yaml --node worker-1 --proto udp --src 10.244.1.5:5353 \\
      --dst 10.96.0.10 --dport 53 --output json
  kubenat rules --cluster dump.yaml --node worker-1 --format nft > rules.nft && nft -c -f rules.nft
  kubenat replay --cluster dump.yaml --node worker-1 --in capture.pcap --out after.pcap
  kubenat simulate --requests 6 --seed 7 --pcap captures/ --svg journey.svg
  kubenat simulate examples/miempresa/failover.yaml
  kubenat simulate --generate nodes=1000,pods=10000,services=1000 --output json
  kubenat bench --services 1000000 --endpoints 4 --flows 1000000 --threads 2 --output json";

/// Printed after the notes' journey when `kubenat` runs with no arguments.
const AFTER_THE_JOURNEY: &str = "
More: `kubenat simulate --help` (other requests, seeds, failures, captures, a diagram,
generated clusters), `kubenat story` (each flow traced through the rules),
`kubenat trace --help` (one packet on one node), `kubenat --help` (everything).
";

#[derive(Parser)]
#[command(name = "kubenat", version, about = "kube-proxy's Service NAT in userspace: simulate a cluster, trace, inspect and replay traffic through a node's rules", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Clone, Copy, ValueEnum)]
enum RulesFormat {
    Text,
    Json,
    Nft,
}

#[derive(Clone, Copy, ValueEnum)]
enum PathArg {
    /// Traffic the node forwards: arriving hook, then leaving hook.
    Forward,
    /// Traffic the node itself sends.
    LocalOut,
}

/// Manifests and the node whose rules apply.
#[derive(clap::Args)]
struct Node {
    /// Kubernetes YAML or JSON (`kubectl get services,endpointslices,nodes -A -o yaml`), and
    /// optionally a KubeProxyConfiguration; repeat for several files.
    #[arg(long = "cluster", value_name = "FILE", required = true)]
    clusters: Vec<PathBuf>,
    /// The node whose kube-proxy rules to use.
    #[arg(long)]
    node: String,
}

#[derive(Subcommand)]
enum Command {
    /// Where one packet goes on a node, and why.
    #[command(after_help = EXAMPLES)]
    Trace {
        #[command(flatten)]
        node: Node,
        #[arg(long, value_enum, default_value = "tcp")]
        proto: ProtocolArg,
        /// Source address, with an optional port (IP, IP:PORT or [IPv6]:PORT). One of the
        /// node's own addresses is traced as traffic the node sends.
        #[arg(long, value_name = "IP[:PORT]")]
        src: String,
        #[arg(long, value_name = "IP")]
        dst: IpAddr,
        #[arg(long, value_name = "PORT")]
        dport: u16,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The node's compiled tables.
    #[command(after_help = EXAMPLES)]
    Rules {
        #[command(flatten)]
        node: Node,
        #[arg(long, value_enum, default_value = "text")]
        format: RulesFormat,
    },
    /// The course notes' company network, simulated: a PC's requests travel through the
    /// balancer, every node's rules, the ingress controller, WordPress and MariaDB.
    #[command(after_help = EXAMPLES)]
    Simulate {
        /// `notes` (the course notes' network) or a scenario YAML file, such as
        /// examples/miempresa/failover.yaml.
        #[arg(default_value = "notes")]
        scenario: String,
        /// Instead of a scenario, a generated cluster of this size: the cluster DNS, web
        /// Services and their pods, and client pods requesting them; prints how fast it ran
        /// and the memory it took instead of every journey.
        #[arg(
            long,
            value_name = "nodes=N,pods=N,services=N",
            conflicts_with = "scenario"
        )]
        generate: Option<ClusterSize>,
        /// HTTP requests the PC makes, or each client pod of a generated cluster (default: 4,
        /// 1 when generated, or the scenario file's).
        #[arg(long)]
        requests: Option<u32>,
        /// Same seed, same bytes out (default: 1, or the scenario file's).
        #[arg(long)]
        seed: Option<u64>,
        /// Write one pcap per link (the LAN, each pod's veth) into this directory.
        #[arg(long, value_name = "DIR")]
        pcap: Option<PathBuf>,
        /// Draw the first request's journey as an SVG sequence diagram.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Every flow of the course notes traced through the node's rules and explained, and
    /// wp-service's round robin.
    #[command(after_help = EXAMPLES)]
    Story,
    /// Rule lookup and rewrite at scale: a synthetic cluster and traffic, measured.
    #[command(after_help = EXAMPLES)]
    Bench {
        #[arg(long, default_value_t = 10_000)]
        services: usize,
        #[arg(long, default_value_t = 4)]
        endpoints: usize,
        /// Distinct connections (the conntrack table holds them all).
        #[arg(long, default_value_t = 100_000)]
        flows: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Share of packets that open a new connection in the mixed phase.
        #[arg(long, default_value_t = 0.0)]
        new_flow_ratio: f64,
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
        batch: u16,
        /// Packets per timed phase (at least one per flow).
        #[arg(long, default_value_t = 2_000_000)]
        packets: usize,
        /// One-Service updates to time.
        #[arg(long, default_value_t = 1_000)]
        updates: usize,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Every packet of a capture through the node's rules, written out as it leaves.
    #[command(after_help = EXAMPLES)]
    Replay {
        #[command(flatten)]
        node: Node,
        /// pcap or pcapng: Ethernet, raw IP, Linux cooked (SLL, SLL2).
        #[arg(long = "in", value_name = "IN.pcap")]
        input: PathBuf,
        /// pcap of the same link type.
        #[arg(long = "out", value_name = "OUT.pcap")]
        output_file: PathBuf,
        #[arg(long, value_enum, default_value = "forward")]
        path: PathArg,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// A failure the user caused: printed, exit code 1.
struct BadInput(String);

fn load(node: &Node) -> Result<ClusterState, BadInput> {
    let manifests = kubenat_k8s::load(&node.clusters).map_err(|errors| {
        BadInput(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    for warning in &manifests.warnings {
        eprintln!("warning: {warning}");
    }
    manifests
        .cluster_state(&node.node)
        .map_err(|e| BadInput(e.to_string()))
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; a bare IP gets an ephemeral port.
fn parse_source(src: &str) -> Result<SocketAddr, BadInput> {
    const DEFAULT_SOURCE_PORT: u16 = 50_000;
    if let Ok(ip) = src.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_SOURCE_PORT));
    }
    src.parse::<SocketAddr>()
        .map_err(|_| BadInput(format!("--src {src}: expected IP, IP:PORT or [IPv6]:PORT")))
}

fn trace(
    node: &Node,
    proto: ProtocolArg,
    src: &str,
    dst: IpAddr,
    dport: u16,
    output: Output,
) -> Result<(), BadInput> {
    let src = parse_source(src)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(BadInput(format!(
            "--src {src} and --dst {dst} are of different address families"
        )));
    }
    let state = load(node)?;
    let protocol = match proto {
        ProtocolArg::Tcp => Protocol::Tcp,
        ProtocolArg::Udp => Protocol::Udp,
        ProtocolArg::Sctp => Protocol::Sctp,
    };
    let result = probe::trace(&state, protocol, src, SocketAddr::new(dst, dport));
    match output {
        Output::Json => emit(format!("{}\n", to_json(&report::json(&result)))),
        Output::Text => emit(report::text(&result, &node.node)),
    }
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("our JSON types always serialize")
}

fn simulate(
    scenario: &str,
    requests: Option<u32>,
    seed: Option<u64>,
    options: kubenat_sim::Options,
    output: Output,
) -> Result<(), BadInput> {
    let mut scenario = if scenario == "notes" {
        kubenat_sim::Scenario::notes(requests.unwrap_or(4))
    } else {
        kubenat_sim::Scenario::from_yaml_file(std::path::Path::new(scenario)).map_err(BadInput)?
    };
    if let Some(requests) = requests {
        scenario = scenario.with_requests(requests);
    }
    if let Some(seed) = seed {
        scenario = scenario.with_seed(seed);
    }
    let report = kubenat_sim::run_with(&scenario, &options).map_err(BadInput)?;
    match output {
        Output::Json => emit(format!("{}\n", report.to_json())),
        Output::Text => emit(&report),
    }
    Ok(())
}

/// A generated cluster, played and measured: build and run timed apart, memory from the
/// counting allocator.
fn simulate_generated(
    size: ClusterSize,
    requests: Option<u32>,
    seed: Option<u64>,
    options: &kubenat_sim::Options,
    output: Output,
) -> Result<(), BadInput> {
    let bad = |e: String| BadInput(format!("--generate {size}: {e}"));
    let mut scenario = kubenat_sim::Scenario::generated(size, seed.unwrap_or(1)).map_err(bad)?;
    if let Some(requests) = requests {
        scenario = scenario.with_requests(requests);
    }
    let started = std::time::Instant::now();
    let mut sim = kubenat_sim::sim::Sim::new(&scenario).map_err(bad)?;
    let built = started.elapsed();
    let run =
        kubenat_sim::play(&mut sim, &scenario, options.pcap_dir.as_deref()).map_err(BadInput)?;
    let ran = started.elapsed() - built;
    // Tearing the simulation down (1,000 engines at scale) is neither building nor running.
    drop(sim);
    if let Some(path) = &options.svg {
        kubenat_sim::write_svg(&run.report, path).map_err(BadInput)?;
    }
    let peak = PEAK_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    let measured = scale::Measured::new(size, &run.report, built, ran, Some(peak));
    match output {
        Output::Json => emit(format!("{}\n", to_json(&measured))),
        Output::Text => emit(measured.text()),
    }
    Ok(())
}

fn rules_command(node: &Node, format: RulesFormat) -> Result<(), BadInput> {
    let state = load(node)?;
    let engine = Engine::new(&state);
    match format {
        RulesFormat::Text => emit(rules::text(engine.tables(), &node.node)),
        RulesFormat::Json => emit(format!(
            "{}\n",
            to_json(&rules::json(engine.tables(), &node.node))
        )),
        RulesFormat::Nft => emit(nft::render(engine.tables())),
    }
    Ok(())
}

fn replay_command(
    node: &Node,
    input: &std::path::Path,
    out: &std::path::Path,
    path: PathArg,
    output: Output,
) -> Result<(), BadInput> {
    let state = load(node)?;
    let mut engine = Engine::new(&state);
    let path = match path {
        PathArg::Forward => Path::Forward,
        PathArg::LocalOut => Path::LocalOut,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .expect("constant template"),
        );
        bar
    });
    let mut progress = |read: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(read);
        }
    };
    let summary = replay::replay(&mut engine, input, out, path, &mut progress)
        .map_err(|e| BadInput(e.to_string()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match output {
        Output::Json => emit(format!("{}\n", to_json(&summary))),
        Output::Text => {
            let mut text = format!(
                "{} packets, {} written to {}\n",
                summary.packets,
                summary.written,
                out.display()
            );
            for (verdict, count) in &summary.by_verdict {
                let _ = writeln!(text, "  {verdict:<11} {count}");
            }
            for (reason, count) in &summary.by_reason {
                let _ = writeln!(text, "    {reason:<30} {count}");
            }
            emit(text);
        }
    }
    Ok(())
}

/// Counts the bytes the process holds, and the most it held, so `kubenat bench` and
/// `kubenat simulate --generate` can report memory. The packet path never allocates, so
/// the count costs nothing there. Underneath is mimalloc: compiling a million Services
/// makes a few million small allocations, and glibc's malloc took 2.5 times as long over
/// them (docs/benchmarks.md, "Compile and the allocator").
struct CountingAllocator;

static HELD_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static PEAK_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts `grown` more bytes held.
fn held_more(grown: u64) {
    let held = HELD_BYTES.fetch_add(grown, std::sync::atomic::Ordering::Relaxed) + grown;
    PEAK_BYTES.fetch_max(held, std::sync::atomic::Ordering::Relaxed);
}

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        held_more(layout.size() as u64);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HELD_BYTES.fetch_sub(layout.size() as u64, std::sync::atomic::Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        held_more(new_size as u64);
        HELD_BYTES.fetch_sub(layout.size() as u64, std::sync::atomic::Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn bench_command(config: kubenat_bench::run::Config, output: Output) {
    let held = || Some(HELD_BYTES.load(std::sync::atomic::Ordering::Relaxed));
    let report = kubenat_bench::run::run(&config, &held);
    match output {
        Output::Json => emit(format!("{}\n", to_json(&report))),
        Output::Text => emit(bench_text(&report)),
    }
}

fn bench_text(r: &kubenat_bench::run::Report) -> String {
    let c = &r.config;
    let mut out = String::new();
    let phase = |out: &mut String, name: &str, t: &kubenat_bench::run::Throughput| {
        let _ = writeln!(
            out,
            "{name:<16} {:>7.2} Mpps  {:>7.1} ns/packet  batch p50 {} ns, p99 {} ns",
            t.mpps, t.ns_per_packet, t.batch_p50_ns, t.batch_p99_ns
        );
    };
    let _ = writeln!(
        out,
        "kubenat bench: {} services x {} endpoints, {} flows, {} thread(s), batch {}",
        c.services, c.endpoints, c.flows, c.threads, c.batch
    );
    let _ = writeln!(out, "{:<16} {:>7.3} s", "compile", r.compile_seconds);
    let _ = writeln!(
        out,
        "{:<16} hit {:.1} ns, miss {:.1} ns",
        "service lookup", r.lookup_hit_ns, r.lookup_miss_ns
    );
    let _ = writeln!(
        out,
        "{:<16} {:>7.2} M random lookups/s into a 1M-key table (the memory ceiling)",
        "ceiling", r.ceiling_mlookups_per_second
    );
    phase(&mut out, "new flows", &r.new_flows);
    phase(&mut out, "established", &r.established);
    let _ = writeln!(
        out,
        "{:<16} {:>7.0} %",
        "  of ceiling",
        100.0 * r.established.mpps / r.ceiling_mlookups_per_second.max(1e-9)
    );
    if let Some(m) = &r.mixed {
        phase(&mut out, "mixed", m);
    }
    if let Some(t) = &r.threaded {
        phase(&mut out, &format!("{} threads", c.threads), t);
    }
    let _ = writeln!(
        out,
        "{:<16} p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} one-Service updates)",
        "update",
        r.update.p50_ns as f64 / 1e3,
        r.update.p99_ns as f64 / 1e3,
        r.update.max_ns as f64 / 1e3,
        r.update.count
    );
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "{:<16} tables {:.1} MB ({:.0} B per service port, {:.0} B of it on the packet path), conntrack {:.1} MB ({:.0} B per connection), {:.0} B per update",
            "memory",
            m.tables_bytes as f64 / 1e6,
            m.bytes_per_service_port,
            m.packet_path_bytes_per_service_port,
            m.conntrack_bytes as f64 / 1e6,
            m.bytes_per_connection,
            m.bytes_per_update
        );
    }
    out
}

/// Writes `text` to standard output. A reader that went away (`kubenat | head`) ends the
/// command quietly, as Unix tools end on SIGPIPE; any other write error is reported.
fn emit(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = write!(out, "{text}").and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("kubenat: cannot write the output: {error}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => simulate(
            "notes",
            None,
            None,
            kubenat_sim::Options::default(),
            Output::Text,
        )
        .map(|()| emit(AFTER_THE_JOURNEY)),
        Some(Command::Story) => {
            emit(story::render());
            Ok(())
        }
        Some(Command::Trace {
            node,
            proto,
            src,
            dst,
            dport,
            output,
        }) => trace(node, *proto, src, *dst, *dport, *output),
        Some(Command::Rules { node, format }) => rules_command(node, *format),
        Some(Command::Simulate {
            scenario,
            generate,
            requests,
            seed,
            pcap,
            svg,
            output,
        }) => {
            let options = kubenat_sim::Options {
                pcap_dir: pcap.clone(),
                svg: svg.clone(),
            };
            match generate {
                Some(size) => simulate_generated(*size, *requests, *seed, &options, *output),
                None => simulate(scenario, *requests, *seed, options, *output),
            }
        }
        Some(Command::Bench {
            services,
            endpoints,
            flows,
            threads,
            new_flow_ratio,
            batch,
            packets,
            updates,
            output,
        }) => {
            let config = kubenat_bench::run::Config {
                services: *services,
                endpoints: *endpoints,
                flows: *flows,
                threads: (*threads).max(1),
                new_flow_ratio: *new_flow_ratio,
                batch: usize::from(*batch),
                packets: *packets,
                updates: *updates,
                seed: 42,
            };
            bench_command(config, *output);
            Ok(())
        }
        Some(Command::Replay {
            node,
            input,
            output_file,
            path,
            output,
        }) => replay_command(node, input, output_file, *path, *output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(BadInput(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}
