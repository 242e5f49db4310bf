//! `pgbench -S` (select-only, in each query mode asked for) directly,
//! through PgBouncer and through the gateway's PostgreSQL-wire front end,
//! in one run: the client PostgreSQL users measure poolers with, beside
//! the bench's own paths (issue 31).

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::measure::process_cpu;

/// pgbench's query mode (`-M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// One `Query` message per statement, its values in the text.
    Simple,
    /// `Parse`, `Bind`, `Execute` of an unnamed statement each time.
    Extended,
    /// A named statement prepared once per connection, then bound and run.
    Prepared,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Simple => "simple",
            Mode::Extended => "extended",
            Mode::Prepared => "prepared",
        }
    }
}

/// One `pgbench` run's figures.
struct Run {
    mode: Mode,
    target: &'static str,
    clients: usize,
    tps: f64,
    latency_ms: f64,
    transactions: u64,
    /// The serving process's CPU per transaction (the gateway's, or
    /// PgBouncer's), in µs.
    cpu_us: Option<f64>,
}

/// Where `pgbench` connects: host, port, user, database.
struct Target {
    name: &'static str,
    config: tokio_postgres::Config,
    pid: Option<u32>,
}

/// Runs `pgbench -S` for `duration` at each client count against each
/// target; its table for bench.md.
pub(crate) fn run(
    backends: &crate::setup::Backends,
    served: &crate::served::Served,
    clients: &[usize],
    modes: &[Mode],
    duration: Duration,
) -> Result<String, String> {
    let parse = |url: &str| -> Result<tokio_postgres::Config, String> {
        url.parse()
            .map_err(|e: tokio_postgres::Error| e.to_string())
    };
    let direct = parse(&backends.postgres)?;
    init(&direct)?;
    let mut targets = vec![Target {
        name: "direct",
        config: direct,
        pid: None,
    }];
    if let Some(url) = &backends.pgbouncer {
        targets.push(Target {
            name: "pgbouncer",
            config: parse(url)?,
            pid: backends.proxy_pid("pgbouncer"),
        });
    }
    targets.push(Target {
        name: "pgwire",
        config: parse(&format!(
            "postgres://bench@{}/{}",
            served.pgwire,
            crate::setup::PG
        ))?,
        pid: Some(served.pid()),
    });
    let mut runs = Vec::new();
    for &mode in modes {
        for &c in clients {
            for target in &targets {
                eprintln!(
                    "pgbench -S -M {} -c {c} through {}",
                    mode.name(),
                    target.name
                );
                match pgbench(target, mode, c, duration) {
                    Ok(run) => runs.push(run),
                    // PgBouncer before 1.21 cannot keep a client's named
                    // statements in transaction pooling: said, not fatal.
                    Err(e) if target.name == "pgbouncer" && mode == Mode::Prepared => {
                        eprintln!("{e}");
                        runs.push(Run::failed(mode, target.name, c));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(table(&runs))
}

/// `pgbench -i` on the PostgreSQL itself (scale 1, data made on the server).
fn init(config: &tokio_postgres::Config) -> Result<(), String> {
    let out = command(config)
        .args(["-i", "-q", "-I", "dtGvp", "-s", "1"])
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pgbench -i: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// `pgbench` with `config`'s host, port, user and database.
fn command(config: &tokio_postgres::Config) -> Command {
    let mut command = Command::new(omnigate_tests::postgres::client_bin("pgbench"));
    if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
        command.args(["-h", host]);
    }
    if let Some(port) = config.get_ports().first() {
        command.args(["-p", &port.to_string()]);
    }
    if let Some(user) = config.get_user() {
        command.args(["-U", user]);
    }
    command
        .arg("-d")
        .arg(config.get_dbname().unwrap_or("postgres"));
    command.env("PGSSLMODE", "disable");
    command
}

impl Run {
    /// A run that failed (shown as such in the table).
    fn failed(mode: Mode, target: &'static str, clients: usize) -> Self {
        Run {
            mode,
            target,
            clients,
            tps: 0.0,
            latency_ms: 0.0,
            transactions: 0,
            cpu_us: None,
        }
    }
}

/// One `pgbench -S -n -M <mode>` run: 2 threads, `clients` connections.
fn pgbench(target: &Target, mode: Mode, clients: usize, duration: Duration) -> Result<Run, String> {
    let before = target.pid.map(|pid| process_cpu(&pid.to_string()));
    let out = command(&target.config)
        .args(["-S", "-n", "-M", mode.name(), "-j", "2"])
        .args(["-c", &clients.to_string()])
        .args(["-T", &duration.as_secs().max(1).to_string()])
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let cpu = target
        .pid
        .zip(before)
        .map(|(pid, before)| process_cpu(&pid.to_string()).saturating_sub(before));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench -S -M {} through {}: {text}{}",
            mode.name(),
            target.name,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    let transactions = field("number of transactions actually processed:").unwrap_or(0.0) as u64;
    Ok(Run {
        mode,
        target: target.name,
        clients,
        tps: field("tps =").unwrap_or(0.0),
        latency_ms: field("latency average =").unwrap_or(0.0),
        transactions,
        cpu_us: cpu
            .filter(|_| transactions > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / transactions as f64),
    })
}

/// The runs as a table.
fn table(runs: &[Run]) -> String {
    let mut out = String::from(
        "\n`pgbench -S -n -M <mode> -j 2` (scale 1) directly, through PgBouncer and through the \
         PostgreSQL-wire front end (a failed run: 0 transactions):\n\n\
         | mode | clients | target | tps | latency avg ms | transactions | serving process CPU µs/tx |\n\
         |---|---:|---|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.3} | {} | {} |",
            r.mode.name(),
            r.clients,
            r.target,
            r.tps,
            r.latency_ms,
            r.transactions,
            r.cpu_us.map_or_else(|| "-".into(), |us| format!("{us:.1}")),
        );
    }
    out
}
