//! Faults a cross-engine commit must survive besides a crash, each against
//! the real engines (docs/design.md, "Faults a commit must survive"): a
//! buffered graph write that matches nothing or cannot be chained, a
//! decider still committing when recovery runs, a backlog of markers, a
//! fenced decision, and markers let go of (`tx_faults_redis.rs` has Redis
//! refusing or changing under a commit; `tx_outcomes.rs` what callers
//! hear).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::config::{DriverConfig, EngineConfig};
use omnigate::tx::TxOptions;
use omnigate::tx::failpoint::{Action, LATE_DECISION};
use omnigate::{Error as GatewayError, Gateway, Request};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_drivers::sqlite::{SqliteConfig, SqliteDriver};
use omnigate_drivers::{BeginOptions, Dialect, Statement, StorageDriver, StorageDriverExt, Value};
use omnigate_tests::driver::queue;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::library::{first, run};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

#[tokio::test]
async fn every_graph_write_applies_whatever_the_others_match() {
    let server = FalkorServer::start();
    let d = server.driver().await;
    let count = |label: &str| {
        d.query_scalar(
            Dialect::Cypher,
            Statement::new(format!("MATCH (n:{label}) RETURN count(n)")),
        )
    };
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Cypher, "CREATE (:First)").await;
    queue(&mut tx, Dialect::Cypher, "MATCH (x:Nothing) SET x.v = 1").await;
    queue(&mut tx, Dialect::Cypher, "CREATE (:After)").await;
    // A write with its own WITH: it once broke the chain's carried marker.
    queue(
        &mut tx,
        Dialect::Cypher,
        "MATCH (a:After) WITH a SET a.seen = true",
    )
    .await;
    tx.prepare("tx-nothing").await.unwrap();
    let redo = tx.redo();
    tx.commit().await.unwrap();
    assert_eq!(count("First").await.unwrap(), Value::Int(1));
    assert_eq!(
        count("After").await.unwrap(),
        Value::Int(1),
        "the write after one that matched nothing ran"
    );
    let seen = d
        .query_scalar(
            Dialect::Cypher,
            Statement::new("MATCH (a:After) RETURN a.seen"),
        )
        .await
        .unwrap();
    assert_eq!(seen, Value::Bool(true));
    assert_eq!(
        count("OmnigateTxMarker").await.unwrap(),
        Value::Int(1),
        "the marker was written"
    );
    // Applied: a replay (a replica's recovery) does nothing.
    d.replay("tx-nothing", &redo).await.unwrap();
    assert_eq!(count("After").await.unwrap(), Value::Int(1));
}

#[tokio::test]
async fn recovery_never_rolls_back_what_a_late_decider_commits() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = pg.gateway_config();
    config.engines.insert(
        "lite".into(),
        EngineConfig::new(DriverConfig::Sqlite(SqliteConfig::file(
            dir.path().join("lite.sqlite3"),
        ))),
    );
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    for (target, ddl) in [
        ("main-db", "CREATE TABLE t (id int)"),
        ("lite", "CREATE TABLE t (id INTEGER)"),
    ] {
        gateway
            .execute(Request::new("sql", ddl).target(target))
            .await
            .unwrap();
    }
    let tx = gateway.begin(TxOptions::default()).unwrap();
    for target in ["main-db", "lite"] {
        tx.execute(Request::new("sql", "INSERT INTO t VALUES (1)").target(target))
            .await
            .unwrap();
    }
    // SQLite decides; its COMMIT is cut by the step timeout and lands a
    // moment later, after the coordinator reported the outcome in doubt.
    gateway.failpoints().set(LATE_DECISION, Some(Action::Fail));
    let doubt = tx.commit().await.unwrap_err();
    assert!(matches!(doubt, GatewayError::TxInDoubt { .. }), "{doubt:?}");
    gateway.failpoints().set(LATE_DECISION, None);
    // Recovery at once: the PostgreSQL part is prepared and no visible
    // marker names it. Before, it was rolled back here, and the late
    // SQLite commit then made the transaction half applied.
    gateway.recover_transactions().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    gateway.recover_transactions().await;
    let count = "SELECT count(*) FROM t";
    let lite = first(&gateway, "sql", count, Some("lite")).await;
    let main = first(&gateway, "sql", count, Some("main-db")).await;
    assert_eq!(lite, Value::Int(1), "the late decision committed");
    assert_eq!(main, Value::Int(1), "so the prepared part committed too");
}

