//! The crash trials' traffic: the clients' transactions, and reading back
//! what every engine holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use pb::value::Kind;
use tonic::transport::Channel;

use super::{Begun, Claim, Engine, Found, Rng, SHAPES};

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
            tx: tx.clone(),
            ..Begun::default()
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
                // Not idempotent: applied twice, a counter reads 2. Two
                // writes that must land together: a key the mutator of
                // some trials turns into a list first, so that one of them
                // would fail if it changed between the vote and EXEC.
                Engine::Redis => {
                    let first = request("cache", "redis", format!("INCR crash:{k}:b"), &tx);
                    if !matches!(bounded(client.execute(first)).await, Ok(Ok(_))) {
                        ok = false;
                        break;
                    }
                    request("cache", "redis", format!("INCR crash:{k}"), &tx)
                }
                Engine::Falkor => {
                    // A write that matches nothing first: the writes after
                    // it must apply all the same.
                    let nothing = request(
                        "graph",
                        "cypher",
                        format!("MATCH (x:CrashNothing {{k: {k}}}) SET x.seen = true"),
                        &tx,
                    );
                    if !matches!(bounded(client.execute(nothing)).await, Ok(Ok(_))) {
                        ok = false;
                        break;
                    }
                    request(
                        "graph",
                        "cypher",
                        format!(
                            "MERGE (c:Crash {{k: {k}}}) ON CREATE SET c.n = 1 \
                             ON MATCH SET c.n = c.n + 1"
                        ),
                        &tx,
                    )
                }
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
        begun[index].commit_sent = true;
        // Some commits with a deadline shorter than a commit step: the
        // caller goes away mid-commit, then retries its Commit and must
        // hear the true outcome.
        let mut commit = tonic::Request::new(pb::CommitRequest { tx_id: tx.clone() });
        let cut_short = rng.below(4) == 0;
        if cut_short {
            commit.set_timeout(Duration::from_millis(1 + rng.below(20)));
        }
        let Ok(answer) = bounded(client.commit(commit)).await else {
            begun[index].hung = true;
            continue;
        };
        let answer = match answer {
            Err(status) if cut_short && is_cut(&status) => {
                begun[index].retried = true;
                let retry = pb::CommitRequest { tx_id: tx };
                let Ok(answer) = bounded(client.commit(retry)).await else {
                    begun[index].hung = true;
                    continue;
                };
                answer
            }
            answer => answer,
        };
        begun[index].hear(answer.map(drop));
    }
    begun
}

/// Whether `status` says the call was cut by its deadline (or the client
/// went away), not what became of the transaction.
fn is_cut(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    )
}

/// What a Commit's answer says of the transaction.
pub(super) fn claim(answer: Result<(), tonic::Status>) -> Claim {
    match answer {
        Ok(()) => Claim::Committed,
        Err(status) => match status.code() {
            tonic::Code::FailedPrecondition if status.message().contains("committed, but") => {
                Claim::FailedAfterCommit
            }
            tonic::Code::FailedPrecondition if status.message().contains("rolled back") => {
                Claim::RolledBack
            }
            tonic::Code::Aborted => Claim::RolledBack,
            tonic::Code::NotFound => Claim::NotFound,
            _ => Claim::Unknown,
        },
    }
}

/// Commits again, on a restarted gateway, every transaction whose Commit
/// was sent and whose outcome its client never heard (the kill cut it): the
/// answer must be the truth the engines show.
pub(super) async fn retry_unanswered(client: &mut GatewayClient<Channel>, begun: &mut [Begun]) {
    for b in begun
        .iter_mut()
        .filter(|b| b.commit_sent && b.claim == Claim::Unknown)
    {
        let retry = pb::CommitRequest {
            tx_id: b.tx.clone(),
        };
        if let Ok(answer) = bounded(client.commit(retry)).await {
            b.retried = true;
            b.hear(answer.map(drop));
        }
    }
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
) -> Result<Found, String> {
    let (lo, hi) = (*range.start(), *range.end());
    let mut found = BTreeMap::new();
    // Non-idempotent writes applied more than once, by engine and k.
    let mut twice: BTreeSet<(Engine, i64)> = BTreeSet::new();
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
    // MGET of the range: a key that is there answers its value. Its
    // partner `crash:{k}:b` must be the string 1 wherever it is: a list
    // there (the mutator's) means one write of the pair failed.
    let mut keys = Vec::new();
    let mut split = BTreeSet::new();
    if lo <= hi {
        let counts = redis_counts(&read, range.clone(), "").await?;
        let partners = redis_counts(&read, range.clone(), ":b").await?;
        for ((k, count), partner) in range.zip(counts).zip(partners) {
            let Some(count) = count else { continue };
            keys.push(k);
            if count > 1 || partner.is_some_and(|n| n > 1) {
                twice.insert((Engine::Redis, k));
            }
            if partner.is_none() {
                split.insert(k);
            }
        }
    }
    found.insert(Engine::Redis, keys.into_iter().collect());
    let graph = read(
        "graph",
        "cypher",
        &format!("MATCH (c:Crash) WHERE c.k >= {lo} AND c.k <= {hi} RETURN c.k, c.n"),
    )
    .await?;
    found.insert(Engine::Falkor, ints(&graph, 0));
    for row in &graph.rows {
        let value = |i: usize| match row.values.get(i).and_then(|v| v.kind.as_ref()) {
            Some(Kind::Int(n)) => Some(*n),
            _ => None,
        };
        if let (Some(k), Some(n)) = (value(0), value(1))
            && n > 1
        {
            twice.insert((Engine::Falkor, k));
        }
    }
    let query = format!("count_over_time(crash_v{{t=\"{trial}\"}}[1d])");
    let metrics = read("metrics", "ts", &query).await?;
    found.insert(Engine::Victoria, ints(&metrics, 0));
    Ok(Found {
        on: found,
        twice,
        split,
    })
}

