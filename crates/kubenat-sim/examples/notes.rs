//! Runs the course notes' scenario (or a scenario file) and prints each request's journey.
//!
//! `cargo run -p kubenat-sim --example notes -- [REQUESTS] [SEED] [--json]
//!  [--scenario FILE.yaml] [--pcap DIR] [--svg FILE.svg]`

fn value(args: &[String], flag: &str) -> Option<std::path::PathBuf> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(Into::into)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let options = kubenat_sim::Options {
        pcap_dir: value(&args, "--pcap"),
        svg: value(&args, "--svg"),
    };
    let mut numbers = args.iter().filter_map(|a| a.parse::<u64>().ok());
    let requests = numbers.next().map(|n| n as u32);
    let seed = numbers.next().unwrap_or(1);
    let scenario = match value(&args, "--scenario") {
        Some(path) => kubenat_sim::Scenario::from_yaml_file(&path).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        }),
        None => kubenat_sim::Scenario::notes(4),
    };
    let scenario = match requests {
        Some(n) => scenario.with_requests(n),
        None => scenario,
    }
    .with_seed(seed);
    match kubenat_sim::run_with(&scenario, &options) {
        Ok(report) if json => println!("{}", report.to_json()),
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}
