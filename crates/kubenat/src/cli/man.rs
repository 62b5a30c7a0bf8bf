//! `kubenat man`: the manual page, in roff.

use clap::CommandFactory;
use clap::error::ErrorKind;

use super::{Cli, Failure, emit, examples, usage};

/// The manual page (roff) on standard output: kubenat's, or one command's.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat man | man -l -",
    "kubenat man trace | man -l -",
    "kubenat man > /usr/local/share/man/man1/kubenat.1",
))]
pub struct Man {
    /// A command whose page to print instead (its page is kubenat-COMMAND).
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

impl Man {
    pub fn run(self) -> Result<(), Failure> {
        let mut command = Cli::command();
        command.build();
        let (page, title) = match &self.command {
            None => (command, "kubenat".to_string()),
            Some(name) => {
                let Some(sub) = command.find_subcommand(name) else {
                    let names: Vec<&str> = command
                        .get_subcommands()
                        .map(|c| c.get_name())
                        .filter(|&n| n != "help")
                        .collect();
                    return Err(usage(
                        "man",
                        ErrorKind::InvalidValue,
                        format!("no command {name:?}; the commands are {}", names.join(", ")),
                    ));
                };
                (
                    sub.clone().version(env!("CARGO_PKG_VERSION")),
                    format!("kubenat-{name}"),
                )
            }
        };
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .title(title)
            .render(&mut roff)
            .map_err(|e| Failure::Runtime(format!("rendering the manual page: {e}")))?;
        emit(roff)
    }
}
