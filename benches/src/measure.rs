//! Running one operation from many tasks for a while and recording its
//! latency (hdrhistogram) and throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;

/// One operation of a workload on one path: called with a sequence number.
pub(crate) type Op = Arc<dyn Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What a run measured.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Latencies in microseconds.
    pub(crate) histogram: Histogram<u64>,
    /// Operations completed.
    pub(crate) ops: u64,
    /// Wall time spent.
    pub(crate) elapsed: Duration,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// CPU time of this process (harness, in-process gateway, drivers and
    /// the gRPC client; the database servers are other processes) spent
    /// during the run.
    pub(crate) cpu: Duration,
    /// CPU time of the `omnigate serve` process during the run (the gRPC
    /// path).
    pub(crate) gateway_cpu: Option<Duration>,
}

impl Sample {
    fn empty() -> Sample {
        Sample {
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
            ops: 0,
            elapsed: Duration::ZERO,
            errors: 0,
            cpu: Duration::ZERO,
            gateway_cpu: None,
        }
    }

    /// Adds another run of the same path.
    pub(crate) fn merge(&mut self, other: &Sample) {
        let _ = self.histogram.add(&other.histogram);
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.errors += other.errors;
        self.cpu += other.cpu;
        self.gateway_cpu = match (self.gateway_cpu, other.gateway_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// Operations per second.
    pub(crate) fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// This process's CPU time per operation, in microseconds.
    pub(crate) fn cpu_per_op_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / (self.ops.max(1) as f64)
    }

    /// The gateway process's CPU time per operation, in microseconds (the
    /// gRPC path).
    pub(crate) fn gateway_cpu_per_op_us(&self) -> Option<f64> {
        self.gateway_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / (self.ops.max(1) as f64))
    }

    /// A latency percentile in microseconds.
    pub(crate) fn percentile(&self, p: f64) -> u64 {
        self.histogram.value_at_quantile(p)
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// After this long.
    After(Duration),
    /// After this many calls in all, over every task.
    Calls(u64),
}

impl Stop {
    /// This stop for one of `parts` equal parts of a run.
    pub(crate) fn split(self, parts: u32) -> Stop {
        match self {
            Stop::After(d) => Stop::After(d / parts.max(1)),
            Stop::Calls(n) => Stop::Calls(n.div_ceil(u64::from(parts.max(1)))),
        }
    }
}

/// Runs `op` from `tasks` tasks until `stop` and records every call, and
/// the CPU time of this process and of process `gateway`, when given.
pub(crate) async fn run(
    op: &Op,
    tasks: usize,
    stop: Stop,
    seq_base: u64,
    gateway: Option<u32>,
) -> Sample {
    let cpu_before = process_cpu("self");
    let gateway_before = gateway.map(|pid| process_cpu(&pid.to_string()));
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let workers = (0..tasks).map(|task| {
        let op = Arc::clone(op);
        let issued = Arc::clone(&issued);
        let more = move || match stop {
            Stop::After(duration) => started.elapsed() < duration,
            Stop::Calls(calls) => issued.fetch_add(1, Ordering::Relaxed) < calls,
        };
        tokio::spawn(async move {
            let mut sample = Sample::empty();
            let mut n = seq_base + (task as u64) * 1_000_000_000;
            while more() {
                let t = Instant::now();
                let ok = op(n).await.is_ok();
                let micros = u64::try_from(t.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let _ = sample.histogram.record(micros.min(60_000_000));
                sample.ops += 1;
                if !ok {
                    sample.errors += 1;
                }
                n += 1;
            }
            sample
        })
    });
    let mut total = Sample::empty();
    for sample in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        total.merge(&sample);
    }
    total.elapsed = started.elapsed();
    total.cpu = process_cpu("self").saturating_sub(cpu_before);
    total.gateway_cpu = gateway
        .zip(gateway_before)
        .map(|(pid, before)| process_cpu(&pid.to_string()).saturating_sub(before));
    total
}

/// A process's user + system CPU time so far (from /proc/PID/stat).
pub(crate) fn process_cpu(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// This process's peak resident memory, in KiB (VmHWM).
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// How long opening one connection takes, per engine: the median of five,
/// in µs (TCP connect for VictoriaMetrics' HTTP).
pub(crate) async fn establish_times(backends: &crate::setup::Backends) -> Vec<(String, u64)> {
    async fn median<F, Fut>(mut connect: F) -> Option<u64>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            if connect().await {
                times.push(started.elapsed().as_micros() as u64);
            }
        }
        times.sort_unstable();
        times.get(times.len() / 2).copied()
    }
    let mut out = Vec::new();
    let pg = backends.postgres.clone();
    if let Some(us) = median(|| {
        let pg = pg.clone();
        async move {
            tokio_postgres::connect(&pg, tokio_postgres::NoTls)
                .await
                .is_ok()
        }
    })
    .await
    {
        out.push(("postgres".to_owned(), us));
    }
    for (engine, url) in [
        ("redis", Some(&backends.redis)),
        ("falkordb", backends.falkordb.as_ref()),
    ] {
        let Some(url) = url else { continue };
        let Ok(client) = redis::Client::open(url.as_str()) else {
            continue;
        };
        if let Some(us) = median(|| {
            let client = client.clone();
            async move { client.get_multiplexed_async_connection().await.is_ok() }
        })
        .await
        {
            out.push((engine.to_owned(), us));
        }
    }
    if let Some(addr) = backends
        .victoria
        .as_deref()
        .and_then(|u| u.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/').to_owned();
        if let Some(us) = median(|| {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.is_ok() }
        })
        .await
        {
            out.push(("victoriametrics".to_owned(), us));
        }
    }
    out
}
