//! Ten times each engine's pool in concurrent slow calls, on every
//! engine: calls past `max_in_flight` fail at once with
//! RESOURCE_EXHAUSTED (`ENGINE_BUSY`), admitted calls run or wait for a
//! connection up to the acquire timeout (RESOURCE_EXHAUSTED,
//! `POOL_EXHAUSTED`), nothing else fails, the engine never holds more
//! than its bound, and everything serves again when the load drops.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use omnigate::config::{Config, ProcessEnv};
use omnigate_tests::auth::on;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::victoria::VictoriaServer;
use omnigate_tests::{TestGateway, exec};
use tonic::Code;
use tonic_types::StatusExt;

/// Connections per pooled engine, and calls in flight each may hold.
const POOL: usize = 2;
const BOUND: usize = 2 * POOL;
const STORM: usize = 10 * POOL;

/// Slow statements that hold a connection (or, in-process, a worker).
const ENGINES: [(&str, &str, &str); 6] = [
    ("main-db", "sql", "SELECT pg_sleep(0.3)"),
    (
        "main",
        "sql",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
         SELECT count(*) FROM c",
    ),
    (
        "cache",
        "redis",
        "EVAL \"local i = 0 while i < 3000000 do i = i + 1 end return i\" 0",
    ),
    (
        "graph",
        "cypher",
        "UNWIND range(1, 2000000) AS x RETURN sum(x)",
    ),
    ("metrics", "ts", "sum(rate(overload_v[1h]))"),
    ("mem", "redis", "KEYS *nomatch*nomatch*nomatch*"),
];

fn config(
    dir: &std::path::Path,
    pg: &PgServer,
    redis: &RedisServer,
    graph: &FalkorServer,
    vm: &VictoriaServer,
) -> Config {
    let pool =
        format!("max_connections = {POOL}\nacquire_timeout = \"1s\"\nmax_in_flight = {BOUND}\n");
    let text = format!(
        r#"
[transactions]
log = "{log}"

[engines.main-db]
kind = "postgres"
url = "{pg}"
{pool}
[engines.main]
kind = "sqlite"
path = "{sqlite}"
{pool}
[engines.cache]
kind = "redis"
url = "{redis}"
{pool}
[engines.graph]
kind = "falkordb"
url = "{graph}"
{pool}
[engines.metrics]
kind = "victoriametrics"
url = "{vm}"
{pool}
[engines.mem]
kind = "memory"
max_in_flight = {BOUND}
"#,
        log = dir.join("tx.log").display(),
        pg = pg.url("postgres"),
        sqlite = dir.join("main.sqlite3").display(),
        redis = redis.url(0),
        graph = graph.url(),
        vm = vm.url(),
    );
    Config::parse(&text, &ProcessEnv).unwrap()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_pool_fails_fast_past_the_bound_and_recovers_on_every_engine() {
    let (pg, redis, graph, vm) = (
        PgServer::start(),
        RedisServer::start(),
        FalkorServer::start(),
        VictoriaServer::start(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut gw = TestGateway::with_config(config(dir.path(), &pg, &redis, &graph, &vm)).await;
    // Enough keys that the memory engine's KEYS scan takes a while.
    for batch in 0..20 {
        let mut mset = String::from("MSET");
        for k in 0..1000 {
            mset.push_str(&format!(" k{batch}x{k} v"));
        }
        exec(&mut gw.client, on("mem", "redis", &mset)).await;
    }

    for (target, dialect, statement) in ENGINES {
        // The most in flight on the engine while the storm runs.
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (mut client, peak, stop) = (gw.client.clone(), peak.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let engine = omnigate_tests::engine(&mut client, target).await;
                    let now = engine.counters.get("calls_in_flight").copied().unwrap_or(0);
                    peak.fetch_max(now, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let storm: Vec<_> = (0..STORM)
            .map(|_| {
                let mut client = gw.client.clone();
                tokio::spawn(async move {
                    let mut request = tonic::Request::new(on(target, dialect, statement));
                    request.set_timeout(Duration::from_secs(10));
                    client.execute(request).await
                })
            })
            .collect();
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for call in storm {
            let outcome = match call.await.unwrap() {
                Ok(_) => "OK".to_owned(),
                Err(status) => {
                    assert_eq!(
                        status.code(),
                        Code::ResourceExhausted,
                        "{target}: only the bound or the pool may refuse: {status:?}"
                    );
                    reason(&status)
                }
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        stop.store(true, Ordering::Relaxed);
        watcher.await.unwrap();
        let peak = peak.load(Ordering::Relaxed);
        assert!(
            peak <= BOUND as u64,
            "{target}: {peak} in flight, bound {BOUND}"
        );
        assert!(
            outcomes.get("ENGINE_BUSY").copied().unwrap_or(0) > 0 || target == "metrics",
            "{target}: {STORM} slow calls never met the bound of {BOUND}: {outcomes:?}"
        );
        assert!(
            outcomes.get("OK").copied().unwrap_or(0) > 0,
            "{target}: {outcomes:?}"
        );

        // The load drops: every call is served, the pool is whole.
        for _ in 0..BOUND {
            let mut request = tonic::Request::new(on(target, dialect, statement));
            request.set_timeout(Duration::from_secs(10));
            gw.client
                .execute(request)
                .await
                .unwrap_or_else(|e| panic!("{target} after the storm: {e:?}"));
        }
        let engine = omnigate_tests::engine(&mut gw.client, target).await;
        let pool = engine.pool.unwrap_or_default();
        assert_eq!(pool.in_use, 0, "{target}: {pool:?}");
        assert!(
            pool.size as usize <= POOL.max(1) || pool.max_size == 0,
            "{target}: {pool:?}"
        );
        println!("{target}: {outcomes:?}, peak in flight {peak}");
    }
}
