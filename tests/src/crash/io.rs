//! The crash trials' traffic: the clients' transactions, and reading back
//! what every engine holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use pb::value::Kind;
use tonic::transport::Channel;

use super::{Begun, Engine, Rng, SHAPES};

fn request(target: &str, dialect: &str, text: String, tx: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        target: target.to_owned(),
        dialect: dialect.to_owned(),
        statement: text,
        tx_id: tx.to_owned(),
        ..Default::default()
    }
}

pub(super) async fn setup(client: &mut GatewayClient<Channel>) {
    for target in ["main-db", "main"] {
        let create = request(
            target,
            "sql",
            "CREATE TABLE IF NOT EXISTS crash (k BIGINT PRIMARY KEY)".into(),
            "",
        );
        client.execute(create).await.expect("the crash table");
    }
    // The per-trial reads look nodes up by k.
    let index = request(
        "graph",
        "cypher",
        "CREATE INDEX FOR (c:Crash) ON (c.k)".into(),
        "",
    );
    client.execute(index).await.expect("the crash index");
}

/// One client: begins, writes and commits transactions until told to stop
/// (or the gateway is gone).
pub(super) async fn client_loop(
    mut client: GatewayClient<Channel>,
    stop: Arc<AtomicBool>,
    next_k: Arc<AtomicI64>,
    seed: u64,
    trial: usize,
) -> Vec<Begun> {
    let mut rng = Rng(seed.max(1));
    let mut begun = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let shape = rng.below(SHAPES.len() as u64) as usize;
        let Ok(Ok(reply)) = bounded(client.begin(pb::BeginRequest::default())).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let tx = reply.into_inner().tx_id;
        let k = next_k.fetch_add(1, Ordering::Relaxed);
        let index = begun.len();
        begun.push(Begun {
            k,
            shape,
            committed: false,
            failed_after_commit: false,
            hung: false,
        });
        let mut ok = true;
        for engine in SHAPES[shape] {
            let write = match engine {
                Engine::Postgres => request(
                    "main-db",
                    "sql",
                    format!("INSERT INTO crash VALUES ({k})"),
                    &tx,
                ),
                Engine::Sqlite => request(
                    "main",
                    "sql",
                    format!("INSERT INTO crash VALUES ({k})"),
                    &tx,
                ),
                Engine::Redis => request("cache", "redis", format!("SET crash:{k} 1"), &tx),
                Engine::Falkor => request(
                    "graph",
                    "cypher",
                    format!("CREATE (:Crash {{k: {k}}})"),
                    &tx,
                ),
                Engine::Victoria => {
                    // A minute old: VictoriaMetrics shows a sample of the
                    // current millisecond to queries only a moment later.
                    let nanos = (omnigate_drivers::ts::now_millis() - 60_000) * 1_000_000;
                    let line = format!("crash,k={k},t={trial} v=1 {nanos}");
                    request("metrics", "ts", line, &tx)
                }
            };
            if !matches!(bounded(client.execute(write)).await, Ok(Ok(_))) {
                ok = false;
                break;
            }
        }
        if !ok {
            let _ = bounded(client.rollback(pb::RollbackRequest { tx_id: tx })).await;
            // An engine is down: try again in a moment, not in a spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let commit = bounded(client.commit(pb::CommitRequest { tx_id: tx })).await;
        let Ok(commit) = commit else {
            begun[index].hung = true;
            continue;
        };
        match commit {
            Ok(_) => begun[index].committed = true,
            Err(status)
                if status.code() == tonic::Code::FailedPrecondition
                    && status.message().contains("committed") =>
            {
                begun[index].failed_after_commit = true;
            }
            Err(_) => {}
        }
    }
    begun
}

/// The most rows a read of every value may return (the server's default,
/// 10,000, is passed after a few hundred trials).
const READ_ROWS: u64 = 10_000_000;

