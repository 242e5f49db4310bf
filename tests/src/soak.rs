//! The soak: mixed load on every engine through gRPC against a real
//! `omnigate serve`, with a backend killed and restarted every so often in
//! turn, sampled over time: calls answered by status code, p50/p99
//! latency, the gateway's RSS and open file descriptors, pool sizes.
//! `omnigate-soak` (the bench crate) runs it for as long as asked and
//! plots it; the test command runs a minute (`gateway/tests/soak.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::transport::Channel;

use crate::crash::{Backends, Gateway, write_config};

/// How to run the soak.
#[derive(Debug, Clone)]
pub struct Soak {
    /// How long.
    pub duration: Duration,
    /// Client tasks calling at once.
    pub clients: usize,
    /// A backend is killed (and restarted) this often, in turn.
    pub kill_every: Duration,
    /// How often the gateway is sampled.
    pub sample_every: Duration,
    /// Each call's deadline; a call that has not ended well past it is
    /// hung.
    pub call_timeout: Duration,
    /// The `omnigate` binary.
    pub binary: PathBuf,
}

/// One sample: what happened since the last one, and the gateway now.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Sample {
    /// Seconds since the start.
    pub at_s: f64,
    /// Calls answered, by gRPC code.
    pub calls: BTreeMap<String, u64>,
    /// Latency percentiles of the calls answered, in microseconds.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// The gateway's resident memory, KiB.
    pub rss_kib: u64,
    /// The gateway's open file descriptors.
    pub fds: u64,
    /// Connections in each engine's pool.
    pub pools: BTreeMap<String, u64>,
}

/// A backend killed and restarted.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Restart {
    /// The engine behind it.
    pub engine: String,
    /// When it was killed, seconds since the start.
    pub killed_at_s: f64,
    /// From its restart to a call on it answering, in milliseconds
    /// (`None`: not within a minute).
    pub serving_after_ms: Option<u64>,
}

/// What the soak saw.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SoakReport {
    /// The samples, in order.
    pub samples: Vec<Sample>,
    /// Every call answered, by gRPC code.
    pub calls: BTreeMap<String, u64>,
    /// Calls that had not ended 5 s past their deadline (must be 0).
    pub hung: u64,
    /// The backends killed.
    pub restarts: Vec<Restart>,
    /// RSS and fds at the end of warm-up (the first fifth), the most
    /// after it, and at the end.
    pub rss_kib_warm: u64,
    /// See `rss_kib_warm`.
    pub rss_kib_max: u64,
    /// See `rss_kib_warm`.
    pub rss_kib_end: u64,
    /// See `rss_kib_warm`.
    pub fds_warm: u64,
    /// See `rss_kib_warm`.
    pub fds_max: u64,
    /// See `rss_kib_warm`.
    pub fds_end: u64,
    /// Least-squares trend after warm-up, per minute.
    pub rss_kib_per_min: f64,
    /// See `rss_kib_per_min`.
    pub fds_per_min: f64,
}

/// Calls answered since the last sample.
#[derive(Default)]
struct Window {
    latency: Option<Histogram<u64>>,
    calls: BTreeMap<String, u64>,
}

/// The engines and a statement for each: reads and writes.
const ENGINES: [(&str, &str, &str); 5] = [
    ("main-db", "sql", "SELECT count(*) FROM pg_stat_activity"),
    ("main", "sql", "SELECT 1"),
    ("cache", "redis", "INCR soak"),
    ("graph", "cypher", "MERGE (n:Soak {k: 1}) RETURN n.k"),
    ("metrics", "ts", "soak_calls"),
];

/// The backends killed in turn: (what to kill, the engine behind it).
const KILLED: [&str; 4] = ["main-db", "cache", "graph", "metrics"];

