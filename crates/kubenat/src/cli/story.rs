//! `kubenat story`: every flow of the course notes, traced and explained.

use super::{Failure, OutputArg, emit_as, examples};

/// Every flow of the course notes traced through the node's rules and explained, and
/// wp-service's round robin.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat story",
    "kubenat story -o json | jq '.flows[] | {title, verdict: .trace.verdict}'",
))]
pub struct Story {
    #[command(flatten)]
    output: OutputArg,
}

impl Story {
    pub fn run(self) -> Result<(), Failure> {
        emit_as(self.output.format, &kubenat::story::tell(), |story| {
            story.text()
        })
    }
}