/// The values on every engine, or why an engine cannot be read.
/// Each engine's values of `range` (one trial's), written in `trial`.
pub(super) async fn read_all(
    client: &mut GatewayClient<Channel>,
    range: std::ops::RangeInclusive<i64>,
    trial: usize,
) -> Result<BTreeMap<Engine, BTreeSet<i64>>, String> {
    let (lo, hi) = (*range.start(), *range.end());
    let mut found = BTreeMap::new();
    let read = |target: &str, dialect: &str, text: &str| {
        let mut req = request(target, dialect, text.to_owned(), "");
        req.options = Some(pb::ExecuteOptions {
            max_rows: READ_ROWS,
            ..Default::default()
        });
        let mut client = client.clone();
        let target = target.to_owned();
        async move {
            match bounded(client.execute(req)).await {
                Ok(Ok(reply)) => Ok(reply.into_inner()),
                Ok(Err(status)) => Err(format!("reading {target}: {status:?}")),
                Err(()) => Err(format!("reading {target}: no answer within {CALL_LIMIT:?}")),
            }
        }
    };
    let ints = |rows: &pb::ExecuteResponse, column: usize| -> BTreeSet<i64> {
        rows.rows
            .iter()
            .filter_map(|r| match r.values.get(column)?.kind.as_ref()? {
                Kind::Int(k) => Some(*k),
                Kind::String(s) => s.rsplit(':').next()?.parse().ok(),
                Kind::Bytes(b) => String::from_utf8_lossy(b).rsplit(':').next()?.parse().ok(),
                Kind::Map(m) => m.entries.iter().find(|e| e.key == "k").and_then(|e| {
                    match e.value.as_ref()?.kind.as_ref()? {
                        Kind::String(s) => s.parse().ok(),
                        _ => None,
                    }
                }),
                _ => None,
            })
            .collect()
    };
    let sql = format!("SELECT k FROM crash WHERE k BETWEEN {lo} AND {hi}");
    let pg = read("main-db", "sql", &sql).await?;
    found.insert(Engine::Postgres, ints(&pg, 0));
    let sqlite = read("main", "sql", &sql).await?;
    found.insert(Engine::Sqlite, ints(&sqlite, 0));
    // MGET of the range: a key that is there answers its value.
    let mut keys = Vec::new();
    if lo <= hi {
        let mget: Vec<String> = range.clone().map(|k| format!("crash:{k}")).collect();
        let redis = read("cache", "redis", &format!("MGET {}", mget.join(" "))).await?;
        let values = redis
            .rows
            .first()
            .and_then(|r| r.values.first())
            .and_then(|v| match v.kind.as_ref()? {
                Kind::List(list) => Some(list.values.clone()),
                _ => None,
            })
            .unwrap_or_default();
        keys = range
            .zip(values)
            .filter(|(_, v)| !matches!(v.kind, Some(Kind::Null(_)) | None))
            .map(|(k, _)| k)
            .collect();
    }
    found.insert(Engine::Redis, keys.into_iter().collect());
    let graph = read(
        "graph",
        "cypher",
        &format!("MATCH (c:Crash) WHERE c.k >= {lo} AND c.k <= {hi} RETURN c.k"),
    )
    .await?;
    found.insert(Engine::Falkor, ints(&graph, 0));
    let query = format!("count_over_time(crash_v{{t=\"{trial}\"}}[1d])");
    let metrics = read("metrics", "ts", &query).await?;
    found.insert(Engine::Victoria, ints(&metrics, 0));
    Ok(found)
}

/// How long a client waits for one call: a call that never returns is a
/// defect the report counts (`hung_commits`), not a reason to stall.
const CALL_LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(call: impl std::future::Future<Output = T>) -> Result<T, ()> {
    tokio::time::timeout(CALL_LIMIT, call).await.map_err(drop)
}

/// The gateway's transaction counters.
pub(super) async fn counters(client: &mut GatewayClient<Channel>) -> BTreeMap<String, u64> {
    match bounded(client.list_engines(pb::ListEnginesRequest::default())).await {
        Ok(Ok(reply)) => reply.into_inner().transactions.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}
