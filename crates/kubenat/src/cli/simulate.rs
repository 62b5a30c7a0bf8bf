//! `kubenat simulate`: the notes' network, a scenario file or a generated cluster, played on
//! smoltcp stacks with every node forwarding through its own engine.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use kubenat::scale;
use kubenat_sim::generate::ClusterSize;
use kubenat_sim::sim::Building;
use kubenat_sim::{Run, Scenario};

use super::{
    Failure, Format, OutputArg, count_bar, emit, emit_stderr, examples, is_stdio, phase_spinner,
    render, usage,
};

/// Printed after the notes' journey when `kubenat` runs with no arguments.
const AFTER_THE_JOURNEY: &str = "
More: `kubenat simulate --help` (other requests, seeds, failures, captures, a diagram,
generated clusters), `kubenat story` (each flow traced through the rules),
`kubenat trace --help` (one packet on one node), `kubenat --help` (everything).
";

/// The course notes' company network, simulated: a PC's requests travel through the
/// balancer, every node's rules, the ingress controller, WordPress and MariaDB.
#[derive(clap::Args)]
#[command(after_help = examples!(
    "kubenat simulate                          # the notes' network; the same as plain `kubenat`",
    "kubenat simulate --requests 6 --seed 7 --pcap captures/ --svg journey.svg",
    "kubenat simulate examples/miempresa/failover.yaml --summary",
    "kubenat simulate --svg - > journey.svg      # the diagram on stdout, the report on stderr",
    "kubenat simulate --generate nodes=1000,pods=10000,services=1000 -o json",
))]
pub struct Simulate {
    /// `notes` (the course notes' network) or a scenario YAML file, such as
    /// examples/miempresa/failover.yaml; `-` reads it from standard input (its manifests'
    /// paths are then relative to the current directory).
    #[arg(default_value = "notes", value_name = "SCENARIO")]
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
    #[arg(long, value_name = "N")]
    requests: Option<u32>,
    /// Same seed, same bytes out (default: 1, or the scenario file's).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Write one pcap per link (the LAN, each pod's veth) into this directory.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Draw the first request's journey as an SVG sequence diagram into this file; `-`
    /// writes it to standard output, and the report to standard error.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print only the totals: no journeys (in JSON, `journeys` is empty). A generated
    /// cluster's report is totals already.
    #[arg(long)]
    summary: bool,
    #[command(flatten)]
    output: OutputArg,
}

/// `kubenat` with no arguments: the notes' journeys, then where to go next.
pub fn notes() -> Result<(), Failure> {
    let simulate = Simulate {
        scenario: "notes".into(),
        generate: None,
        requests: None,
        seed: None,
        pcap: None,
        svg: None,
        summary: false,
        output: OutputArg {
            format: Format::Text,
        },
    };
    simulate.run()?;
    emit(AFTER_THE_JOURNEY)
}

/// A played simulation and how long building and playing it took.
struct Played {
    run: Run,
    built: Duration,
    ran: Duration,
}

impl Simulate {
    pub fn run(self) -> Result<(), Failure> {
        if self.pcap.as_deref().is_some_and(is_stdio) {
            return Err(usage(
                "simulate",
                ErrorKind::InvalidValue,
                "--pcap takes a directory (one capture per link), and - is not one".into(),
            ));
        }
        match self.generate {
            Some(size) => self.generated(size),
            None => self.scenario(),
        }
    }

    fn scenario(self) -> Result<(), Failure> {
        let mut scenario = match self.scenario.as_str() {
            "notes" => Scenario::notes(self.requests.unwrap_or(4)),
            "-" => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::Input(format!("-: reading standard input: {e}")))?;
                kubenat_sim::yaml::from_yaml_str(&text, "-", Path::new("."), "stdin")
                    .map_err(|e| Failure::Input(e.to_string()))?
            }
            file => Scenario::from_yaml_file(file).map_err(|e| Failure::Input(e.to_string()))?,
        };
        if let Some(requests) = self.requests {
            scenario = scenario.with_requests(requests);
        }
        if let Some(seed) = self.seed {
            scenario = scenario.with_seed(seed);
        }
        let played = self.play(&scenario, Failure::Input)?;
        let mut report = played.run.report;
        if self.summary {
            report.journeys.clear();
        }
        self.report(&render(self.output.format, &report, ToString::to_string))
    }

    /// A generated cluster, played and measured: build and run timed apart, memory from the
    /// counting allocator.
    fn generated(self, size: ClusterSize) -> Result<(), Failure> {
        let bad = |e: String| Failure::Input(format!("--generate {size}: {e}"));
        let mut scenario = Scenario::generated(size, self.seed.unwrap_or(1)).map_err(bad)?;
        if let Some(requests) = self.requests {
            scenario = scenario.with_requests(requests);
        }
        let played = self.play(&scenario, bad)?;
        let peak = kubenat::memory::peak();
        let measured = scale::Measured::new(
            size,
            &played.run.report,
            played.built,
            played.ran,
            Some(peak),
        );
        self.report(&render(
            self.output.format,
            &measured,
            scale::Measured::text,
        ))
    }

    /// Builds the network (`bad` says what was wrong with the scenario), plays it, and
    /// draws the diagram if asked.
    fn play(
        &self,
        scenario: &Scenario,
        bad: impl Fn(String) -> Failure,
    ) -> Result<Played, Failure> {
        let bar = count_bar();
        let mut building = |b: Building| {
            if let Some(bar) = &bar {
                bar.set_length(b.total as u64);
                bar.set_position(b.done as u64);
                bar.set_message(format!("{} built", b.step));
            }
        };
        let started = Instant::now();
        let sim = kubenat_sim::sim::Sim::build(scenario, &mut building);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let mut sim = sim.map_err(bad)?;
        let built = started.elapsed();
        let spinner = phase_spinner();
        let say = |what: &str| {
            if let Some(spinner) = &spinner {
                spinner.set_message(what.to_string());
            }
        };
        say("playing");
        let run = kubenat_sim::play(&mut sim, scenario, self.pcap.as_deref())
            .map_err(Failure::Runtime)?;
        let ran = started.elapsed() - built;
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        // Tearing the simulation down (1,000 engines at scale) is neither building nor running.
        drop(sim);
        if let Some(path) = &self.svg {
            let diagram = kubenat_sim::svg::sequence_diagram(&run.report, 1).ok_or_else(|| {
                Failure::Input("--svg: no request to draw: the scenario made none".into())
            })?;
            if is_stdio(path) {
                emit(diagram)?;
            } else {
                std::fs::write(path, diagram)
                    .map_err(|e| Failure::Runtime(format!("writing {}: {e}", path.display())))?;
            }
        }
        Ok(Played { run, built, ran })
    }

    /// Prints the report: on standard output, or standard error when the diagram has it.
    fn report(&self, text: &str) -> Result<(), Failure> {
        if self.svg.as_deref().is_some_and(is_stdio) {
            emit_stderr(text)
        } else {
            emit(text)
        }
    }
}
