//! `omnigate-crash-trials`: kills a real `omnigate serve` (and sometimes a
//! backend) at random moments under concurrent cross-engine transactions,
//! many times, and checks every transaction is on all of its engines or
//! none. Prints a progress bar, then a table; writes the same as JSON.
//!
//! ```sh
//! cargo build --release -p omnigate-frontends -p omnigate-bench
//! target/release/omnigate-crash-trials --trials 1000 --clients 8
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use omnigate_tests::crash::{Report, Trials, run};

/// Crash trials of the cross-engine transactions.
#[derive(Debug, Parser)]
struct Args {
    /// How many trials.
    #[arg(long, default_value_t = 1000)]
    trials: usize,
    /// Client tasks committing transactions at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The omnigate binary (default: beside this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// The random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gateway processes at once: 1, or 2-3 replicas sharing a log table
    /// in PostgreSQL (one or all killed per trial).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/crash-trials.json")]
    json: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let gateway = omnigate_tests::binary::beside_this("omnigate", args.gateway);
    if !gateway.exists() {
        eprintln!(
            "{} not found: build it (cargo build --release -p omnigate-frontends) or pass --gateway",
            gateway.display()
        );
        return ExitCode::FAILURE;
    }
    let trials = Trials {
        trials: args.trials,
        clients: args.clients,
        binary: gateway,
        seed: args.seed,
        replicas: args.replicas,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = trials.trials;
    let report = runtime.block_on(run(&trials, |done, report| {
        let width = 40;
        let filled = done * width / total.max(1);
        eprint!(
            "\r[{}{}] {done}/{total} trials, {} transactions, {} partial",
            "#".repeat(filled),
            " ".repeat(width - filled),
            report.begun,
            report.partial
        );
        let _ = std::io::stderr().flush();
    }));
    eprintln!();
    print_table(&report);
    match serde_json::to_string_pretty(&report) {
        Ok(json) => {
            if let Some(dir) = args.json.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(&args.json, json) {
                eprintln!("cannot write {}: {e}", args.json.display());
            } else {
                println!("wrote {}", args.json.display());
            }
        }
        Err(e) => eprintln!("cannot encode the report: {e}"),
    }
    let whole = report.partial == 0
        && report.hung_commits == 0
        && report.misreported == 0
        && report.double_applied == 0;
    if whole {
        ExitCode::SUCCESS
    } else {
        for example in &report.partial_examples {
            eprintln!("broken: {example}");
        }
        if let Some(dir) = &report.kept {
            eprintln!("the gateway's log and config are in {dir}");
        }
        ExitCode::FAILURE
    }
}

fn print_table(r: &Report) {
    let rows = [
        ("trials", r.trials),
        ("  gateway killed", r.gateway_kills),
        ("  backend killed", r.backend_kills),
        ("transactions begun", r.begun),
        ("  commit returned OK", r.committed),
        ("  on every engine", r.present_everywhere),
        ("  on no engine (rolled back)", r.present_nowhere),
        ("recovered forward", r.recovered_forward),
        ("recovered backward", r.recovered_backward),
        (
            "failed after commit (Redis window, noeviction)",
            r.failed_after_commit,
        ),
        (
            "commits retried (cut by a deadline, or by a kill)",
            r.retried_commits,
        ),
        ("trials with a torn log", r.torn_logs),
        (
            "trials with Redis at its limit (noeviction)",
            r.noeviction_trials,
        ),
        (
            "trials with keys changed under the transactions",
            r.mutator_trials,
        ),
        ("commits that hung over a minute", r.hung_commits),
        ("late: whole only after a minute", r.late),
        ("partial (must be 0)", r.partial),
        ("misreported outcomes (must be 0)", r.misreported),
        ("writes applied twice (must be 0)", r.double_applied),
        ("longest recovery after a restart, ms", r.max_recovery_ms),
    ];
    println!("| | count |\n|---|---:|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}
