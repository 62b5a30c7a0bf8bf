//! `kubenat completions`: a shell's completion script.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Failure, emit, examples};

/// A completion script for a shell, on standard output.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat completions bash > /etc/bash_completion.d/kubenat",
    "kubenat completions zsh > \"${fpath[1]}/_kubenat\"",
    "kubenat completions fish > ~/.config/fish/completions/kubenat.fish",
    "source <(kubenat completions bash)",
))]
pub struct Completions {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

impl Completions {
    pub fn run(self) -> Result<(), Failure> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "kubenat", &mut script);
        emit(script)
    }
}
