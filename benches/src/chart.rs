//! The two pictures: the benchmark's latency chart (`bench.svg`) and the
//! soak's plot over time (`soak.svg`). Both are plain SVG sized so every
//! label fits the canvas (monospace text, so a label's width is known
//! from its length), with axes, units and a legend.

use std::fmt::Write as _;

use omnigate_tests::soak::SoakReport;

/// The font size of ordinary text, px.
const FONT: f64 = 11.0;
/// A monospace character's advance as a fraction of the font size
/// (DejaVu Sans Mono and most others: 0.6).
const CHAR_W: f64 = 0.6;

/// The width of `text` drawn at `size` px in a monospace font.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_W
}

/// `text` escaped for SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The colour a path is drawn in.
fn path_color(path: &str) -> &'static str {
    match path {
        "direct" => "#4c78a8",
        "library" => "#59a14f",
        "grpc" => "#e15759",
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
        other => other,
    }
}

/// A latency in microseconds as a short label: `850 µs`, `1.2 ms`, `3 s`.
fn duration_label(us: f64) -> String {
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Tick values from 0 to at least `max`, 4 to 8 of them, steps of 1, 2
/// or 5 times a power of ten.
fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| max / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick value as text: no trailing zeros, thousands as `k`.
fn tick_label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

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

/// The soak's plot: four panels over time (calls/s answered OK and
/// failed; p50 and p99 latency; the gateway's RSS; its open file
/// descriptors), each with a scale, units and a legend; a dashed line,
/// lettered with the engine, where a backend was killed.
pub fn soak_chart(r: &SoakReport) -> String {
    const W: f64 = 900.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 48.0;
    const PANEL: f64 = 170.0;
    const PLOT: f64 = 120.0;
    // Samples closer than a second to the one before (the drain at the
    // end) make rates and percentiles of a handful of calls: left out.
    let mut previous = 0.0;
    let samples: Vec<_> = r
        .samples
        .iter()
        .filter_map(|s| {
            let span = s.at_s - previous;
            previous = s.at_s;
            (span >= 1.0).then_some((s, span))
        })
        .collect();
    let end = samples.last().map_or(1.0, |(s, _)| s.at_s).max(1.0);
    let minutes = end / 60.0;
    let x = |t: f64| LEFT + t / end * (W - LEFT - RIGHT);
    let rates = |ok: bool| -> Vec<(f64, f64)> {
        samples
            .iter()
            .map(|(s, span)| {
                let good = *s.calls.get("OK").unwrap_or(&0) as f64;
                let all = s.calls.values().sum::<u64>() as f64;
                (s.at_s, if ok { good } else { all - good } / span)
            })
            .collect()
    };
    let series = |f: &dyn Fn(&omnigate_tests::soak::Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|(s, _)| (s.at_s, f(s))).collect()
    };
    let total = |ok: bool| {
        let calls: u64 = samples
            .iter()
            .flat_map(|(s, _)| s.calls.iter())
            .filter(|(code, _)| (code.as_str() == "OK") == ok)
            .map(|(_, n)| n)
            .sum();
        thousands(calls)
    };
    type Series = (&'static str, String, Vec<(f64, f64)>);
    let panels: [(&str, Vec<Series>); 4] = [
        (
            "Calls answered per second",
            vec![
                (
                    "#59a14f",
                    format!("OK ({} calls)", total(true)),
                    rates(true),
                ),
                (
                    "#e15759",
                    format!("failed ({})", total(false)),
                    rates(false),
                ),
            ],
        ),
        (
            "Latency, ms",
            vec![
                ("#4c78a8", "p50".into(), series(&|s| s.p50_us as f64 / 1e3)),
                ("#f28e2b", "p99".into(), series(&|s| s.p99_us as f64 / 1e3)),
            ],
        ),
        (
            "Gateway resident memory (RSS), MiB",
            vec![(
                "#76b7b2",
                "RSS".into(),
                series(&|s| s.rss_kib as f64 / 1024.0),
            )],
        ),
        (
            "Gateway open file descriptors",
            vec![("#b07aa1", "fds".into(), series(&|s| s.fds as f64))],
        ),
    ];
    let height = TOP + PANEL * 4.0 + 36.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {W} {height:.0}\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"{FONT}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">Soak: {:.0} minutes of mixed load through gRPC, backends killed in turn</text>\n",
        minutes
    );
    // The kill markers' key, once, under the title.
    let mut engines: Vec<&str> = Vec::new();
    for restart in &r.restarts {
        if !engines.contains(&restart.engine.as_str()) {
            engines.push(&restart.engine);
        }
    }
    if !engines.is_empty() {
        let key: Vec<String> = engines
            .iter()
            .map(|e| format!("{} {e}", initial(e)))
            .collect();
        let _ = writeln!(
            out,
            "<line x1=\"8\" x2=\"30\" y1=\"32\" y2=\"32\" stroke=\"#777\" stroke-dasharray=\"3,3\"/>\
             <text x=\"36\" y=\"36\">a backend killed and restarted: {}</text>",
            esc(&key.join(", "))
        );
    }
    let time_step = linear_ticks(minutes)[1].max(1.0 / 60.0);
    for (i, (title, lines)) in panels.iter().enumerate() {
        let top = TOP + i as f64 * PANEL;
        let plot_top = top + 26.0;
        let base = plot_top + PLOT;
        let max = lines
            .iter()
            .flat_map(|(_, _, points)| points.iter().map(|(_, v)| *v))
            .fold(0.0_f64, f64::max);
        let ticks = linear_ticks(max);
        let top_value = ticks.last().copied().unwrap_or(1.0).max(1e-9);
        let y = |v: f64| base - v / top_value * PLOT;
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            top + 14.0,
            esc(title)
        );
        // The legend, right-aligned on the title's line.
        let mut lx = W - RIGHT;
        for (color, name, _) in lines.iter().rev() {
            lx -= text_width(name, FONT);
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>\
                 <text x=\"{lx:.1}\" y=\"{:.1}\">{}</text>",
                lx - 22.0,
                lx - 4.0,
                top + 10.0,
                top + 10.0,
                top + 14.0,
                esc(name)
            );
            lx -= 22.0 + 16.0;
        }
        for tick in &ticks {
            let ty = y(*tick);
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#e4e4e4\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - RIGHT,
                LEFT - 4.0,
                ty + 4.0,
                tick_label(*tick)
            );
        }
        let mut minute = 0.0;
        while minute <= minutes + 1e-9 {
            let tx = x(minute * 60.0);
            let _ = writeln!(
                out,
                "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{base:.1}\" y2=\"{:.1}\" stroke=\"#444\"/>\
                 <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                base + 4.0,
                base + 15.0,
                trim(minute)
            );
            minute += time_step;
        }
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{plot_top:.1}\" y2=\"{base:.1}\" stroke=\"#444\"/>\
             <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\" stroke=\"#444\"/>",
            W - RIGHT
        );
        for restart in &r.restarts {
            let kx = x(restart.killed_at_s.min(end));
            let _ = writeln!(
                out,
                "<line x1=\"{kx:.1}\" x2=\"{kx:.1}\" y1=\"{:.1}\" y2=\"{base:.1}\" stroke=\"#777\" stroke-dasharray=\"3,3\"/>\
                 <text x=\"{kx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555\">{}</text>",
                plot_top + 2.0,
                plot_top,
                initial(&restart.engine)
            );
        }
        for (color, _, points) in lines {
            let path: Vec<String> = points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">minutes since the start (a sample every {:.0} s)</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        TOP + PANEL * 4.0 + 4.0,
        if samples.is_empty() {
            0.0
        } else {
            end / samples.len() as f64
        }
    );
    out.push_str("</svg>\n");
    out
}