#[tokio::test]
async fn recovery_reads_a_backlog_of_markers_page_by_page_and_finishes_all() {
    use omnigate::tx::log::{PartRecord, encode_args};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("decider.sqlite3");
    let backlog = 450; // over six pages of markers
    {
        let sqlite = SqliteDriver::open("main", SqliteConfig::file(&db))
            .await
            .unwrap();
        sqlite
            .run(
                Dialect::Sql,
                Statement::new("CREATE TABLE omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)"),
            )
            .await
            .unwrap();
        for n in 0..backlog {
            let redo = vec![encode_args(&[
                bytes::Bytes::from_static(b"INCR"),
                bytes::Bytes::from(format!("backlog:{n}")),
            ])];
            // Records as an earlier version wrote them: the marker named
            // by the transaction alone.
            let record = serde_json::to_string(&vec![PartRecord::Buffered {
                engine: "cache".into(),
                redo,
            }])
            .unwrap();
            sqlite
                .run(
                    Dialect::Sql,
                    Statement::new("INSERT INTO omnigate_tx_markers VALUES ($1, $2)")
                        .bind(format!("tx{n:04}"))
                        .bind(record),
                )
                .await
                .unwrap();
        }
    }
    let mut config = omnigate::Config::default();
    config.engines.insert(
        "main".into(),
        EngineConfig::new(DriverConfig::Sqlite(SqliteConfig::file(&db))),
    );
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    // Startup recovery finishes the backlog: each redo applied once.
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    for n in [0, 199, 200, 201, 449] {
        let value = first(&gateway, "redis", &format!("GET backlog:{n}"), None).await;
        assert_eq!(value, Value::from("1"), "backlog:{n}");
    }
    let left = SqliteDriver::open("main", SqliteConfig::file(&db))
        .await
        .unwrap()
        .query_scalar(
            Dialect::Sql,
            Statement::new(
                "SELECT count(*) FROM omnigate_tx_markers WHERE record NOT LIKE 'done:%'",
            ),
        )
        .await
        .unwrap();
    assert_eq!(left, Value::Int(0), "every marker finished");
    assert_eq!(gateway.recover_transactions().await.forward, 0);
}

#[tokio::test]
async fn a_fenced_decision_commits_nothing_even_on_a_fresh_connection() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config = pg.gateway_config_with(&redis);
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    run(&gateway, "sql", "CREATE TABLE fenced (n INTEGER)").await;
    let tx = gateway.begin(TxOptions::default()).unwrap();
    let id = tx.id().to_owned();
    tx.execute(Request::new("sql", "INSERT INTO fenced VALUES (1)"))
        .await
        .unwrap();
    tx.execute(Request::new("redis", "SET fenced 1"))
        .await
        .unwrap();
    // A replica's recovery fenced the transaction (its marker's key holds
    // "aborted") before the decision: the decision must fail whole. The
    // connection has never prepared the marker: before, its COMMIT went
    // out ahead of the marker's INSERT and committed the row.
    let main = pg.engine().await;
    main.run(
        Dialect::Sql,
        Statement::new("INSERT INTO _omnigate.omnigate_tx_markers (tx_id, record) VALUES ($1, $2)")
            .bind(id.clone())
            .bind(format!("{}0", omnigate_drivers::decision::FENCE)),
    )
    .await
    .unwrap();
    let refused = tx.commit().await.unwrap_err();
    assert!(
        !matches!(refused, GatewayError::TxInDoubt { .. }),
        "refused, not in doubt: {refused:?}"
    );
    let rows = first(&gateway, "sql", "SELECT count(*) FROM fenced", None).await;
    assert_eq!(rows, Value::Int(0), "nothing committed");
    let key = first(&gateway, "redis", "EXISTS fenced", None).await;
    assert_eq!(key, Value::Int(0), "nothing applied");
}

