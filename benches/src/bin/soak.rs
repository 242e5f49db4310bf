//! `omnigate-soak`: mixed load on every engine through gRPC against the
//! release `omnigate serve`, a backend killed and restarted every few
//! minutes in turn, sampled over time; writes the samples as JSON and a
//! plot as SVG, prints a summary, and fails on a hung call.
//!
//! ```sh
//! cargo build --release -p omnigate -p omnigate-bench
//! target/release/omnigate-soak --duration 30m
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use omnigate_tests::soak::{Soak, SoakReport, run};

/// The soak of the gateway.
#[derive(Debug, Parser)]
struct Args {
    /// How long (e.g. `30m`).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Client tasks calling at once.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// A backend is killed and restarted this often, in turn.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    kill_every: Duration,
    /// How often the gateway is sampled.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    sample_every: Duration,
    /// The omnigate binary (default: beside this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Where the JSON and the SVG go (`.json`, `.svg`).
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let binary = omnigate_tests::binary::beside_this("omnigate", args.gateway);
    if !binary.exists() {
        eprintln!(
            "{} not found: build it (cargo build --release -p omnigate) or pass --gateway",
            binary.display()
        );
        return ExitCode::FAILURE;
    }
    let soak = Soak {
        duration: args.duration,
        clients: args.clients,
        kill_every: args.kill_every,
        sample_every: args.sample_every,
        call_timeout: Duration::from_secs(2),
        binary,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(run(&soak, |s| {
        eprintln!(
            "{:>7.0}s  calls {:?}  p50 {} µs  p99 {} µs  rss {} KiB  fds {}",
            s.at_s, s.calls, s.p50_us, s.p99_us, s.rss_kib, s.fds
        );
    }));
    println!("{}", summary(&report));
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let json = args.out.with_extension("json");
    let svg = args.out.with_extension("svg");
    let written = serde_json::to_string_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(&json, text))
        .and_then(|()| std::fs::write(&svg, plot(&report)));
    if let Err(e) = written {
        eprintln!("cannot write {}: {e}", json.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {} and {}", json.display(), svg.display());
    if report.hung > 0 || report.restarts.iter().any(|r| r.serving_after_ms.is_none()) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn summary(r: &SoakReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "calls by code: {:?}", r.calls);
    let _ = writeln!(out, "hung calls: {}", r.hung);
    let _ = writeln!(
        out,
        "RSS KiB after warm-up / max / end: {} / {} / {} (trend {:+.0} KiB/min)",
        r.rss_kib_warm, r.rss_kib_max, r.rss_kib_end, r.rss_kib_per_min
    );
    let _ = writeln!(
        out,
        "fds after warm-up / max / end: {} / {} / {} (trend {:+.2}/min)",
        r.fds_warm, r.fds_max, r.fds_end, r.fds_per_min
    );
    for restart in &r.restarts {
        let _ = writeln!(
            out,
            "{:>7.0}s {} killed; serving {}",
            restart.killed_at_s,
            restart.engine,
            restart
                .serving_after_ms
                .map_or("not within a minute".into(), |ms| format!(
                    "{ms} ms after its restart"
                ))
        );
    }
    out
}

/// Four panels over time: calls/s (OK and failed), p50/p99 latency,
/// RSS, open fds; a dashed line where a backend was killed.
fn plot(r: &SoakReport) -> String {
    const W: f64 = 900.0;
    const PANEL: f64 = 150.0;
    const LEFT: f64 = 70.0;
    let end = r.samples.last().map_or(1.0, |s| s.at_s).max(1.0);
    let x = |t: f64| LEFT + t / end * (W - LEFT - 10.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" font-family=\"monospace\" font-size=\"11\">\n",
        PANEL * 4.0 + 20.0
    );
    let mut previous = 0.0;
    let rates: Vec<(f64, f64, f64)> = r
        .samples
        .iter()
        .map(|s| {
            let span = (s.at_s - previous).max(1e-3);
            previous = s.at_s;
            let ok = *s.calls.get("OK").unwrap_or(&0) as f64;
            let failed = s.calls.values().sum::<u64>() as f64 - ok;
            (s.at_s, ok / span, failed / span)
        })
        .collect();
    type Series<'a> = (&'a str, Vec<(f64, f64)>);
    let panels: [(&str, Vec<Series>); 4] = [
        (
            "calls/s",
            vec![
                (
                    "#59a14f",
                    rates.iter().map(|(t, ok, _)| (*t, *ok)).collect(),
                ),
                ("#e15759", rates.iter().map(|(t, _, f)| (*t, *f)).collect()),
            ],
        ),
        (
            "latency ms (p50, p99)",
            vec![
                (
                    "#4c78a8",
                    r.samples
                        .iter()
                        .map(|s| (s.at_s, s.p50_us as f64 / 1e3))
                        .collect(),
                ),
                (
                    "#f28e2b",
                    r.samples
                        .iter()
                        .map(|s| (s.at_s, s.p99_us as f64 / 1e3))
                        .collect(),
                ),
            ],
        ),
        (
            "RSS MiB",
            vec![(
                "#76b7b2",
                r.samples
                    .iter()
                    .map(|s| (s.at_s, s.rss_kib as f64 / 1024.0))
                    .collect(),
            )],
        ),
        (
            "open fds",
            vec![(
                "#b07aa1",
                r.samples.iter().map(|s| (s.at_s, s.fds as f64)).collect(),
            )],
        ),
    ];
    for (i, (title, series)) in panels.iter().enumerate() {
        let top = 10.0 + i as f64 * PANEL;
        let max = series
            .iter()
            .flat_map(|(_, points)| points.iter().map(|(_, v)| *v))
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let y = |v: f64| top + PANEL - 20.0 - v / max * (PANEL - 35.0);
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\">{title} (max {max:.1})</text>\
             <line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
             <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>",
            top + 10.0,
            top + 15.0,
            y(0.0),
            W - 10.0,
            y(0.0),
            y(0.0),
        );
        for (color, points) in series {
            let path: Vec<String> = points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        for restart in &r.restarts {
            let _ = writeln!(
                out,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>",
                x(restart.killed_at_s),
                top + 15.0,
                y(0.0)
            );
        }
    }
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\">seconds 0 .. {end:.0}; dashed: a backend killed (in turn: postgres, redis, falkordb, victoriametrics)</text>",
        PANEL * 4.0 + 15.0
    );
    out.push_str("</svg>\n");
    out
}