/// Each key `crash:{k}{suffix}` of `range`, read with one MGET: its count
/// (0 when not a number), or `None` where there is no string.
async fn redis_counts<F, R>(
    read: &F,
    range: std::ops::RangeInclusive<i64>,
    suffix: &str,
) -> Result<Vec<Option<i64>>, String>
where
    F: Fn(&str, &str, &str) -> R,
    R: std::future::Future<Output = Result<pb::ExecuteResponse, String>>,
{
    let keys: Vec<String> = range.map(|k| format!("crash:{k}{suffix}")).collect();
    let reply = read("cache", "redis", &format!("MGET {}", keys.join(" "))).await?;
    let values = reply
        .rows
        .first()
        .and_then(|r| r.values.first())
        .and_then(|v| match v.kind.as_ref()? {
            Kind::List(list) => Some(list.values.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Ok(values
        .into_iter()
        .map(|v| match v.kind {
            Some(Kind::Null(_)) | None => None,
            Some(Kind::Int(n)) => Some(n),
            Some(Kind::String(s)) => Some(s.parse().unwrap_or(0)),
            Some(Kind::Bytes(b)) => Some(String::from_utf8_lossy(&b).parse().unwrap_or(0)),
            _ => Some(0),
        })
        .collect())
}

/// Some trials' mutator: until `stop`, turns the partner key of a
/// transaction just begun (`crash:{k}:b`, of the last `clients` values)
/// into a list, every few milliseconds. A transaction whose key it turns
/// before the vote must roll back; between the vote and EXEC, the EXEC's
/// watch must apply neither write (failed after commit); after EXEC, the
/// push is refused (WRONGTYPE) and the pair stays whole.
pub(super) async fn mutator_loop(
    mut client: GatewayClient<Channel>,
    stop: Arc<AtomicBool>,
    next_k: Arc<AtomicI64>,
    clients: usize,
    seed: u64,
) {
    let mut rng = Rng(seed.max(1));
    while !stop.load(Ordering::Relaxed) {
        let k = next_k.load(Ordering::Relaxed) - 1 - rng.below(clients as u64) as i64;
        let push = request("cache", "redis", format!("RPUSH crash:{k}:b m"), "");
        // Refused after the pair's EXEC (WRONGTYPE), or the gateway is
        // down: either way, on to the next.
        let _ = bounded(client.execute(push)).await;
        tokio::time::sleep(Duration::from_millis(rng.below(4))).await;
    }
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

/// Sets Redis at its memory limit with `noeviction` (`on`), or lifts the
/// limit: writes are then refused with OOM, and an EXEC with EXECABORT.
pub(super) async fn redis_limit(client: &mut GatewayClient<Channel>, on: bool) {
    let settings: &[&str] = if on {
        &[
            "CONFIG SET maxmemory-policy noeviction",
            "CONFIG SET maxmemory 1",
        ]
    } else {
        &["CONFIG SET maxmemory 0"]
    };
    for text in settings {
        let set = request("cache", "redis", (*text).to_owned(), "");
        // An unreachable Redis (a kill this trial) keeps its limit off.
        let _ = bounded(client.execute(set)).await;
    }
}

/// Appends half a record to the log at `path`, as a kill mid-write leaves.
pub(super) fn tear(path: &std::path::Path) {
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = file.write_all(b"{\"t\":\"commit\",\"tx\":\"torn-\xC3");
    }
}
