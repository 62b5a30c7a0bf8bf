//! Every timed batch and update of a run, in the order they ran, as CSV
//! (`kubenat bench --batch-times FILE`).
//!
//! The same seed gives every run the same packets in the same batches, so several runs can
//! be lined up batch by batch: a batch that is slow in every run is slow by its own work (a
//! table growing, a fault it takes), one slow in a single run met the machine (an interrupt,
//! the host taking the virtual CPU away). `benches/batch-floor.sh` does that comparison.

use std::io::{self, Write};

use crate::run::Report;

/// Writes `phase,index,ns,conntrack_grown` rows: the single-engine packet phases
/// (`new_flows`, `established`, `new_flows_pregrown`, `mixed` when run), then `update`
/// (whose `conntrack_grown` is 0). The threaded phase has no one order (its workers'
/// batches interleave) and is left out.
pub fn write_csv(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "phase,index,ns,conntrack_grown")?;
    let phases = [
        ("new_flows", Some(&report.new_flows)),
        ("established", Some(&report.established)),
        ("new_flows_pregrown", Some(&report.new_flows_pregrown)),
        ("mixed", report.mixed.as_ref()),
    ];
    for (name, throughput) in phases {
        let Some(throughput) = throughput else {
            continue;
        };
        for (index, batch) in throughput.batches_in_order.iter().enumerate() {
            let (ns, grown) = (batch.ns, batch.conntrack_grown);
            writeln!(out, "{name},{index},{ns},{grown}")?;
        }
    }
    for (index, ns) in report.update.in_order_ns.iter().enumerate() {
        writeln!(out, "update,{index},{ns},0")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Config, run};

    #[test]
    fn every_batch_and_update_is_a_row_in_the_order_it_ran() {
        let config = Config {
            services: 10,
            flows: 100,
            packets: 300,
            updates: 5,
            batch: 32,
            memory_helper: false,
            new_flow_ratio: 0.1,
            ..Config::default()
        };
        let report = run(&config, &|| None, &mut |_| {});
        let mut csv = Vec::new();
        write_csv(&report, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("phase,index,ns,conntrack_grown"));
        let rows: Vec<(&str, usize, u64, u64)> = lines
            .map(|line| {
                let mut fields = line.split(',');
                let row = (
                    fields.next().unwrap(),
                    fields.next().unwrap().parse().unwrap(),
                    fields.next().unwrap().parse().unwrap(),
                    fields.next().unwrap().parse().unwrap(),
                );
                assert_eq!(fields.next(), None, "{line}");
                row
            })
            .collect();
        let count = |phase: &str| rows.iter().filter(|r| r.0 == phase).count();
        // 100 new flows in batches of 32: four batches; 300 established packets: ten.
        assert_eq!(count("new_flows"), 4);
        assert_eq!(count("established"), 10);
        assert_eq!(count("new_flows_pregrown"), 4);
        assert_eq!(count("update"), 5);
        assert!(count("mixed") > 0);
        for phase in ["new_flows", "established", "update"] {
            let indexes: Vec<usize> = rows.iter().filter(|r| r.0 == phase).map(|r| r.1).collect();
            assert_eq!(indexes, (0..indexes.len()).collect::<Vec<_>>(), "{phase}");
        }
        // The rows are the times the report's figures come from.
        let slowest_new = rows
            .iter()
            .filter(|r| r.0 == "new_flows")
            .map(|r| r.2)
            .max();
        assert_eq!(slowest_new, Some(report.new_flows.max_batch_ns));
        let slowest_update = rows.iter().filter(|r| r.0 == "update").map(|r| r.2).max();
        assert_eq!(slowest_update, Some(report.update.max_ns));
        // Without the helper the new-flow batches grow the tables themselves, and the
        // rows add up to the phase's count.
        let grown = |phase: &str| {
            rows.iter()
                .filter(|r| r.0 == phase)
                .map(|r| r.3)
                .sum::<u64>()
        };
        assert!(grown("new_flows") > 0);
        assert_eq!(
            grown("new_flows"),
            report.new_flows.conntrack_grown_on_packet_path
        );
        assert_eq!(grown("established"), 0);
    }
}
