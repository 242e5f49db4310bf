//! `redis-benchmark -t get,set -c 50` unpipelined and 16 deep, directly,
//! through twemproxy and through the RESP front end, in one run: the
//! client Redis users measure proxies with, beside the bench's own paths
//! (issue 32).

use std::fmt::Write as _;
use std::process::Command;

use crate::measure::process_cpu;

/// Calls per test (GET, SET) per run, as the issue runs it.
const REQUESTS: u64 = 100_000;

/// One run's figures for one test.
struct Run {
    target: &'static str,
    pipeline: u32,
    test: String,
    rps: f64,
    p50_ms: f64,
    /// The serving process's CPU per call over the run's tests, in µs.
    cpu_us: Option<f64>,
}

/// Runs `redis-benchmark` against each target reachable; its table for
/// bench.md.
pub(crate) fn run(
    backends: &crate::setup::Backends,
    served: &crate::served::Served,
) -> Result<String, String> {
    let address = |url: &str| -> Option<(String, u16)> {
        let rest = url.strip_prefix("redis://")?;
        let rest = rest.split('/').next()?;
        let rest = rest.rsplit('@').next()?;
        let (host, port) = rest.rsplit_once(':')?;
        Some((host.to_owned(), port.parse().ok()?))
    };
    let mut targets: Vec<(&'static str, (String, u16), Option<u32>)> = Vec::new();
    if let Some(direct) = address(&backends.redis) {
        targets.push(("direct", direct, None));
    }
    if let Some(proxy) = backends.twemproxy.as_deref().and_then(address) {
        targets.push(("twemproxy", proxy, backends.proxy_pid("twemproxy")));
    }
    let resp = (served.resp.ip().to_string(), served.resp.port());
    targets.push(("resp", resp, Some(served.pid())));
    let mut runs = Vec::new();
    for pipeline in [1u32, 16] {
        for (name, (host, port), pid) in &targets {
            eprintln!("redis-benchmark -P {pipeline} through {name}");
            let before = pid.map(|pid| process_cpu(&pid.to_string()));
            let out = Command::new(omnigate_tests::redis::tool("redis-benchmark"))
                .args(["-h", host, "-p", &port.to_string()])
                .args(["-t", "get,set", "-c", "50", "--csv"])
                .args(["-P", &pipeline.to_string(), "-n", &REQUESTS.to_string()])
                .output()
                .map_err(|e| format!("redis-benchmark: {e}"))?;
            let cpu = pid
                .zip(before)
                .map(|(pid, before)| process_cpu(&pid.to_string()).saturating_sub(before));
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!("redis-benchmark through {name}: {text}"));
            }
            let tests: Vec<(String, f64, f64)> = text
                .lines()
                .filter_map(|line| {
                    let cells: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
                    Some((
                        cells.first()?.to_string(),
                        cells.get(1)?.parse().ok()?,
                        cells.get(4)?.parse().ok()?,
                    ))
                })
                .collect();
            let calls = REQUESTS * tests.len().max(1) as u64;
            for (test, rps, p50_ms) in tests {
                runs.push(Run {
                    target: name,
                    pipeline,
                    test,
                    rps,
                    p50_ms,
                    cpu_us: cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / calls as f64),
                });
            }
        }
    }
    Ok(table(&runs))
}

/// The runs as a table.
fn table(runs: &[Run]) -> String {
    let mut out = format!(
        "\n`redis-benchmark -t get,set -c 50 -n {REQUESTS}` directly, through twemproxy and \
         through the RESP front end:\n\n\
         | pipeline | test | target | requests/s | p50 ms | serving process CPU µs/call |\n\
         |---:|---|---|---:|---:|---:|\n"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.3} | {} |",
            r.pipeline,
            r.test,
            r.target,
            r.rps,
            r.p50_ms,
            r.cpu_us.map_or_else(|| "-".into(), |us| format!("{us:.1}")),
        );
    }
    out
}
