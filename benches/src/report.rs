//! The figures: a terminal table, a JSON file with every number, and a
//! Markdown report with the ratios against the targets of docs/design.md
//! (the chart, drawn from the JSON, is `omnigate_bench::chart`).

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::measure::Sample;

/// One measured cell: a workload on a path at a concurrency.
pub(crate) struct Row {
    /// The workload.
    pub(crate) workload: &'static str,
    /// `direct`, `library` or `grpc`.
    pub(crate) path: &'static str,
    /// Client tasks.
    pub(crate) concurrency: usize,
    /// What was measured.
    pub(crate) sample: Sample,
}

/// Ratios of the gateway's paths against the direct driver.
pub(crate) struct Ratio {
    workload: &'static str,
    concurrency: usize,
    library_throughput: f64,
    grpc_throughput: f64,
    library_added_p50_us: i64,
    grpc_added_p50_us: i64,
    grpc_added_p99_us: i64,
}

fn find<'a>(rows: &'a [Row], workload: &str, path: &str, concurrency: usize) -> Option<&'a Sample> {
    rows.iter()
        .find(|r| r.workload == workload && r.path == path && r.concurrency == concurrency)
        .map(|r| &r.sample)
}

/// The ratios for every workload and concurrency measured on all paths.
pub(crate) fn ratios(rows: &[Row]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.path == "direct") {
        let (Some(library), Some(grpc)) = (
            find(rows, row.workload, "library", row.concurrency),
            find(rows, row.workload, "grpc", row.concurrency),
        ) else {
            continue;
        };
        let direct = &row.sample;
        let added = |s: &Sample, p: f64| s.percentile(p) as i64 - direct.percentile(p) as i64;
        out.push(Ratio {
            workload: row.workload,
            concurrency: row.concurrency,
            library_throughput: library.throughput() / direct.throughput(),
            grpc_throughput: grpc.throughput() / direct.throughput(),
            library_added_p50_us: added(library, 0.5),
            grpc_added_p50_us: added(grpc, 0.5),
            grpc_added_p99_us: added(grpc, 0.99),
        });
    }
    out
}

/// The aligned terminal table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<18} {:>4} {:<8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7}\n",
        "workload",
        "c",
        "path",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "cpu µs/op",
        "gw µs/op",
        "errors"
    );
    for r in rows {
        let s = &r.sample;
        let _ = writeln!(
            out,
            "{:<18} {:>4} {:<8} {:>10.0} {:>8} {:>8} {:>9} {:>9.1} {:>9} {:>7}",
            r.workload,
            r.concurrency,
            r.path,
            s.throughput(),
            s.percentile(0.5),
            s.percentile(0.99),
            s.percentile(0.999),
            s.cpu_per_op_us(),
            s.gateway_cpu_per_op_us()
                .map_or("-".to_owned(), |us| format!("{us:.1}")),
            s.errors
        );
    }
    out
}

/// Every figure as JSON.
pub(crate) fn json(rows: &[Row], ratios: &[Ratio], meta: Json) -> Json {
    json!({
        "run": meta,
        "results": rows.iter().map(|r| json!({
            "workload": r.workload, "path": r.path, "concurrency": r.concurrency,
            "ops": r.sample.ops, "errors": r.sample.errors, "seconds": r.sample.elapsed.as_secs_f64(),
            "throughput": r.sample.throughput(),
            "p50_us": r.sample.percentile(0.5), "p99_us": r.sample.percentile(0.99), "p999_us": r.sample.percentile(0.999),
            "cpu_us_per_op": r.sample.cpu_per_op_us(),
            "gateway_cpu_us_per_op": r.sample.gateway_cpu_per_op_us(),
        })).collect::<Vec<_>>(),
        "ratios": ratios.iter().map(|q| json!({
            "workload": q.workload, "concurrency": q.concurrency,
            "library_vs_direct_throughput": q.library_throughput, "grpc_vs_direct_throughput": q.grpc_throughput,
            "library_added_p50_us": q.library_added_p50_us,
            "grpc_added_p50_us": q.grpc_added_p50_us, "grpc_added_p99_us": q.grpc_added_p99_us,
        })).collect::<Vec<_>>(),
    })
}

/// A peer proxy's figures beside the gateway's, same workloads, same run.
fn peer_table(rows: &[Row], peer: &str, what: &str) -> String {
    let mut out = String::new();
    let peers: Vec<&Row> = rows.iter().filter(|r| r.path == peer).collect();
    if peers.is_empty() {
        return out;
    }
    let _ = write!(
        out,
        "\n{what}:\n\n| workload | tasks | {peer}/direct | library/{peer} | gRPC/{peer} | {peer} +p50 µs | gRPC +p50 µs |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for b in peers {
        let (Some(direct), Some(library), Some(grpc)) = (
            find(rows, b.workload, "direct", b.concurrency),
            find(rows, b.workload, "library", b.concurrency),
            find(rows, b.workload, "grpc", b.concurrency),
        ) else {
            continue;
        };
        let added =
            |s: &crate::measure::Sample| s.percentile(0.5) as i64 - direct.percentile(0.5) as i64;
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
            b.workload,
            b.concurrency,
            b.sample.throughput() / direct.throughput(),
            library.throughput() / b.sample.throughput(),
            grpc.throughput() / b.sample.throughput(),
            added(&b.sample),
            added(grpc),
        );
    }
    out
}

