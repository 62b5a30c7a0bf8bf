//! The `kubenat` command line: one module per subcommand, each an `Args` struct with a `run`,
//! and what they share: the output formats, the manifests and node, standard streams for
//! `-`, failures and their exit codes.

pub mod bench;
pub mod completions;
pub mod man;
pub mod replay;
pub mod rules;
pub mod run;
pub mod simulate;
pub mod story;
pub mod trace;

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde::Serialize;

const OVERVIEW: &str = "\
Examples:
  kubenat                                   # the course notes' network simulated, each request hop by hop
  kubenat story                             # every flow of the notes traced through a node's rules
  kubenat trace --cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml \\
      --node nodoa --src 192.168.0.10 --dst 192.168.0.101:30880
  kubectl get services,endpointslices,nodes -A -o json | kubenat trace --cluster - --node worker-1 \\
      --proto udp --src 10.244.1.5:5353 --dst 10.96.0.10:53 -o json
  kubenat rules --cluster dump.yaml --node worker-1 -o nft > rules.nft && nft -c -f rules.nft
  kubenat replay --cluster dump.yaml --node worker-1 --in capture.pcap --out after.pcap
  ip netns exec node1 kubenat run --cluster dump.yaml --node worker-1   # live traffic, as root
  kubenat simulate examples/miempresa/failover.yaml --summary
  kubenat simulate --generate nodes=1000,pods=10000,services=1000 -o json
  kubenat bench --services 1000000 --endpoints 4 --flows 1000000 --threads 2 -o json
  kubenat completions bash > /etc/bash_completion.d/kubenat
  kubenat man | man -l -

Every command that reports takes -o/--output text|json|yaml; every file argument takes -
for standard input or output. docs/cli.md describes each JSON document.

Exit codes:
  0  success
  1  a bad input file: manifests, a capture, a scenario file
  2  a rejected argument (unknown flag, value out of range, conflicting flags)
  3  a runtime or system failure (writing the output, a capture, a diagram; kubenat run
     not root, or the network namespace refused a change)";

#[derive(Parser)]
#[command(
    name = "kubenat",
    version,
    about = "kube-proxy's Service NAT in userspace: simulate a cluster, trace, inspect and replay traffic through a node's rules, or run them on live traffic",
    after_help = OVERVIEW
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    Trace(trace::Trace),
    Rules(rules::Rules),
    Simulate(simulate::Simulate),
    Story(story::Story),
    Bench(bench::Bench),
    Replay(replay::Replay),
    Run(run::Run),
    Completions(completions::Completions),
    Man(man::Man),
}

impl Cli {
    /// Runs the command; with none, simulates the notes.
    pub fn run(self) -> Result<(), Failure> {
        if !matches!(self.command, Some(Command::Run(_))) {
            kubenat::memory::keep_freed_pages();
        }
        match self.command {
            None => simulate::notes(),
            Some(Command::Trace(c)) => c.run(),
            Some(Command::Rules(c)) => c.run(),
            Some(Command::Simulate(c)) => c.run(),
            Some(Command::Story(c)) => c.run(),
            Some(Command::Bench(c)) => c.run(),
            Some(Command::Replay(c)) => c.run(),
            Some(Command::Run(c)) => c.run(),
            Some(Command::Completions(c)) => c.run(),
            Some(Command::Man(c)) => c.run(),
        }
    }
}

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// A manifest, capture or scenario file that cannot be used: exit 1.
    Input(String),
    /// An argument rejected after parsing, printed as clap prints its own: exit 2.
    Usage(clap::Error),
    /// Writing the output or another file failed: exit 3.
    Runtime(String),
}

impl Failure {
    /// Prints the failure on stderr and gives its exit code.
    pub fn exit(self) -> ExitCode {
        match self {
            Failure::Input(message) => {
                eprintln!("{message}");
                ExitCode::from(1)
            }
            Failure::Usage(error) => {
                let _ = error.print();
                ExitCode::from(2)
            }
            Failure::Runtime(message) => {
                eprintln!("kubenat: {message}");
                ExitCode::from(3)
            }
        }
    }
}

/// A usage error of `subcommand`, in clap's words and with its usage line.
pub fn usage(subcommand: &str, kind: clap::error::ErrorKind, message: String) -> Failure {
    let mut command = Cli::command();
    command.build();
    let command = command
        .find_subcommand_mut(subcommand)
        .expect("a subcommand of ours");
    Failure::Usage(command.error(kind, message))
}

/// How a command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document (docs/cli.md describes each command's fields).
    Json,
    /// The same document as the JSON, in YAML.
    Yaml,
}

/// `-o/--output`, for the commands that report text, JSON or YAML.
#[derive(clap::Args, Clone, Copy)]
pub struct OutputArg {
    /// Output format: text for people, json or yaml (the same document) for programs.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub format: Format,
}

/// Manifests and the node whose rules apply.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// Kubernetes YAML or JSON (`kubectl get services,endpointslices,nodes -A -o yaml`), and
    /// optionally a KubeProxyConfiguration; repeat for several files; `-` reads standard
    /// input.
    #[arg(long = "cluster", value_name = "FILE", required = true)]
    pub clusters: Vec<PathBuf>,
    /// The node whose kube-proxy rules to use (its name in the manifests).
    #[arg(long, value_name = "NAME")]
    pub node: String,
    /// Refuse manifests with fields the Kubernetes schema does not have (`spec.clustreIP`,
    /// a KubeProxyConfiguration's `mdoe`): exit 1 instead of warning.
    #[arg(long)]
    pub strict: bool,
}

