//! `kubenat replay`: a capture through the node's rules, written out as it leaves.
//!
//! The replay reads a capture file by seeking in it and writes one; `-` (a pipe) is spooled
//! through a temporary file on either side.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use kubenat_core::Engine;
use kubenat_replay::{CaptureChecksums, ReplayError, Summary, replay_with};

use super::{
    Failure, NodeArgs, OutputArg, byte_bar, emit, emit_file, emit_stderr, examples, is_stdio,
    one_stdin, render,
};

/// Every packet of a capture through the node's rules, written out as it leaves.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat replay --cluster dump.yaml --node worker-1 --in capture.pcap --out after.pcap",
    "kubenat replay --cluster dump.yaml --node worker-1 --in capture.pcapng --out after.pcap -o json",
    "tcpdump -i eth0 -w - -c 1000 | kubenat replay --cluster dump.yaml --node worker-1 --in - --out - \\",
    "    | tcpdump -r - -n      # the summary goes to stderr when the capture has stdout",
    "kubenat replay --cluster dump.yaml --node worker-1 --in out.pcap --out sent.pcap --path local-out",
))]
pub struct Replay {
    #[command(flatten)]
    node: NodeArgs,
    /// The capture to replay: pcap or pcapng; Ethernet, raw IP, Linux cooked (SLL, SLL2);
    /// `-` reads standard input.
    #[arg(long = "in", value_name = "IN.pcap")]
    input: PathBuf,
    /// Where to write the packets that leave the node: a pcap of the input's link type;
    /// `-` writes standard output, and the summary then goes to standard error.
    #[arg(long = "out", value_name = "OUT.pcap")]
    out: PathBuf,
    /// Whose traffic the capture holds: what the node forwards, or what it sends itself.
    #[arg(long, value_enum, default_value = "forward")]
    path: PathArg,
    /// Take every TCP, UDP, SCTP and ICMP checksum as verified (as from a NIC that checks
    /// them) instead of dropping packets whose checksum is wrong, as the kernel does.
    #[arg(long)]
    trust_checksums: bool,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum PathArg {
    /// Traffic the node forwards: arriving hook, then leaving hook.
    Forward,
    /// Traffic the node itself sends.
    LocalOut,
}

/// Where the replay reads and writes: the user's files, or temporary ones standing in for
/// standard input and output.
struct Files {
    input: PathBuf,
    output: PathBuf,
    _spooled_in: Option<tempfile::TempPath>,
    spooled_out: Option<tempfile::TempPath>,
}

impl Files {
    fn open(input: &Path, out: &Path) -> Result<Files, Failure> {
        let spooled_in = if is_stdio(input) {
            let mut file = tempfile::NamedTempFile::new()
                .map_err(|e| Failure::Runtime(format!("a temporary file for stdin: {e}")))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut file)
                .and_then(|_| file.flush())
                .map_err(|e| Failure::Input(format!("-: reading standard input: {e}")))?;
            Some(file.into_temp_path())
        } else {
            None
        };
        let spooled_out = if is_stdio(out) {
            let file = tempfile::NamedTempFile::new()
                .map_err(|e| Failure::Runtime(format!("a temporary file for stdout: {e}")))?;
            Some(file.into_temp_path())
        } else {
            None
        };
        Ok(Files {
            input: spooled_in.as_ref().map_or(input, |p| p).to_path_buf(),
            output: spooled_out.as_ref().map_or(out, |p| p).to_path_buf(),
            _spooled_in: spooled_in,
            spooled_out,
        })
    }

    /// The replay's error, naming the user's file (`-` for a standard stream), with its
    /// exit code: the output failing is the system's fault, the rest is the input's.
    fn failure(&self, error: ReplayError, input: &Path, out: &Path) -> Failure {
        let named = |file: PathBuf| {
            if file == self.output {
                out.to_path_buf()
            } else if file == self.input {
                input.to_path_buf()
            } else {
                file
            }
        };
        let output_failed = matches!(&error, ReplayError::Io { file, .. } if *file == self.output);
        let error = match error {
            ReplayError::Io { file, source } => ReplayError::Io {
                file: named(file),
                source,
            },
            ReplayError::NotACapture { file } => ReplayError::NotACapture { file: named(file) },
            ReplayError::Malformed {
                file,
                record,
                detail,
            } => ReplayError::Malformed {
                file: named(file),
                record,
                detail,
            },
            ReplayError::UnsupportedLinkType { file, link_type } => {
                ReplayError::UnsupportedLinkType {
                    file: named(file),
                    link_type,
                }
            }
            other => other,
        };
        if output_failed {
            Failure::Runtime(error.to_string())
        } else {
            Failure::Input(error.to_string())
        }
    }

    /// Copies the spooled capture to standard output.
    fn finish(&self) -> Result<(), Failure> {
        match &self.spooled_out {
            Some(path) => emit_file(path),
            None => Ok(()),
        }
    }
}

impl Replay {
    pub fn run(self) -> Result<(), Failure> {
        one_stdin(
            "replay",
            self.node.stdin_count() + usize::from(is_stdio(&self.input)),
        )?;
        let state = self.node.load()?;
        let mut engine = Engine::new(&state);
        let path = match self.path {
            PathArg::Forward => kubenat_core::Path::Forward,
            PathArg::LocalOut => kubenat_core::Path::LocalOut,
        };
        let files = Files::open(&self.input, &self.out)?;
        let bar = byte_bar();
        let mut progress = |read: u64, total: u64| {
            if let Some(bar) = &bar {
                bar.set_length(total);
                bar.set_position(read);
            }
        };
        let checksums = match self.trust_checksums {
            true => CaptureChecksums::Trust,
            false => CaptureChecksums::Verify,
        };
        let replayed = replay_with(
            &mut engine,
            &files.input,
            &files.output,
            path,
            checksums,
            &mut progress,
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        // What was written reaches standard output as it would a file, even when the
        // capture turned out malformed part way.
        files.finish()?;
        let summary = replayed.map_err(|e| files.failure(e, &self.input, &self.out))?;
        let report = render(self.output.format, &summary, |s| text(s, &self.out));
        if is_stdio(&self.out) {
            emit_stderr(report)
        } else {
            emit(report)
        }
    }
}

/// The summary for people.
fn text(summary: &Summary, out: &Path) -> String {
    let written_to = if is_stdio(out) {
        "standard output".to_string()
    } else {
        out.display().to_string()
    };
    let mut text = format!(
        "{} packets, {} written to {written_to}\n",
        summary.packets, summary.written
    );
    for (verdict, count) in &summary.by_verdict {
        let _ = writeln!(text, "  {verdict:<11} {count}");
    }
    for (reason, count) in &summary.by_reason {
        let _ = writeln!(text, "    {reason:<30} {count}");
    }
    text
}
