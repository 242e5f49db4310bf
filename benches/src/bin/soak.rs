//! `omnigate-soak`: mixed load on every engine through gRPC against the
//! release `omnigate serve`, a backend killed and restarted every few
//! minutes in turn, sampled over time; writes the samples as JSON and a
//! plot as SVG (`--plot` draws it again from the JSON), prints a summary, and fails on a hung call.
//!
//! ```sh
//! cargo build --release -p omnigate-frontends -p omnigate-bench
//! target/release/omnigate-soak --duration 30m
//! ```
//!
//! `--spikes N` runs the memory spikes instead (`omnigate_tests::spikes`):
//! N rounds of a large buffered transaction, a large value built and
//! deleted, and a refused large result against the embedded default,
//! printing RSS before, at each peak and after each spike, and failing
//! when one leaves more than 32 MiB above the baseline.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use omnigate_bench::chart::soak_chart;
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
    /// Run nothing: draw the SVG (at --out, `.svg`) again from the JSON of
    /// an earlier run.
    #[arg(long, value_name = "SOAK_JSON")]
    plot: Option<PathBuf>,
    /// Run N rounds of memory spikes instead of the soak.
    #[arg(long, value_name = "N")]
    spikes: Option<usize>,
    /// With --spikes: how long after a spike its RSS is read.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(json) = &args.plot {
        let svg = args.out.with_extension("svg");
        let drawn = std::fs::read_to_string(json)
            .and_then(|text| {
                serde_json::from_str::<SoakReport>(&text).map_err(std::io::Error::other)
            })
            .and_then(|report| std::fs::write(&svg, soak_chart(&report)));
        return match drawn {
            Ok(()) => {
                eprintln!("wrote {}", svg.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", json.display());
                ExitCode::FAILURE
            }
        };
    }
    let binary = omnigate_tests::binary::beside_this("omnigate", args.gateway);
    if !binary.exists() {
        eprintln!(
            "{} not found: build it (cargo build --release -p omnigate-frontends) or pass --gateway",
            binary.display()
        );
        return ExitCode::FAILURE;
    }
    if let Some(rounds) = args.spikes {
        return spikes(rounds, args.settle, binary);
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
        .and_then(|()| std::fs::write(&svg, soak_chart(&report)));
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

/// `--spikes`: the rounds, their figures, and whether RSS came back.
fn spikes(rounds: usize, settle: Duration, binary: PathBuf) -> ExitCode {
    let spikes = omnigate_tests::spikes::Spikes {
        rounds,
        writes: 100_000,
        append_mib: 64,
        settle,
        binary,
    };
    let report = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(omnigate_tests::spikes::run(&spikes, |s| {
            eprintln!(
                "{:<22} peak {:>7} KiB  after {:>7} KiB",
                s.name, s.peak_kib, s.after_kib
            );
        })),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "RSS KiB: baseline {}, highest peak {}, most left after a spike {}, end {}",
        report.baseline_kib,
        report.peak_kib(),
        report.worst_after_kib(),
        report.end_kib
    );
    if report.worst_after_kib() > report.baseline_kib + 32 * 1024 {
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