impl NodeArgs {
    /// How many of the manifest files are standard input.
    pub fn stdin_count(&self) -> usize {
        self.clusters.iter().filter(|p| is_stdio(p)).count()
    }

    /// Runs `work` (compiling the node's rules: seconds at a million Services) under a
    /// spinner on a terminal.
    pub fn compiling<T>(&self, work: impl FnOnce() -> T) -> T {
        let spinner = phase_spinner();
        if let Some(spinner) = &spinner {
            spinner.set_message(format!("compiling the rules of {}", self.node));
        }
        let done = work();
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        done
    }

    /// Reads the manifests and compiles the node's view. Warnings go to stderr, and so does
    /// a progress bar on a terminal.
    pub fn load(&self) -> Result<kubenat_core::ClusterState, Failure> {
        let options = kubenat_k8s::LoadOptions {
            strict: self.strict,
        };
        let bar = byte_bar();
        // The importer reports after every object: redraw only when the file changes or
        // another MiB has gone by.
        let mut shown: Option<(String, u64)> = None;
        let mut progress = |at: &kubenat_k8s::LoadProgress<'_>| {
            let Some(bar) = &bar else {
                return;
            };
            let same_file = shown.as_ref().is_some_and(|(file, _)| file == at.file);
            let last = shown.as_ref().map_or(0, |&(_, bytes)| bytes);
            if same_file && at.bytes_read < last + (1 << 20) {
                return;
            }
            if !same_file {
                bar.set_message(format!("reading {}", at.file));
            }
            bar.set_length(at.file_bytes.unwrap_or(at.bytes_read));
            bar.set_position(at.bytes_read);
            shown = Some((at.file.to_string(), at.bytes_read));
        };
        let loaded = kubenat_k8s::load_with(&self.clusters, &options, &mut progress);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let manifests = loaded.map_err(|errors| {
            Failure::Input(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        for warning in &manifests.warnings {
            eprintln!("warning: {warning}");
        }
        manifests
            .into_cluster_state(&self.node)
            .map_err(|e| Failure::Input(e.to_string()))
    }
}

/// A progress bar in bytes on stderr, when stderr is a terminal.
pub fn byte_bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .expect("constant template"),
        );
        bar
    })
}

/// A progress bar in items (nodes, pods) on stderr, when stderr is a terminal.
pub fn count_bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .expect("constant template"),
        );
        bar
    })
}

/// A spinner with the step under way on stderr, when stderr is a terminal.
pub fn phase_spinner() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        spinner
    })
}

/// Rejects a second reader of standard input: only one argument can have it.
pub fn one_stdin(subcommand: &str, readers: usize) -> Result<(), Failure> {
    if readers > 1 {
        return Err(usage(
            subcommand,
            clap::error::ErrorKind::ArgumentConflict,
            "only one file argument can be `-` (standard input)".into(),
        ));
    }
    Ok(())
}

/// `-`: standard input or output in place of a file.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Pretty JSON and a final newline.
pub fn to_json(value: &impl Serialize) -> String {
    let mut json = serde_json::to_string_pretty(value).expect("our JSON types always serialize");
    json.push('\n');
    json
}

/// The same document as [`to_json`], in YAML.
pub fn to_yaml(value: &impl Serialize) -> String {
    serde_saphyr::to_string(value).expect("our YAML types always serialize")
}

/// Writes `value` to stdout in `format`; `text` renders it for people.
pub fn emit_as<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), Failure> {
    emit(render(format, value, text))
}

/// `value` in `format`.
pub fn render<T: Serialize>(format: Format, value: &T, text: impl FnOnce(&T) -> String) -> String {
    match format {
        Format::Text => text(value),
        Format::Json => to_json(value),
        Format::Yaml => to_yaml(value),
    }
}

/// Writes `bytes` to standard output. A reader that went away (`kubenat | head`) ends the
/// command quietly, as Unix tools end on SIGPIPE; any other write error is a runtime
/// failure.
pub fn emit(bytes: impl AsRef<[u8]>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    written(out.write_all(bytes.as_ref()).and_then(|()| out.flush()))
}

/// Copies the file at `path` to standard output, as [`emit`] writes.
pub fn emit_file(path: &Path) -> Result<(), Failure> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    written(std::io::copy(&mut file, &mut out).and_then(|_| out.flush()))
}

fn written(result: std::io::Result<()>) -> Result<(), Failure> {
    match result {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(Failure::Runtime(format!(
            "cannot write the output: {error}"
        ))),
    }
}

/// Writes `bytes` to standard error (a report that gave standard output to a file's
/// contents).
pub fn emit_stderr(bytes: impl AsRef<[u8]>) -> Result<(), Failure> {
    let mut err = std::io::stderr().lock();
    err.write_all(bytes.as_ref())
        .and_then(|()| err.flush())
        .map_err(|e| Failure::Runtime(format!("cannot write to standard error: {e}")))
}

/// The examples block of a subcommand's help.
macro_rules! examples {
    ($($line:expr),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}
pub(crate) use examples;
