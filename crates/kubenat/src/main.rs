//! `kubenat`: kube-proxy's Service data plane in userspace. With no arguments it tells the
//! story of the course notes' cluster, flow by flow.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kubenat::{nft, probe, replay, report, rules, story};
use kubenat_core::{ClusterState, Engine, Path, Protocol};

const EXAMPLES: &str = "\
Examples:
  kubenat                                   # the course notes' cluster, every flow explained
  kubenat trace --cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml \\
      --node nodoa --src 192.168.0.10 --dst 192.168.0.101 --dport 30880
  kubenat trace --cluster dump.yaml --node worker-1 --proto udp --src 10.244.1.5:5353 \\
      --dst 10.96.0.10 --dport 53 --output json
  kubenat rules --cluster dump.yaml --node worker-1 --format nft > rules.nft && nft -c -f rules.nft
  kubenat replay --cluster dump.yaml --node worker-1 --in capture.pcap --out after.pcap";

#[derive(Parser)]
#[command(name = "kubenat", version, about = "kube-proxy's Service NAT in userspace: trace, inspect and replay traffic through a node's rules", after_help = EXAMPLES)]
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
        Output::Json => println!("{}", to_json(&report::json(&result))),
        Output::Text => print!("{}", report::text(&result, &node.node)),
    }
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("our JSON types always serialize")
}

fn rules_command(node: &Node, format: RulesFormat) -> Result<(), BadInput> {
    let state = load(node)?;
    let engine = Engine::new(&state);
    match format {
        RulesFormat::Text => print!("{}", rules::text(engine.tables(), &node.node)),
        RulesFormat::Json => println!("{}", to_json(&rules::json(engine.tables(), &node.node))),
        RulesFormat::Nft => print!("{}", nft::render(engine.tables())),
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
        Output::Json => println!("{}", to_json(&summary)),
        Output::Text => {
            println!(
                "{} packets, {} written to {}",
                summary.packets,
                summary.written,
                out.display()
            );
            for (verdict, count) in &summary.by_verdict {
                println!("  {verdict:<11} {count}");
            }
            for (reason, count) in &summary.by_reason {
                println!("    {reason:<30} {count}");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => {
            print!("{}", story::render());
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