/// A count with thousands separated: `8,591,098`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The letter marking an engine's kill.
fn initial(engine: &str) -> String {
    engine
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_default()
}

/// A `<text>` element of an SVG: where it starts and ends horizontally
/// (from its `x`, `text-anchor`, `font-size` and length), its baseline,
/// and what it says.
#[derive(Debug)]
pub struct Label {
    /// Left edge, px.
    pub left: f64,
    /// Right edge, px.
    pub right: f64,
    /// Baseline, px.
    pub y: f64,
    /// The text, unescaped.
    pub text: String,
}

/// Every `<text>` of an SVG written by this module, measured.
pub fn labels(svg: &str) -> Vec<Label> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_owned())
    };
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find("<text") {
        rest = &rest[open..];
        let Some(tag_end) = rest.find('>') else { break };
        let Some(close) = rest.find("</text>") else {
            break;
        };
        let tag = &rest[..tag_end];
        let text = rest[tag_end + 1..close]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let number = |name: &str, default: f64| {
            attr(tag, name)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(default)
        };
        let size = number("font-size", FONT);
        let width = text_width(&text, size);
        let x = number("x", 0.0);
        let left = match attr(tag, "text-anchor").as_deref() {
            Some("end") => x - width,
            Some("middle") => x - width / 2.0,
            _ => x,
        };
        out.push(Label {
            left,
            right: left + width,
            y: number("y", 0.0),
            text,
        });
        rest = &rest[close + 7..];
    }
    out
}