/// Runs the soak; `progress` is told each sample as it is taken.
pub async fn run(soak: &Soak, mut progress: impl FnMut(&Sample)) -> SoakReport {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut backends = Backends::start_durable();
    let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
    let config = write_config(dir.path(), &backends, addr);
    let mut gateway = Gateway::start(&soak.binary, &config, addr, dir.path()).await;
    let pid = gateway.pid();
    let started = Instant::now();
    let window = Arc::new(Mutex::new(Window::default()));
    let hung = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..soak.clients)
        .map(|c| {
            tokio::spawn(client(
                gateway.client.clone(),
                c,
                soak.call_timeout,
                Arc::clone(&window),
                Arc::clone(&hung),
                Arc::clone(&stop),
            ))
        })
        .collect();

    let mut report = SoakReport::default();
    let mut sample_tick = tokio::time::interval(soak.sample_every);
    let mut kill_tick = tokio::time::interval(soak.kill_every);
    sample_tick.tick().await;
    kill_tick.tick().await;
    let mut killed = 0;
    while started.elapsed() < soak.duration {
        tokio::select! {
            _ = sample_tick.tick() => {
                let sample = take_sample(&mut gateway.client, &window, pid, started).await;
                progress(&sample);
                report.samples.push(sample);
            }
            _ = kill_tick.tick() => {
                let engine = KILLED[killed % KILLED.len()];
                killed += 1;
                let killed_at_s = started.elapsed().as_secs_f64();
                tokio::task::block_in_place(|| kill(&mut backends, engine));
                tokio::time::sleep(Duration::from_secs(1)).await;
                tokio::task::block_in_place(|| restart(&mut backends, engine));
                let serving_after_ms = serving(&mut gateway.client, engine).await;
                report.restarts.push(Restart { engine: engine.into(), killed_at_s, serving_after_ms });
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let last = take_sample(&mut gateway.client, &window, pid, started).await;
    progress(&last);
    report.samples.push(last);
    gateway.kill();
    report.hung = hung.load(Ordering::Relaxed);
    summarize(&mut report);
    report
}

/// Calls the engines in turn until `stop`, each call under its deadline.
async fn client(
    mut client: GatewayClient<Channel>,
    index: usize,
    timeout: Duration,
    window: Arc<Mutex<Window>>,
    hung: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut turn = index;
    while !stop.load(Ordering::Relaxed) {
        let (target, dialect, statement) = ENGINES[turn % ENGINES.len()];
        turn += 1;
        let mut request = tonic::Request::new(pb::ExecuteRequest {
            dialect: dialect.into(),
            statement: statement.into(),
            target: target.into(),
            ..pb::ExecuteRequest::default()
        });
        request.set_timeout(timeout);
        let begun = Instant::now();
        let outcome =
            tokio::time::timeout(timeout + Duration::from_secs(5), client.execute(request)).await;
        let code = match outcome {
            Err(_) => {
                hung.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Ok(_)) => "OK".to_owned(),
            Ok(Err(status)) => format!("{:?}", status.code()),
        };
        {
            let mut window = window.lock().unwrap_or_else(|e| e.into_inner());
            let micros = begun.elapsed().as_micros() as u64;
            let _ = window
                .latency
                .get_or_insert_with(|| Histogram::new(3).expect("a histogram"))
                .record(micros.max(1));
            *window.calls.entry(code.clone()).or_default() += 1;
        }
        if code != "OK" {
            // A failing engine answers fast: pace the retries.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn take_sample(
    client: &mut GatewayClient<Channel>,
    window: &Mutex<Window>,
    pid: u32,
    started: Instant,
) -> Sample {
    let taken = std::mem::take(&mut *window.lock().unwrap_or_else(|e| e.into_inner()));
    let (p50_us, p99_us) = taken.latency.as_ref().map_or((0, 0), |h| {
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    });
    let pools = match client.list_engines(pb::ListEnginesRequest::default()).await {
        Ok(listed) => listed
            .into_inner()
            .engines
            .into_iter()
            .map(|e| (e.name, e.pool.map_or(0, |p| u64::from(p.size))))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    Sample {
        at_s: started.elapsed().as_secs_f64(),
        calls: taken.calls,
        p50_us,
        p99_us,
        rss_kib: rss_kib(pid),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
        pools,
    }
}

fn rss_kib(pid: u32) -> u64 {
    crate::spikes::status_kib(pid, "VmRSS")
}

fn kill(backends: &mut Backends, engine: &str) {
    match engine {
        "main-db" => backends.pg.kill(),
        "cache" => backends.redis.kill(),
        "graph" => backends.graph.server().kill(),
        _ => backends.metrics.kill(),
    }
}

fn restart(backends: &mut Backends, engine: &str) {
    match engine {
        "main-db" => backends.pg.restart(),
        "cache" => backends.redis.restart(),
        "graph" => backends.graph.server().restart(),
        _ => backends.metrics.restart(),
    }
}

/// Milliseconds until a call on `engine` answers OK again (`None`: not
/// within a minute).
async fn serving(client: &mut GatewayClient<Channel>, engine: &str) -> Option<u64> {
    let (target, dialect, statement) = ENGINES.iter().find(|(t, _, _)| *t == engine)?;
    let begun = Instant::now();
    while begun.elapsed() < Duration::from_secs(60) {
        let mut request = tonic::Request::new(pb::ExecuteRequest {
            dialect: (*dialect).into(),
            statement: (*statement).into(),
            target: (*target).into(),
            ..pb::ExecuteRequest::default()
        });
        request.set_timeout(Duration::from_secs(2));
        if client.execute(request).await.is_ok() {
            return Some(begun.elapsed().as_millis() as u64);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Totals, the warm-up and end figures, and the trends after warm-up.
fn summarize(report: &mut SoakReport) {
    for sample in &report.samples {
        for (code, n) in &sample.calls {
            *report.calls.entry(code.clone()).or_default() += n;
        }
    }
    let samples = &report.samples;
    let warm = samples.len() / 5;
    let after = &samples[warm.min(samples.len().saturating_sub(1))..];
    if let (Some(first), Some(last)) = (after.first(), after.last()) {
        report.rss_kib_warm = first.rss_kib;
        report.fds_warm = first.fds;
        report.rss_kib_end = last.rss_kib;
        report.fds_end = last.fds;
    }
    report.rss_kib_max = after.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    report.fds_max = after.iter().map(|s| s.fds).max().unwrap_or(0);
    let trend = |y: &dyn Fn(&Sample) -> f64| {
        let n = after.len() as f64;
        let (sx, sy) = after
            .iter()
            .fold((0.0, 0.0), |(sx, sy), s| (sx + s.at_s, sy + y(s)));
        let (mx, my) = (sx / n, sy / n);
        let (num, den) = after.iter().fold((0.0, 0.0), |(num, den), s| {
            (
                num + (s.at_s - mx) * (y(s) - my),
                den + (s.at_s - mx).powi(2),
            )
        });
        if den > 0.0 { num / den * 60.0 } else { 0.0 }
    };
    report.rss_kib_per_min = trend(&|s| s.rss_kib as f64);
    report.fds_per_min = trend(&|s| s.fds as f64);
}
