//! The soak's plot over time (`soak.svg`).

use std::fmt::Write as _;

use omnigate_tests::soak::SoakReport;

use super::*;

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

/// The letter marking an engine's kill.
fn initial(engine: &str) -> String {
    engine
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_default()
}