#[tokio::test]
async fn markers_of_many_commits_are_marked_done_together() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config = pg.gateway_config_with(&redis);
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    run(&gateway, "sql", "CREATE TABLE many (n INTEGER)").await;
    // Commits at once: their markers go in batches (one UPDATE for many on
    // PostgreSQL, one pipeline of EXPIREs on Redis).
    let commits = (0..24).map(|n| {
        let gateway = gateway.clone();
        async move {
            let tx = gateway.begin(TxOptions::default()).unwrap();
            tx.execute(Request::new(
                "sql",
                format!("INSERT INTO many VALUES ({n})"),
            ))
            .await
            .unwrap();
            tx.execute(Request::new("redis", format!("SET many:{n} 1")))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    });
    futures::future::join_all(commits).await;
    let main = pg.engine().await;
    let open = "SELECT count(*) FROM _omnigate.omnigate_tx_markers WHERE record NOT LIKE 'done:%'";
    let d = redis.driver().await;
    let expiring = "EVAL \"local n = 0 for _, k in ipairs(redis.call('KEYS', 'omnigate:tx:*')) \
                    do if redis.call('TTL', k) > 0 then n = n + 1 end end return n\" 0";
    let (mut left, mut keys) = (Value::Null, Value::Null);
    for _ in 0..100 {
        left = main
            .query_scalar(Dialect::Sql, Statement::new(open))
            .await
            .unwrap();
        keys = d
            .query_scalar(Dialect::Redis, Statement::new(expiring))
            .await
            .unwrap();
        if left == Value::Int(0) && keys == Value::Int(24) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, Value::Int(0), "every marker marked done");
    assert_eq!(keys, Value::Int(24), "every Redis marker set to expire");
}

#[tokio::test]
async fn markers_are_let_go_of_once_a_transaction_has_finished_everywhere() {
    let (redis, graph) = (RedisServer::start(), FalkorServer::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config = redis.gateway_config();
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(FalkorConfig {
            url: graph.url(),
            graph: "g".into(),
            ..FalkorConfig::default()
        })),
    );
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    run(&gateway, "sql", "CREATE TABLE m (n INTEGER)").await;
    let tx = gateway.begin(TxOptions::default()).unwrap();
    let id = tx.id().to_owned();
    for (dialect, text) in [
        ("sql", "INSERT INTO m VALUES (1)"),
        ("redis", "SET marked 1"),
        ("cypher", "CREATE (:Marked)"),
    ] {
        tx.execute(Request::new(dialect, text)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let d = redis.driver().await;
    let falkor = graph.driver().await;
    // Each buffered engine's marker is named by the transaction and the
    // engine.
    let key = format!("omnigate:tx:{id}@cache");
    let graph_marker = format!("{id}@graph");
    // Let go of off the caller's path: polled.
    let mut ttl = Value::Int(-2);
    let mut finished = Value::Null;
    for _ in 0..100 {
        ttl = d
            .query_scalar(Dialect::Redis, Statement::new("TTL $1").bind(key.clone()))
            .await
            .unwrap();
        finished = falkor
            .query_scalar(
                Dialect::Cypher,
                Statement::new(
                    "MATCH (m:OmnigateTxMarker {tx_id: $id}) RETURN m.finished IS NOT NULL",
                )
                .bind_named("id", graph_marker.as_str()),
            )
            .await
            .unwrap();
        if matches!(ttl, Value::Int(t) if t > 0) && finished == Value::Bool(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Before: 7 days from the commit (and evictable by volatile-* all
    // along); FalkorDB's marker node stayed for ever.
    let Value::Int(ttl) = ttl else {
        panic!("TTL answers an integer: {ttl:?}")
    };
    assert!(
        ttl > 0 && ttl <= omnigate_drivers::MARKER_GRACE.as_secs() as i64,
        "the Redis marker expires within the grace period: {ttl}"
    );
    assert_eq!(finished, Value::Bool(true), "the graph marker is finished");
}
