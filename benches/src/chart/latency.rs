//! The benchmark's latency chart (`bench.svg`).

use std::fmt::Write as _;

use super::*;

fn path_color(path: &str) -> &'static str {
    match path {
        "direct" => "#4c78a8",
        "library" => "#59a14f",
        "grpc" => "#e15759",
        "grpc-uds" => "#ff9da7",
        "resp" => "#76b7b2",
        "pgwire" => "#edc948",
        "pgbouncer" => "#f28e2b",
        "twemproxy" => "#b07aa1",
        _ => "#9c755f",
    }
}

/// How a path is named in the legend.
fn path_name(path: &str) -> &str {
    match path {
        "direct" => "direct driver",
        "library" => "library (in process)",
        "grpc" => "gRPC (omnigate serve)",
        "grpc-uds" => "gRPC over a Unix socket",
        "resp" => "RESP front end",
        "pgwire" => "PostgreSQL-wire front end",
        other => other,
    }
}

/// A latency in microseconds as a short label: `850 µs`, `1.2 ms`, `3 s`.
/// One bar of the latency chart.
#[derive(Debug, Clone)]
pub struct LatencyRow {
    /// The workload.
    pub workload: String,
    /// Client tasks.
    pub concurrency: usize,
    /// `direct`, `library`, `grpc` or a peer proxy.
    pub path: String,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
}

impl LatencyRow {
    /// The rows of a `bench.json` (its `results`).
    pub fn from_json(json: &serde_json::Value) -> Result<Vec<Self>, String> {
        let results = json
            .get("results")
            .and_then(|r| r.as_array())
            .ok_or("no \"results\" array")?;
        results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let text = |key: &str| {
                    r.get(key)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                        .ok_or(format!("results[{i}]: no {key}"))
                };
                let number = |key: &str| {
                    r.get(key)
                        .and_then(serde_json::Value::as_u64)
                        .ok_or(format!("results[{i}]: no {key}"))
                };
                Ok(Self {
                    workload: text("workload")?,
                    path: text("path")?,
                    concurrency: number("concurrency")? as usize,
                    p50_us: number("p50_us")?,
                    p99_us: number("p99_us")?,
                })
            })
            .collect()
    }
}

/// The benchmark's chart: for each workload a block of rows, one per
/// tasks and path, p50 as a bar and p99 as a tick on a log scale with
/// decade gridlines; the figures in a column of their own at the right.
pub fn latency_chart(rows: &[LatencyRow]) -> String {
    const WIDTH: f64 = 900.0;
    const ROW_H: f64 = 16.0;
    const PAD: f64 = 8.0;
    let label = |r: &LatencyRow| {
        let tasks = if r.concurrency == 1 { "task " } else { "tasks" };
        format!("{:>2} {tasks}  {}", r.concurrency, r.path)
    };
    let figures = |r: &LatencyRow| format!("{} / {}", r.p50_us, r.p99_us);
    let label_w = rows
        .iter()
        .map(|r| text_width(&label(r), FONT).max(text_width(&r.workload, FONT) - 12.0))
        .fold(text_width("64 tasks  pgbouncer", FONT), f64::max);
    let figures_w = rows
        .iter()
        .map(|r| text_width(&figures(r), FONT))
        .fold(text_width("p50 / p99 µs", FONT), f64::max);
    let plot_left = PAD + 12.0 + label_w + PAD;
    let plot_right = WIDTH - PAD - figures_w - PAD - 6.0;
    let lowest = rows.iter().map(|r| r.p50_us.max(1)).min().unwrap_or(10);
    let highest = rows
        .iter()
        .map(|r| r.p99_us.max(r.p50_us))
        .max()
        .unwrap_or(1000);
    let lo = (lowest as f64).log10().floor().min(1.0);
    let hi = (highest as f64).log10().ceil().max(lo + 1.0);
    let x = |us: u64| {
        let v = (us.max(1) as f64).log10().clamp(lo, hi);
        plot_left + (v - lo) / (hi - lo) * (plot_right - plot_left)
    };

    // Workloads in the order first seen, their rows together.
    let mut workloads: Vec<&str> = Vec::new();
    for r in rows {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    let mut paths: Vec<&str> = Vec::new();
    for r in rows {
        if !paths.contains(&r.path.as_str()) {
            paths.push(&r.path);
        }
    }

    let header = 78.0;
    let body = workloads.len() as f64 * (ROW_H + 6.0) + rows.len() as f64 * ROW_H;
    let height = header + body + 40.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"{FONT}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{PAD}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">Latency per call, µs (log scale): p50 bar, p99 tick</text>\n"
    );

    // The legend: a swatch per path, then the p99 tick.
    let mut lx = PAD;
    for path in &paths {
        let name = path_name(path);
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.1}\" y=\"29\" width=\"12\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"38\">{}</text>",
            path_color(path),
            lx + 16.0,
            esc(name)
        );
        lx += 16.0 + text_width(name, FONT) + 14.0;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"28\" y2=\"40\" stroke=\"black\" stroke-width=\"1.5\"/><text x=\"{1:.1}\" y=\"38\">p99</text>",
        lx + 4.0,
        lx + 10.0
    );

    // The scale: decade gridlines, labelled above and below.
    let top = header;
    let bottom = header + body;
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"bold\">p50 / p99 µs</text>",
        WIDTH - PAD,
        top - 8.0
    );
    let mut decade = lo;
    while decade <= hi + 1e-9 {
        let us = 10f64.powf(decade);
        let gx = x(us.round() as u64);
        let text = duration_label(us);
        let _ = writeln!(
            out,
            "<line x1=\"{gx:.1}\" x2=\"{gx:.1}\" y1=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#ccc\"/>\
             <text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>\
             <text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
            top - 4.0,
            top - 8.0,
            bottom + 14.0
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{plot_left:.1}\" x2=\"{plot_left:.1}\" y1=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#444\"/>\
         <line x1=\"{plot_left:.1}\" x2=\"{plot_right:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\" stroke=\"#444\"/>",
        top - 4.0
    );

    let mut y = top;
    for workload in &workloads {
        let _ = writeln!(
            out,
            "<line x1=\"{PAD}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>\
             <text x=\"{PAD}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            WIDTH - PAD,
            y + 1.0,
            y + 1.0,
            y + ROW_H,
            esc(workload)
        );
        y += ROW_H + 6.0;
        for r in rows.iter().filter(|r| r.workload == *workload) {
            let p50 = x(r.p50_us);
            let p99 = x(r.p99_us);
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" xml:space=\"preserve\">{}</text>\
                 <rect x=\"{plot_left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
                 <line x1=\"{p99:.1}\" x2=\"{p99:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"1.5\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                PAD + 12.0,
                y + 11.0,
                esc(&label(r)),
                y + 2.0,
                (p50 - plot_left).max(1.0),
                ROW_H - 4.0,
                path_color(&r.path),
                y + 1.0,
                y + ROW_H - 1.0,
                WIDTH - PAD,
                y + 11.0,
                figures(r)
            );
            y += ROW_H;
        }
    }
    out.push_str("</svg>\n");
    out
}
