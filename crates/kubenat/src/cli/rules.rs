//! `kubenat rules`: the node's compiled tables.

use clap::ValueEnum;
use kubenat::rules;
use kubenat_core::Engine;

use super::{Failure, Format, NodeArgs, emit, examples, one_stdin, render};

/// The node's compiled tables: for people, programs, or nftables.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat rules --cluster examples/miempresa/cluster.yaml --cluster examples/miempresa/kube-proxy.yaml --node nodoa",
    "kubenat rules --cluster dump.yaml --node worker-1 -o json",
    "kubenat rules --cluster dump.yaml --node worker-1 -o nft > rules.nft && nft -c -f rules.nft",
    "kubectl get svc,endpointslices,nodes -A -o json | kubenat rules --cluster - --node worker-1 -o yaml",
))]
pub struct Rules {
    #[command(flatten)]
    node: NodeArgs,
    /// Output format: text for people, json or yaml (the same document) for programs, nft
    /// for an nftables ruleset (`nft -f`) doing the same NAT.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "format",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    output: RulesFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum RulesFormat {
    /// For people.
    Text,
    /// The tables as one JSON document (docs/cli.md).
    Json,
    /// The same document as the JSON, in YAML.
    Yaml,
    /// An nftables ruleset doing the same NAT.
    Nft,
}

impl Rules {
    pub fn run(self) -> Result<(), Failure> {
        one_stdin("rules", self.node.stdin_count())?;
        let state = self.node.load()?;
        let engine = self.node.compiling(|| Engine::from_state(state));
        let tables = engine.tables();
        let node = &self.node.node;
        let format = match self.output {
            RulesFormat::Nft => return emit(kubenat_nft::render(tables)),
            RulesFormat::Text => Format::Text,
            RulesFormat::Json => Format::Json,
            RulesFormat::Yaml => Format::Yaml,
        };
        emit(render(format, &rules::json(tables, node), |_| {
            rules::text(tables, node)
        }))
    }
}