/// A front end against the proxy it replaces, same run (issues 31 and 32:
/// throughput ≥ the proxy's, added p50 ≤ the proxy's, CPU per call ≤ the
/// proxy's; each process's own, the proxy's when the bench started it):
/// `path` against `proxy`.
fn fronted_table(rows: &[Row], path: &str, proxy: &str, what: &str) -> String {
    let mut out = String::new();
    let fronted: Vec<&Row> = rows.iter().filter(|r| r.path == path).collect();
    if fronted.is_empty() {
        return out;
    }
    let _ = write!(
        out,
        "\n{what} against {proxy}:\n\n\
         | workload | tasks | {path} ops/s | {proxy} ops/s | {path}/{proxy} | {path} +p50 µs | {proxy} +p50 µs | gateway CPU µs/call | {proxy} CPU µs/call |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in fronted {
        let Some(direct) = find(rows, r.workload, "direct", r.concurrency) else {
            continue;
        };
        let added =
            |s: &crate::measure::Sample| s.percentile(0.5) as i64 - direct.percentile(0.5) as i64;
        let peer = find(rows, r.workload, proxy, r.concurrency);
        let cell = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let cpu = |s: &crate::measure::Sample| {
            cell(s.gateway_cpu_per_op_us().map(|us| format!("{us:.1}")))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.concurrency,
            r.sample.throughput(),
            cell(peer.map(|p| format!("{:.0}", p.throughput()))),
            cell(peer.map(|p| format!("{:.2}", r.sample.throughput() / p.throughput()))),
            added(&r.sample),
            cell(peer.map(|p| added(p).to_string())),
            cpu(&r.sample),
            cell(peer.map(cpu)),
        );
    }
    out
}

/// gRPC over the Unix socket against loopback TCP, same run (issue 33:
/// reported, with the added p50 at 1 task expected lower over the socket).
fn uds_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let over_uds: Vec<&Row> = rows.iter().filter(|r| r.path == "grpc-uds").collect();
    if over_uds.is_empty() {
        return out;
    }
    out.push_str(
        "\ngRPC over the gateway's Unix socket against loopback TCP, same run:\n\n\
         | workload | tasks | uds ops/s | tcp ops/s | uds/tcp | uds +p50 µs | tcp +p50 µs | gateway µs/call uds | tcp |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in over_uds {
        let (Some(direct), Some(tcp)) = (
            find(rows, r.workload, "direct", r.concurrency),
            find(rows, r.workload, "grpc", r.concurrency),
        ) else {
            continue;
        };
        let added =
            |s: &crate::measure::Sample| s.percentile(0.5) as i64 - direct.percentile(0.5) as i64;
        let cpu = |s: &crate::measure::Sample| {
            s.gateway_cpu_per_op_us()
                .map_or_else(|| "-".into(), |us| format!("{us:.1}"))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} |",
            r.workload,
            r.concurrency,
            r.sample.throughput(),
            tcp.throughput(),
            r.sample.throughput() / tcp.throughput(),
            added(&r.sample),
            added(tcp),
            cpu(&r.sample),
            cpu(tcp),
        );
    }
    out
}

/// The Markdown report: ratios against the targets, then every figure.
pub(crate) fn markdown(rows: &[Row], ratios: &[Ratio], command: &str) -> String {
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let mut out = String::from("# Omnigate benchmark\n\n");
    let _ = writeln!(out, "Command: `{command}`\n");
    out.push_str("Targets (docs/design.md): library ≥ 0.95× direct throughput; gRPC p50 added ≤ 60 µs, p99 added ≤ 150 µs; gRPC ≥ 0.8× direct throughput at 64 tasks.\n\n");
    out.push_str("| workload | tasks | library/direct | gRPC/direct | library +p50 µs | gRPC +p50 µs | gRPC +p99 µs |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for q in ratios {
        // The gRPC throughput target is set at 64 tasks only.
        let grpc_mark = if q.concurrency == 64 {
            mark(q.grpc_throughput >= 0.8)
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} {} | {:.2} {} | {} | {} {} | {} {} |",
            q.workload,
            q.concurrency,
            q.library_throughput,
            mark(q.library_throughput >= 0.95),
            q.grpc_throughput,
            grpc_mark,
            q.library_added_p50_us,
            q.grpc_added_p50_us,
            mark(q.grpc_added_p50_us <= 60),
            q.grpc_added_p99_us,
            mark(q.grpc_added_p99_us <= 150),
        );
    }
    for (peer, what) in [
        (
            "pgbouncer",
            "PgBouncer (transaction pooling), the pooler users would otherwise pick",
        ),
        (
            "twemproxy",
            "twemproxy (nutcracker), the proxy users would otherwise put in front of Redis",
        ),
    ] {
        out.push_str(&peer_table(rows, peer, what));
    }
    out.push_str(&fronted_table(
        rows,
        "resp",
        "twemproxy",
        "The RESP front end (the direct client pointed at `omnigate serve`'s Redis listener)",
    ));
    out.push_str(&fronted_table(
        rows,
        "pgwire",
        "pgbouncer",
        "The PostgreSQL-wire front end (the direct driver pointed at `omnigate serve`'s \
         PostgreSQL listener)",
    ));
    out.push_str(&uds_table(rows));
    out.push_str("\n## Every figure\n\n```\n");
    out.push_str(&table(rows));
    out.push_str("```\n");
    out
}

/// Shows which cell runs: a bar redrawn in place on a terminal, a line
/// per cell otherwise.
pub(crate) fn progress(done: usize, cells: usize, workload: &str, tasks: usize) {
    use std::io::{IsTerminal, Write};
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let width = 30;
        let filled = done * width / cells.max(1);
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {done}/{cells} {workload} ×{tasks}",
            "#".repeat(filled),
            "-".repeat(width - filled)
        );
        let _ = err.flush();
    } else {
        let _ = writeln!(err, "[{done}/{cells}] {workload} with {tasks} task(s)");
    }
}

/// Ends the progress bar's line.
pub(crate) fn progress_done() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}
