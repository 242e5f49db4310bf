//! Memory that comes back after a spike: the embedded default (`omnigate
//! serve` with no engines configured) is driven through spikes a hostile
//! or merely busy client makes — a transaction of many buffered Redis
//! writes with a SQL row, a large value built by `APPEND` and deleted, a
//! SQL result refused at `max_response_bytes` — and its RSS is read from
//! `/proc` (anonymous resident memory) before the first spike, at each
//! spike's peak, and after each has settled. `omnigate-soak --spikes N` runs many rounds and writes the
//! figures; the test command runs two (`frontends/tests/spikes.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::transport::Channel;

use crate::crash::Gateway;

/// How to run the spikes.
#[derive(Debug, Clone)]
pub struct Spikes {
    /// Rounds of every spike.
    pub rounds: usize,
    /// Buffered writes in the transaction spike (at most the gateway's
    /// `max_buffered_statements`, 100,000 by default).
    pub writes: usize,
    /// Mebibytes appended to one key in the `APPEND` spike.
    pub append_mib: usize,
    /// How long after a spike its RSS is read.
    pub settle: Duration,
    /// The `omnigate` binary.
    pub binary: PathBuf,
}

/// RSS around one spike, in KiB.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Spike {
    /// Which spike.
    pub name: String,
    /// The most seen while it ran.
    pub peak_kib: u64,
    /// Once it had settled.
    pub after_kib: u64,
}

/// What the spikes saw.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpikeReport {
    /// RSS after start-up and a warm-up call of each kind, KiB.
    pub baseline_kib: u64,
    /// Every spike, in order.
    pub spikes: Vec<Spike>,
    /// RSS at the end, KiB.
    pub end_kib: u64,
}

impl SpikeReport {
    /// The most RSS any spike left behind, KiB.
    pub fn worst_after_kib(&self) -> u64 {
        self.spikes.iter().map(|s| s.after_kib).max().unwrap_or(0)
    }

    /// The highest peak, KiB.
    pub fn peak_kib(&self) -> u64 {
        self.spikes.iter().map(|s| s.peak_kib).max().unwrap_or(0)
    }
}

/// The gateway's resident anonymous memory (its heap: not the binary's
/// code pages, which a spike may touch for the first time), KiB; 0 when
/// it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "RssAnon")
}

/// A KiB figure of process `pid`'s `/proc/PID/status` (`VmRSS`,
/// `RssAnon`, ...); 0 when it cannot be read.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn config(dir: &Path, addr: SocketAddr) -> PathBuf {
    let path = dir.join("omnigate.toml");
    let text = format!(
        "[server]\nlisten = \"{addr}\"\nworker_threads = 2\n\n[transactions]\nlog = \"{}\"\n",
        dir.join("tx.log").display()
    );
    std::fs::write(&path, text).expect("the config is written");
    path
}

fn on(target: &str, dialect: &str, text: &str, params: Vec<pb::Value>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        target: target.into(),
        ..crate::request(dialect, text, params)
    }
}

