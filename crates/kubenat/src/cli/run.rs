//! `kubenat run`: the node's Service NAT on the live traffic of this network namespace.

use std::io::Write as _;
use std::path::PathBuf;

use clap::error::ErrorKind;
use kubenat_live::{Attachment, Options, Signals};

use super::{Failure, NodeArgs, emit_stderr, examples, one_stdin, usage};

/// Take over the Service NAT of this network namespace (as root), until SIGINT or SIGTERM.
///
/// Traffic arriving on the interfaces and traffic the namespace sends to Service addresses
/// is routed through a TUN device into the node's engine; the namespace needs no NAT rules
/// of its own. Prints one line containing `ready` on standard output once packets flow
/// through kubenat; on SIGINT or SIGTERM puts back every device, rule and sysctl it changed
/// and exits 0. IPv4 only for now.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "ip netns exec node1 kubenat run --cluster examples/miempresa/cluster.yaml \\",
    "    --cluster examples/miempresa/kube-proxy.yaml --node nodoa",
    "kubenat run --cluster dump.yaml --node worker-1 --interface eth0 --interface cni0",
    "kubenat run --cleanup                 # after a run that was killed with SIGKILL",
))]
pub struct Run {
    /// Kubernetes YAML or JSON (`kubectl get services,endpointslices,nodes -A -o yaml`), and
    /// optionally a KubeProxyConfiguration; repeat for several files; `-` reads standard
    /// input.
    #[arg(
        long = "cluster",
        value_name = "FILE",
        required_unless_present = "cleanup"
    )]
    clusters: Vec<PathBuf>,
    /// The node this namespace is (its name in the manifests): its addresses answer
    /// NodePorts and masquerade.
    #[arg(long, value_name = "NAME", required_unless_present = "cleanup")]
    node: Option<String>,
    /// An interface whose arriving traffic goes through kubenat; repeat for several.
    /// Default: every interface of the namespace but lo.
    #[arg(long = "interface", value_name = "IF")]
    interfaces: Vec<String>,
    /// Refuse manifests with fields the Kubernetes schema does not have: exit 1 instead of
    /// warning.
    #[arg(long)]
    strict: bool,
    /// Print the counters as one JSON line on stderr every SECONDS (they are printed on
    /// SIGUSR1 in any case): verdicts, drop and reject reasons, connections, packets per
    /// second in and out.
    #[arg(long, value_name = "SECONDS", value_parser = parse_period)]
    stats: Option<std::time::Duration>,
    /// Undo what a run that was killed (or crashed) left changed in this network namespace,
    /// then exit. Safe to repeat: with nothing left, it does nothing.
    #[arg(long, conflicts_with_all = ["clusters", "node", "interfaces", "strict", "stats"])]
    cleanup: bool,
}

impl Run {
    pub fn run(self) -> Result<(), Failure> {
        if self.cleanup {
            let undone = kubenat_live::cleanup().map_err(|e| Failure::Runtime(e.to_string()))?;
            return emit_stderr(format!("kubenat run --cleanup: {undone} changes undone\n"));
        }
        // First, before the spinner or anything else starts a thread: a signal must never
        // reach a thread that would die of it without restoring the namespace.
        let signals = Signals::block()
            .map_err(|e| Failure::Runtime(format!("cannot block SIGINT and SIGTERM: {e}")))?;
        let Some(node) = self.node else {
            return Err(usage(
                "run",
                ErrorKind::MissingRequiredArgument,
                "--node NAME".into(),
            ));
        };
        let node = NodeArgs {
            clusters: self.clusters,
            node,
            strict: self.strict,
        };
        one_stdin("run", node.stdin_count())?;
        // Before the import allocates: every page the run touches is a base page.
        kubenat::memory::base_pages_only()
            .map_err(|e| Failure::Runtime(format!("cannot turn huge pages off: {e}")))?;
        let state = node.load()?;
        let options = Options {
            interfaces: self.interfaces,
            stats_every: self.stats,
        };
        // SIGHUP reads the --cluster files again; standard input cannot be read twice.
        let reload = || {
            if node.stdin_count() > 0 {
                return Err("--cluster - (standard input) cannot be read again".to_string());
            }
            node.load().map_err(|failure| match failure {
                Failure::Input(message) | Failure::Runtime(message) => message,
                Failure::Usage(error) => error.to_string(),
            })
        };
        let totals = kubenat_live::run(state, &options, &signals, announce, reload)
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        emit_stderr(format!(
            "kubenat run: stopped; {} packets in, {} out, {} refused by the kernel\n",
            totals.received, totals.sent, totals.send_errors
        ))
    }
}

/// A period of at least a millisecond, in seconds (`0.5`, `10`).
fn parse_period(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.001..=86_400.0).contains(&seconds) => {
            Ok(std::time::Duration::from_secs_f64(seconds))
        }
        Ok(_) => Err("a period is 0.001 to 86400 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The `ready` line, flushed at once: whoever started the run waits for it.
fn announce(at: &Attachment) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ready: tun {} steering {}",
        at.tun,
        at.interfaces.join(",")
    );
    let _ = out.flush();
}