/// The canvas size an SVG declares.
pub fn canvas(svg: &str) -> (f64, f64) {
    let get = |name: &str| {
        let start = svg.find(&format!(" {name}=\"")).map(|i| i + name.len() + 3);
        start
            .and_then(|s| svg[s..].split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (get("width"), get("height"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use omnigate_tests::soak::{Restart, Sample};

    use super::*;

    /// Every label lies inside the canvas; returns them.
    fn inside(svg: &str) -> Vec<Label> {
        let (width, height) = canvas(svg);
        assert!(width > 0.0 && height > 0.0, "no canvas size");
        let labels = labels(svg);
        assert!(!labels.is_empty());
        for l in &labels {
            assert!(
                l.left >= 0.0 && l.right <= width && l.y > 0.0 && l.y <= height,
                "{l:?} is outside the {width}×{height} canvas"
            );
        }
        labels
    }

    fn says(labels: &[Label], text: &str) -> bool {
        labels.iter().any(|l| l.text.contains(text))
    }

    #[test]
    fn latency_chart_fits_its_labels_and_has_a_scale_and_a_legend() {
        let mut rows = Vec::new();
        for workload in ["pg_point_read", "redis_pipeline_8_long_name"] {
            for concurrency in [1, 64] {
                for path in ["direct", "library", "grpc", "pgbouncer", "twemproxy"] {
                    rows.push(LatencyRow {
                        workload: workload.into(),
                        concurrency,
                        path: path.into(),
                        p50_us: 44,
                        p99_us: 80,
                    });
                }
            }
        }
        // The figures that were cut at the right edge before.
        rows[3].p50_us = 847_359;
        rows[3].p99_us = 1_057_791;
        let svg = latency_chart(&rows);
        let labels = inside(&svg);
        assert!(says(&labels, "847359 / 1057791"));
        for legend in [
            "direct driver",
            "library (in process)",
            "gRPC (omnigate serve)",
            "pgbouncer",
            "twemproxy",
            "p99",
        ] {
            assert!(says(&labels, legend), "no legend entry {legend}");
        }
        // Decades from 10 µs to 10 s, and the units.
        for tick in ["10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"] {
            assert!(says(&labels, tick), "no scale tick {tick}");
        }
        assert!(says(&labels, "p50 / p99 µs"));
        assert!(says(&labels, "64 tasks  pgbouncer"));
    }

    #[test]
    fn latency_chart_reads_bench_json() {
        let json = serde_json::json!({"results": [
            {"workload": "w", "path": "grpc", "concurrency": 16, "p50_us": 5, "p99_us": 9, "ops": 1}
        ]});
        let rows = LatencyRow::from_json(&json).unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].concurrency, rows[0].p99_us), (16, 9));
        assert!(LatencyRow::from_json(&serde_json::json!({})).is_err());
        inside(&latency_chart(&rows));
        // Nothing measured still draws a frame.
        inside(&latency_chart(&[]));
    }

    #[test]
    fn soak_chart_fits_its_labels_and_has_axes_and_legends() {
        let samples: Vec<Sample> = (1..=180_u32)
            .map(|i| Sample {
                at_s: f64::from(i) * 10.0,
                calls: BTreeMap::from([
                    ("OK".to_owned(), 50_000 + u64::from(i) * 100),
                    ("UNAVAILABLE".to_owned(), u64::from(i % 18 == 0) * 400),
                ]),
                p50_us: 2_000,
                p99_us: 15_000 + u64::from(i % 18 == 0) * 2_000_000,
                rss_kib: 25_000,
                fds: 58,
                pools: BTreeMap::new(),
            })
            .collect();
        let report = SoakReport {
            samples,
            restarts: ["postgres", "redis", "falkordb", "victoriametrics"]
                .iter()
                .enumerate()
                .map(|(i, e)| Restart {
                    engine: (*e).into(),
                    killed_at_s: 180.0 * (i + 1) as f64,
                    serving_after_ms: Some(300),
                })
                .collect(),
            ..SoakReport::default()
        };
        let svg = soak_chart(&report);
        let labels = inside(&svg);
        for legend in [
            "OK (10,629,000 calls)",
            "failed (4,000)",
            "p50",
            "p99",
            "RSS",
            "fds",
            "P postgres, R redis, F falkordb, V victoriametrics",
        ] {
            assert!(says(&labels, legend), "no legend entry {legend}");
        }
        for unit in ["per second", "ms", "MiB", "minutes since the start"] {
            assert!(says(&labels, unit), "no unit {unit}");
        }
        // Minutes along the time axis, 0 to 30.
        assert!(labels.iter().any(|l| l.text == "0"));
        assert!(labels.iter().any(|l| l.text == "30"));
        // An empty report still draws.
        inside(&soak_chart(&SoakReport::default()));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            linear_ticks(6412.6),
            vec![0.0, 2000.0, 4000.0, 6000.0, 8000.0]
        );
        assert_eq!(linear_ticks(61.0), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(
            linear_ticks(30.0),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(duration_label(1_000.0), "1 ms");
        assert_eq!(duration_label(1_500.0), "1.5 ms");
        assert_eq!(thousands(8_591_098), "8,591,098");
        assert_eq!(thousands(16), "16");
    }
}
