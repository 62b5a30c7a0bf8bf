//! `kubenat bench` output for people (the JSON is [`kubenat_bench::run::Report`] itself).

use std::fmt::Write as _;

use kubenat_bench::run::{Report, Throughput};

fn phase(out: &mut String, name: &str, t: &Throughput) {
    let _ = write!(
        out,
        "{name:<16} {:>7.2} Mpps  {:>7.1} ns/packet  batch p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        t.mpps, t.ns_per_packet, t.batch_p50_ns, t.batch_p99_ns, t.batch_p999_ns, t.max_batch_ns
    );
    // Memory the connection tables took in a batch: what a slow batch may have waited on.
    if t.conntrack_grown_on_packet_path > 0 {
        let _ = write!(
            out,
            ", {} conntrack allocations in batches",
            t.conntrack_grown_on_packet_path
        );
    }
    let _ = writeln!(out);
}

/// One line per measurement.
pub fn text(r: &Report) -> String {
    let c = &r.config;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kubenat bench: {} services x {} endpoints, {} flows, {} thread(s), batch {}",
        c.services, c.endpoints, c.flows, c.threads, c.batch
    );
    let _ = writeln!(out, "{:<16} {:>7.3} s", "compile", r.compile_seconds);
    let _ = writeln!(
        out,
        "{:<16} hit {:.1} ns, miss {:.1} ns",
        "service lookup", r.lookup_hit_ns, r.lookup_miss_ns
    );
    let _ = writeln!(
        out,
        "{:<16} {:>7.2} M random lookups/s into a 1M-key table (the memory ceiling)",
        "ceiling", r.ceiling_mlookups_per_second
    );
    let pauses = &r.machine_pauses;
    let _ = writeln!(
        out,
        "{:<16} {} over 100 us ({} over 1 ms) in {:.1} s of a thread spinning, longest {:.1} us",
        "machine pauses",
        pauses.over_100us,
        pauses.over_1ms,
        pauses.seconds,
        pauses.longest_ns as f64 / 1e3
    );
    phase(&mut out, "new flows", &r.new_flows);
    phase(&mut out, "  tables grown", &r.new_flows_pregrown);
    phase(&mut out, "established", &r.established);
    let _ = writeln!(
        out,
        "{:<16} {:>7.0} %",
        "  of ceiling",
        100.0 * r.established.mpps / r.ceiling_mlookups_per_second.max(1e-9)
    );
    if let Some(m) = &r.mixed {
        phase(&mut out, "mixed", m);
    }
    if let Some(t) = &r.threaded {
        phase(&mut out, &format!("{} threads", c.threads), t);
    }
    let _ = writeln!(
        out,
        "{:<16} p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} one-Service updates)",
        "update",
        r.update.p50_ns as f64 / 1e3,
        r.update.p99_ns as f64 / 1e3,
        r.update.max_ns as f64 / 1e3,
        r.update.count
    );
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "{:<16} cluster {:.1} MB ({:.0} B per service port, {:.0} B of it on the packet path), {:.1} MB more per engine, conntrack {:.1} MB ({:.0} B per connection), {:.0} B per update",
            "memory",
            m.tables_bytes as f64 / 1e6,
            m.cluster_bytes_per_service_port,
            m.packet_path_bytes_per_service_port,
            m.engine_extra_bytes as f64 / 1e6,
            m.conntrack_bytes as f64 / 1e6,
            m.bytes_per_connection,
            m.bytes_per_update
        );
    }
    out
}
