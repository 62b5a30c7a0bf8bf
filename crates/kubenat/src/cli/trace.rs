//! `kubenat trace`: where one packet goes on a node, and why.

use std::net::{IpAddr, SocketAddr};

use clap::ValueEnum;
use clap::error::ErrorKind;
use kubenat::probe::{self, DEFAULT_SOURCE_PORT, parse_address};
use kubenat::report;
use kubenat_core::Protocol;

use super::{Failure, NodeArgs, OutputArg, emit_as, examples, one_stdin, usage};

/// Where one packet goes on a node, and why.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat trace --cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml \\",
    "    --node nodoa --src 192.168.0.10 --dst 192.168.0.101:30880",
    "kubenat trace --cluster dump.yaml --node worker-1 --proto udp --src 10.244.1.5:5353 \\",
    "    --dst 10.96.0.10 --dport 53 -o json",
    "kubectl get svc,endpointslices,nodes -A -o yaml | kubenat trace --cluster - --node worker-1 \\",
    "    --src fd00:10:244::5 --dst '[fd00:10:96::a]:443'",
))]
pub struct Trace {
    #[command(flatten)]
    node: NodeArgs,
    /// The packet's transport protocol (its first packet: a TCP SYN, a UDP datagram, an
    /// SCTP INIT).
    #[arg(long, value_enum, default_value = "tcp")]
    proto: ProtocolArg,
    /// Source address, with an optional port (IP, IP:PORT or [IPv6]:PORT; without one,
    /// port 50000). One of the node's own addresses is traced as traffic the node sends.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_source)]
    src: SocketAddr,
    /// Destination address, with the port (IP:PORT or [IPv6]:PORT) or without it (IP, and
    /// the port in --dport).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_destination)]
    dst: Destination,
    /// Destination port, when --dst has none.
    #[arg(long, value_name = "PORT")]
    dport: Option<u16>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Tcp,
    Udp,
    Sctp,
}

/// `--dst`: an address and maybe its port.
#[derive(Clone, Copy, Debug)]
struct Destination {
    ip: IpAddr,
    port: Option<u16>,
}

fn parse_source(text: &str) -> Result<SocketAddr, String> {
    let (ip, port) = parse_address(text)?;
    Ok(SocketAddr::new(ip, port.unwrap_or(DEFAULT_SOURCE_PORT)))
}

fn parse_destination(text: &str) -> Result<Destination, String> {
    let (ip, port) = parse_address(text)?;
    Ok(Destination { ip, port })
}

impl Trace {
    /// The destination, from --dst and --dport: exactly one of them gives the port.
    fn destination(&self) -> Result<SocketAddr, Failure> {
        let port = match (self.dst.port, self.dport) {
            (Some(port), None) | (None, Some(port)) => port,
            (Some(_), Some(_)) => {
                return Err(usage(
                    "trace",
                    ErrorKind::ArgumentConflict,
                    "--dst gives a port and so does --dport: give it once".into(),
                ));
            }
            (None, None) => {
                return Err(usage(
                    "trace",
                    ErrorKind::MissingRequiredArgument,
                    "the destination port: --dst IP:PORT, or --dst IP with --dport PORT".into(),
                ));
            }
        };
        let dst = SocketAddr::new(self.dst.ip, port);
        if self.src.is_ipv4() != dst.is_ipv4() {
            return Err(usage(
                "trace",
                ErrorKind::ArgumentConflict,
                format!(
                    "--src {} and --dst {dst} are of different address families",
                    self.src
                ),
            ));
        }
        Ok(dst)
    }

    pub fn run(self) -> Result<(), Failure> {
        let dst = self.destination()?;
        one_stdin("trace", self.node.stdin_count())?;
        let state = self.node.load()?;
        let protocol = match self.proto {
            ProtocolArg::Tcp => Protocol::Tcp,
            ProtocolArg::Udp => Protocol::Udp,
            ProtocolArg::Sctp => Protocol::Sctp,
        };
        let result = self
            .node
            .compiling(|| probe::trace(state, protocol, self.src, dst));
        emit_as(self.output.format, &report::json(&result), |_| {
            report::text(&result, &self.node.node)
        })
    }
}
