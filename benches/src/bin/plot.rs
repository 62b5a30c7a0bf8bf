//! Draws the figures of `docs/benchmarks.md` from the result files:
//!
//! ```text
//! plot [RESULTS_DIR (benches/results)] [OUT_DIR (docs/img)]
//! ```
//!
//! Reads every `*.json` there: `kubenat bench --output json` reports (they have a
//! `config`), `benches/live.sh` reports (they have `medians`) and `benches/kernel.sh`
//! reports (they have `runs`). When several reports
//! measure the same thing, the newest file (by name) wins; `kubenat bench` reports are
//! compared at the largest `--flows` among them. Writes `mpps-vs-services.svg`,
//! `mpps-vs-threads.svg`, `compile-vs-load.svg`, `memory.svg` and `live-forwarding.svg`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kubenat_benches::KernelReport;
use plotters::prelude::*;
use serde_json::Value;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Series = Vec<(String, Vec<(f64, f64)>)>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let results = PathBuf::from(args.next().unwrap_or_else(|| "benches/results".into()));
    let out = PathBuf::from(args.next().unwrap_or_else(|| "docs/img".into()));
    std::fs::create_dir_all(&out)?;

    let mut files: Vec<PathBuf> = std::fs::read_dir(&results)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    // (services, flows, threads) -> report; kernel runs by (layout, services).
    let mut all: BTreeMap<(u64, u64, u64), Value> = BTreeMap::new();
    let mut kernel: BTreeMap<(String, u64), kubenat_benches::KernelRun> = BTreeMap::new();
    // live.sh medians by (datapath, services): (new connections, established) per second.
    let mut live: BTreeMap<(String, u64), (Option<f64>, Option<f64>)> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("plot: skipping {}: {e}", file.display());
                continue;
            }
        };
        if let Some(medians) = value.get("medians").and_then(Value::as_array) {
            for m in medians {
                let datapath = m["datapath"].as_str().unwrap_or("?").to_string();
                let services = m["services"].as_u64().unwrap_or(0);
                let rates = (
                    m["new_connections_pps"].as_f64(),
                    m["established_pps"].as_f64(),
                );
                live.insert((datapath, services), rates);
            }
        } else if value.get("runs").is_some() {
            let report: KernelReport = serde_json::from_value(value)?;
            for run in report.runs {
                kernel.insert((run.layout.clone(), run.services as u64), run);
            }
        } else if let Some(config) = value.get("config") {
            let services = config["services"].as_u64().unwrap_or(0);
            let flows = config["flows"].as_u64().unwrap_or(0);
            let threads = config["threads"].as_u64().unwrap_or(1);
            all.insert((services, flows, threads), value);
        }
    }
    // The plots compare sizes at one connection count: the largest the runs used.
    let flows = all.keys().map(|(_, f, _)| *f).max().unwrap_or(0);
    let reports: BTreeMap<(u64, u64), Value> = all
        .into_iter()
        .filter(|((_, f, _), _)| *f == flows)
        .map(|((n, _, t), v)| ((n, t), v))
        .collect();
    let num = |v: &Value, path: &[&str]| -> Option<f64> {
        let mut v = v;
        for key in path {
            v = v.get(key)?;
        }
        v.as_f64()
    };

    // Mpps against services: kubenat (one thread) and the kernel's new connections.
    let mut series: Series = Vec::new();
    for (label, path) in [
        ("kubenat established", &["established", "mpps"][..]),
        ("kubenat new flows", &["new_flows", "mpps"][..]),
    ] {
        let points = reports
            .iter()
            .filter(|((_, threads), _)| *threads == 1)
            .filter_map(|((n, _), r)| Some((*n as f64, num(r, path)?)))
            .collect();
        series.push((label.to_string(), points));
    }
    for layout in layouts(&kernel) {
        for (what, field) in [("new connections", true), ("established", false)] {
            let points = kernel
                .iter()
                .filter(|((l, _), _)| *l == layout)
                .filter_map(|((_, n), run)| {
                    let pps = if field {
                        run.new_connections_pps
                    } else {
                        run.established_pps
                    }?;
                    Some((*n as f64, pps / 1e6))
                })
                .collect();
            series.push((format!("kernel {layout} {what}"), points));
        }
    }
    draw(
        &out.join("mpps-vs-services.svg"),
        "Packets per second against services (one core)",
        "services",
        "Mpps",
        &series,
        true,
    )?;

    // Mpps against threads, one line per service count.
    let mut by_services: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for ((n, threads), r) in &reports {
        let mpps = if *threads == 1 {
            num(r, &["established", "mpps"])
        } else {
            num(r, &["threaded", "mpps"])
        };
        if let Some(mpps) = mpps {
            by_services
                .entry(*n)
                .or_default()
                .push((*threads as f64, mpps));
        }
    }
    let series: Series = by_services
        .into_iter()
        .map(|(n, points)| (format!("{} services, established", si(n as f64)), points))
        .collect();
    draw(
        &out.join("mpps-vs-threads.svg"),
        "Established Mpps against worker threads",
        "threads",
        "Mpps",
        &series,
        false,
    )?;

    // Compile time against services, next to the kernel's load time.
    let mut series: Series = vec![(
        "kubenat compile".to_string(),
        reports
            .iter()
            .filter(|((_, t), _)| *t == 1)
            .filter_map(|((n, _), r)| Some((*n as f64, num(r, &["compile_seconds"])?)))
            .collect(),
    )];
    for layout in layouts(&kernel) {
        let points = kernel
            .iter()
            .filter(|((l, _), _)| *l == layout)
            .filter_map(|((_, n), run)| Some((*n as f64, run.load_seconds?)))
            .collect();
        let tool = if layout == "nftables" {
            "nft -f"
        } else {
            "iptables-restore"
        };
        series.push((format!("kernel {tool} ({layout})"), points));
    }
    draw(
        &out.join("compile-vs-load.svg"),
        "Compile (kubenat) and load (kernel) time against services",
        "services",
        "seconds",
        &series,
        true,
    )?;

    // Memory per service port and per connection.
    let mut series: Series = Vec::new();
    for (label, path) in [
        (
            "bytes per service port (4 endpoints), all tables and state",
            &["memory", "bytes_per_service_port"][..],
        ),
        (
            "bytes per service port on the packet path",
            &["memory", "packet_path_bytes_per_service_port"][..],
        ),
        (
            "bytes per connection",
            &["memory", "bytes_per_connection"][..],
        ),
    ] {
        series.push((
            label.to_string(),
            reports
                .iter()
                .filter(|((_, t), _)| *t == 1)
                .filter_map(|((n, _), r)| Some((*n as f64, num(r, path)?)))
                .collect(),
        ));
    }
    let xs: Vec<f64> = reports.keys().map(|(n, _)| *n as f64).collect();
    if let (Some(lo), Some(hi)) = (
        xs.iter().copied().reduce(f64::min),
        xs.iter().copied().reduce(f64::max),
    ) {
        series.push((
            "target: 128 B + 4 x 8 B per service port".into(),
            vec![(lo, 160.0), (hi, 160.0)],
        ));
        series.push((
            "target: 128 B per connection".into(),
            vec![(lo, 128.0), (hi, 128.0)],
        ));
    }
    draw(
        &out.join("memory.svg"),
        "Memory per service port and per connection",
        "services (connections = flows of the run)",
        "bytes",
        &series,
        true,
    )?;
    // Forwarding on one wire: the kernel's rules against kubenat run (live.sh).
    let mut series: Series = Vec::new();
    let mut datapaths: Vec<String> = live.keys().map(|(d, _)| d.clone()).collect();
    datapaths.dedup();
    for datapath in &datapaths {
        for (what, new) in [("new connections", true), ("established", false)] {
            let points = live
                .iter()
                .filter(|((d, _), _)| d == datapath)
                .filter_map(|((_, n), (fresh, established))| {
                    let pps = if new { *fresh } else { *established }?;
                    Some((*n as f64, pps / 1e3))
                })
                .collect();
            series.push((format!("{datapath} {what}"), points));
        }
    }
    draw(
        &out.join("live-forwarding.svg"),
        "Packets per second forwarded to the sink (benches/live.sh)",
        "services",
        "thousand packets per second",
        &series,
        true,
    )?;
    for name in [
        "mpps-vs-services",
        "mpps-vs-threads",
        "compile-vs-load",
        "memory",
        "live-forwarding",
    ] {
        println!("wrote {}", out.join(format!("{name}.svg")).display());
    }
    Ok(())
}

fn layouts(kernel: &BTreeMap<(String, u64), kubenat_benches::KernelRun>) -> Vec<String> {
    let mut layouts: Vec<String> = kernel.keys().map(|(l, _)| l.clone()).collect();
    layouts.dedup();
    layouts
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// Draws each series as a line with points, and the legend at `legend`.
fn draw_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &Series,
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (label, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)).point_size(3))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// A line chart of `series`; log-log when `log` (x always log when it spans decades).
fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &Series,
    log: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let points = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    if log {
        let mut chart = builder.build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0.max(1e-6) / 2.0..y1 * 2.0).log_scale(),
        )?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| si(*v))
            .draw()?;
        draw_series(&mut chart, series, SeriesLabelPosition::LowerLeft)?;
    } else {
        let mut chart = builder.build_cartesian_2d(0.0..x1 + 1.0, 0.0..y1 * 1.15)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
        draw_series(&mut chart, series, SeriesLabelPosition::UpperLeft)?;
    }
    root.present()?;
    Ok(())
}