/// Runs `spikes` against a fresh embedded default; `progress` hears each
/// spike as it settles.
pub async fn run(spikes: &Spikes, mut progress: impl FnMut(&Spike)) -> SpikeReport {
    let dir = tempfile::tempdir().expect("a temp dir");
    let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
    let config = config(dir.path(), addr);
    let gateway = Gateway::start(&spikes.binary, &config, addr, dir.path()).await;
    let pid = gateway.pid();
    let mut client = gateway.client.clone();
    warm_up(&mut client).await;
    tokio::time::sleep(spikes.settle).await;
    let mut report = SpikeReport {
        baseline_kib: rss_kib(pid),
        ..SpikeReport::default()
    };
    assert!(
        report.baseline_kib > 0,
        "cannot read the gateway's memory from /proc/{pid}/status: the spikes need Linux"
    );
    for round in 0..spikes.rounds {
        for name in ["transaction", "append", "refused_result"] {
            let peak = Arc::new(AtomicU64::new(0));
            let running = Arc::new(AtomicBool::new(true));
            let watcher = tokio::spawn({
                let (peak, running) = (Arc::clone(&peak), Arc::clone(&running));
                async move {
                    while running.load(Ordering::Relaxed) {
                        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
            match name {
                "transaction" => transaction(&mut client, spikes.writes, round).await,
                "append" => append(&mut client, spikes.append_mib).await,
                _ => refused_result(&mut client).await,
            }
            running.store(false, Ordering::Relaxed);
            let _ = watcher.await;
            let settled = Instant::now() + spikes.settle;
            tokio::time::sleep_until(settled.into()).await;
            let spike = Spike {
                name: format!("{name} #{}", round + 1),
                peak_kib: peak.load(Ordering::Relaxed).max(rss_kib(pid)),
                after_kib: rss_kib(pid),
            };
            progress(&spike);
            report.spikes.push(spike);
        }
    }
    report.end_kib = rss_kib(pid);
    drop(gateway);
    report
}

/// One call of each kind the spikes make, so the baseline holds what any
/// use holds (pools, caches, the SQLite file).
async fn warm_up(client: &mut GatewayClient<Channel>) {
    let calls = [
        on("cache", "redis", "SET warm 1", vec![]),
        on(
            "main",
            "sql",
            "CREATE TABLE IF NOT EXISTS spikes (round int, note text)",
            vec![],
        ),
        on("main", "sql", "SELECT count(*) FROM spikes", vec![]),
    ];
    for call in calls {
        client.execute(call).await.expect("a warm-up call");
    }
    let tx = begin(client).await;
    let mut set = on("cache", "redis", "SET warm 2", vec![]);
    set.tx_id = tx.clone();
    client.execute(set).await.expect("a write in a transaction");
    client
        .commit(pb::CommitRequest { tx_id: tx })
        .await
        .expect("commit");
}

/// A new transaction's id.
async fn begin(client: &mut GatewayClient<Channel>) -> String {
    client
        .begin(pb::BeginRequest::default())
        .await
        .expect("begin")
        .into_inner()
        .tx_id
}

/// A transaction of `writes` buffered Redis writes (100-byte values, in
/// batches of 1,000) and a SQL row, committed.
async fn transaction(client: &mut GatewayClient<Channel>, writes: usize, round: usize) {
    let tx = begin(client).await;
    let value = "v".repeat(100);
    for start in (0..writes).step_by(1000) {
        let statements = (start..(start + 1000).min(writes))
            .map(|n| pb::BatchStatement {
                statement: format!("SET spike:{n} {value}"),
                ..Default::default()
            })
            .collect();
        let batch = pb::ExecuteBatchRequest {
            dialect: "redis".into(),
            target: "cache".into(),
            statements,
            tx_id: tx.clone(),
            ..Default::default()
        };
        client.execute_batch(batch).await.expect("buffered writes");
    }
    let mut row = on(
        "main",
        "sql",
        "INSERT INTO spikes VALUES ($1, 'a spike')",
        vec![crate::i(i64::try_from(round).unwrap_or(0))],
    );
    row.tx_id = tx.clone();
    client.execute(row).await.expect("a SQL row");
    client
        .commit(pb::CommitRequest { tx_id: tx })
        .await
        .expect("the spike commits");
    // The keys go again, so each round starts from the same data.
    let mut deletes = Vec::new();
    for start in (0..writes).step_by(1000) {
        let keys: Vec<String> = (start..(start + 1000).min(writes))
            .map(|n| format!("spike:{n}"))
            .collect();
        deletes.push(on(
            "cache",
            "redis",
            &format!("DEL {}", keys.join(" ")),
            vec![],
        ));
    }
    for delete in deletes {
        client.execute(delete).await.expect("DEL");
    }
}

/// A value built by `APPEND`ing 1 MiB `mib` times, then deleted.
async fn append(client: &mut GatewayClient<Channel>, mib: usize) {
    let chunk = pb::Value {
        kind: Some(pb::value::Kind::Bytes(vec![b'a'; 1 << 20])),
    };
    for _ in 0..mib {
        client
            .execute(on(
                "cache",
                "redis",
                "APPEND spike:big $1",
                vec![chunk.clone()],
            ))
            .await
            .expect("APPEND");
    }
    client
        .execute(on("cache", "redis", "DEL spike:big", vec![]))
        .await
        .expect("DEL");
}

/// A SQL result of 5M rows, refused at `max_response_bytes`.
async fn refused_result(client: &mut GatewayClient<Channel>) {
    let big = on(
        "main",
        "sql",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) \
         SELECT i, 'some text to carry' FROM n",
        vec![],
    );
    let refused = client.execute(big).await.expect_err("over the limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
}
