//! Runs the course notes' scenario and prints each request's journey.
//!
//! `cargo run -p kubenat-sim --example notes -- [REQUESTS] [SEED] [--json]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut numbers = args.iter().filter_map(|a| a.parse::<u64>().ok());
    let requests = numbers.next().unwrap_or(4) as u32;
    let seed = numbers.next().unwrap_or(1);
    let scenario = kubenat_sim::Scenario::notes(requests).with_seed(seed);
    let report = kubenat_sim::run(&scenario);
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
}
