//! Faults a cross-engine commit must survive besides a crash, each against
//! the real engines (docs/design.md, "Faults a commit must survive"): an engine
//! refusing at apply time, a buffered write that matches nothing or cannot
//! be chained, a committer and a replica's recovery applying at once, a
//! write that would fail when applied (checked before the decision), a
//! decider still committing when recovery runs, a backlog of markers, and
//! markers let go of (see `tx_outcomes.rs` for what callers hear).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::config::{DriverConfig, EngineConfig};
use omnigate::tx::TxOptions;
use omnigate::tx::failpoint::{Action, LATE_DECISION};
use omnigate::{Error as GatewayError, Gateway, Request};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
use omnigate_drivers::sqlite::{SqliteConfig, SqliteDriver};
use omnigate_drivers::{
    BeginOptions, Dialect, DriverTransaction, ExecuteOptions, Statement, StorageDriver,
    StorageDriverExt, Value,
};
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::library::{first, run};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, in_tx, request, scalar};
use tonic::Code;

fn st(text: &str) -> Statement {
    Statement::new(text)
}

async fn queue(tx: &mut Box<dyn DriverTransaction>, dialect: Dialect, text: &str) {
    tx.execute(dialect, &st(text), &ExecuteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("`{text}` is queued: {e}"));
}

#[tokio::test]
async fn redis_refusing_the_writes_at_exec_is_never_taken_as_applied() {
    let server = RedisServer::start();
    let d = server.driver().await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "SET refused 1").await;
    tx.prepare("tx-oom").await.unwrap();
    let redo = tx.redo();
    // noeviction at its limit: every queued write is refused with OOM, and
    // EXEC answers EXECABORT.
    d.run(Dialect::Redis, st("CONFIG SET maxmemory-policy noeviction"))
        .await
        .unwrap();
    d.run(Dialect::Redis, st("CONFIG SET maxmemory 1"))
        .await
        .unwrap();
    let refused = tx.commit().await.unwrap_err();
    assert!(
        matches!(refused, omnigate_drivers::Error::Precondition(_)),
        "not retried as unavailable, not a lost WATCH: {refused:?}"
    );
    assert!(refused.to_string().contains("EXEC"), "{refused}");
    // A replay (recovery) hears the refusal too: before, EXECABORT read as
    // "another replay won the WATCH" and the writes were counted applied.
    let replayed = d.replay("tx-oom", &redo).await.unwrap_err();
    assert!(replayed.to_string().contains("EXEC"), "{replayed}");
    d.run(Dialect::Redis, st("CONFIG SET maxmemory 0"))
        .await
        .unwrap();
    let exists =
        |key: &'static str| d.query_scalar(Dialect::Redis, st("EXISTS $1").bind(key.to_owned()));
    assert_eq!(exists("refused").await.unwrap(), Value::Int(0));
    assert_eq!(
        exists("omnigate:tx:tx-oom").await.unwrap(),
        Value::Int(0),
        "no marker: nothing claims the writes were applied"
    );
    // Once Redis takes writes again, the replay applies them once.
    d.replay("tx-oom", &redo).await.unwrap();
    d.replay("tx-oom", &redo).await.unwrap();
    assert_eq!(exists("refused").await.unwrap(), Value::Int(1));
}

#[tokio::test]
async fn a_committer_and_a_replay_at_once_apply_a_counter_once() {
    let server = RedisServer::start();
    let d = server.driver().await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR counter").await;
    queue(&mut tx, Dialect::Redis, "LPUSH list x").await;
    tx.prepare("tx-race").await.unwrap();
    let redo = tx.redo();
    // A replica's recovery replays the decided transaction first; the
    // committing gateway's own apply comes after it.
    d.replay("tx-race", &redo).await.unwrap();
    tx.commit().await.unwrap();
    let n = d
        .query_scalar(Dialect::Redis, st("GET counter"))
        .await
        .unwrap();
    assert_eq!(n, Value::from("1"), "INCR applied once");
    let len = d
        .query_scalar(Dialect::Redis, st("LLEN list"))
        .await
        .unwrap();
    assert_eq!(len, Value::Int(1), "LPUSH applied once");
}

#[tokio::test]
async fn a_key_changed_between_the_check_and_exec_never_fails_one_write_of_it() {
    let server = RedisServer::start();
    let d = server.driver().await;
    // Another client breaks a checked key after the check: before, EXEC
    // applied `SET other` and failed `INCR counter` (half applied); now
    // the watch aborts that EXEC, the check runs again and refuses it
    // whole, with none applied (failed after commit, every write to redo).
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "SET other x").await;
    queue(&mut tx, Dialect::Redis, "INCR counter").await;
    tx.prepare("tx-broken").await.unwrap();
    d.run(Dialect::Redis, st("SET counter word")).await.unwrap();
    let refused = tx.commit().await.unwrap_err();
    assert!(
        matches!(refused, omnigate_drivers::Error::Precondition(_)),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("none of"), "{refused}");
    let other = d.query_scalar(Dialect::Redis, st("EXISTS other")).await;
    assert_eq!(other.unwrap(), Value::Int(0), "nothing applied");

    // A change that keeps every write valid: the apply checks again and
    // applies on what is there now.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR fine").await;
    tx.prepare("tx-changed").await.unwrap();
    d.run(Dialect::Redis, st("SET fine 41")).await.unwrap();
    tx.commit().await.unwrap();
    let fine = d.query_scalar(Dialect::Redis, st("GET fine")).await;
    assert_eq!(fine.unwrap(), Value::from("42"));
    // Applied once: a replay of the same transaction does nothing.
    d.replay("tx-changed", &[vec!["INCR".into(), "fine".into()]])
        .await
        .unwrap();
    let fine = d.query_scalar(Dialect::Redis, st("GET fine")).await;
    assert_eq!(fine.unwrap(), Value::from("42"));

    // A rolled-back transaction lets go of its watch.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "SET dropped 1").await;
    tx.prepare("tx-dropped").await.unwrap();
    tx.rollback().await.unwrap();
    let dropped = d.query_scalar(Dialect::Redis, st("EXISTS dropped")).await;
    assert_eq!(dropped.unwrap(), Value::Int(0));
}

#[tokio::test]
async fn a_command_name_redis_does_not_know_is_refused_when_sent_not_at_exec() {
    let server = RedisServer::start();
    let d = server.driver().await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    // U+017F upper-cases to 'S' in Unicode, not in ASCII (nor in Redis):
    // before, it was looked up as SET, queued, and refused by EXEC after
    // the decision.
    let refused = tx
        .execute(Dialect::Redis, &st("ſet k v"), &ExecuteOptions::default())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown command"), "{refused}");
    assert!(tx.redo().is_empty(), "nothing queued");
}

#[tokio::test]
async fn writes_that_would_fail_when_applied_are_refused_before_the_decision() {
    let server = RedisServer::start();
    let d = server.driver().await;
    d.run(Dialect::Redis, st("SET word hello")).await.unwrap();
    d.run(Dialect::Redis, st("SET n 41")).await.unwrap();
    // A string an APPEND made: not "int"-encoded, still an integer.
    d.run(Dialect::Redis, st("APPEND made 1")).await.unwrap();
    d.run(Dialect::Redis, st("APPEND made 2")).await.unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR word").await;
    let refused = tx.prepare("tx-incr").await.unwrap_err();
    assert!(refused.to_string().contains("not an integer"), "{refused}");

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR n").await;
    queue(&mut tx, Dialect::Redis, "INCRBY made 3").await;
    tx.prepare("tx-ok").await.unwrap();
    tx.commit().await.unwrap();
    let made = d.query_scalar(Dialect::Redis, st("GET made")).await;
    assert_eq!(made.unwrap(), Value::from("15"));

    // The memory engine checks the same before the decision.
    let memory = MemoryDriver::new("cache", MemoryConfig::default());
    memory.run(Dialect::Redis, st("SET s text")).await.unwrap();
    let mut tx = memory.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "SET fine 1").await;
    queue(&mut tx, Dialect::Redis, "LPUSH s x").await;
    let refused = tx.prepare("tx-mem").await.unwrap_err();
    assert!(refused.to_string().contains("WRONGTYPE"), "{refused}");
    let mut tx = memory.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR s").await;
    let refused = tx.prepare("tx-mem2").await.unwrap_err();
    assert!(refused.to_string().contains("not an integer"), "{refused}");
}

#[tokio::test]
async fn every_graph_write_applies_whatever_the_others_match() {
    let server = FalkorServer::start();
    let d = server.driver().await;
    let count = |label: &str| {
        d.query_scalar(
            Dialect::Cypher,
            st(&format!("MATCH (n:{label}) RETURN count(n)")),
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
        .query_scalar(Dialect::Cypher, st("MATCH (a:After) RETURN a.seen"))
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
async fn redis_refusing_at_exec_after_the_decision_is_failed_after_commit() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    // The log in PostgreSQL's tables (the file log's case is in
    // tx_operators.rs).
    let mut config = pg.gateway_config_with(&redis);
    config.transactions.log = Some("main-db".into());
    let mut gw = TestGateway::with_config(config).await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (id int)", vec![]),
    )
    .await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k v", vec![])).await;
    for setting in [
        "CONFIG SET maxmemory-policy noeviction",
        "CONFIG SET maxmemory 1",
    ] {
        exec(&mut gw.client, request("redis", setting, vec![])).await;
    }
    // Before: OK, and the Redis write gone without a trace.
    let failed = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(failed.code(), Code::FailedPrecondition, "{failed:?}");
    assert!(
        failed.message().contains("failed a write when applying"),
        "{failed:?}"
    );
    exec(
        &mut gw.client,
        request("redis", "CONFIG SET maxmemory 0", vec![]),
    )
    .await;
    // A recovery pass at once (its marker may not be marked done yet)
    // must not apply what the client was told to redo: it would be
    // applied twice once the operator does.
    gw.gateway.recover_transactions().await;
    assert_eq!(
        scalar(&exec(&mut gw.client, request("redis", "EXISTS k", vec![])).await),
        Some(pb::value::Kind::Int(0)),
        "not replayed behind the operator's back"
    );
    let listed = gw
        .client
        .list_transactions(pb::ListTransactionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .transactions;
    let failed_tx = listed.iter().find(|t| t.tx_id == tx);
    let failed_tx = failed_tx.unwrap_or_else(|| panic!("operators see it: {listed:?}"));
    assert_eq!(
        failed_tx.state,
        pb::transaction_info::State::FailedAfterCommit as i32
    );
    // With the writes none of which EXEC applied, to re-apply.
    let writes: Vec<Vec<&[u8]>> = failed_tx
        .writes
        .iter()
        .map(|w| w.args.iter().map(Vec::as_slice).collect())
        .collect();
    assert_eq!(writes, [[&b"SET"[..], b"k", b"v"]], "{failed_tx:?}");
    // Kept beside the failure, not in its reason (which an earlier
    // replica would send a client whole).
    assert!(!failed_tx.detail.contains("SET"), "{failed_tx:?}");
    let kept = "SELECT count(*) FROM _omnigate.omnigate_tx_meta WHERE key LIKE 'failed_writes:%'";
    let main = pg.engine().await;
    let count = || main.query_scalar(Dialect::Sql, st(kept));
    assert_eq!(count().await.unwrap(), Value::Int(1));
    // A retried Commit answers the same: committed, with the failure.
    let retried = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(retried.code(), Code::FailedPrecondition, "{retried:?}");
    assert_eq!(retried.message(), failed.message());
    assert_eq!(
        scalar(&exec(&mut gw.client, request("redis", "EXISTS k", vec![])).await),
        Some(pb::value::Kind::Int(0))
    );
    // Acknowledged: the failure and its writes go.
    gw.client
        .resolve_transaction(pb::ResolveTransactionRequest {
            tx_id: tx.clone(),
            commit: true,
        })
        .await
        .unwrap();
    assert_eq!(count().await.unwrap(), Value::Int(0));
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
                st("CREATE TABLE omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)"),
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
                    st("INSERT INTO omnigate_tx_markers VALUES ($1, $2)")
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
            st("SELECT count(*) FROM omnigate_tx_markers WHERE record NOT LIKE 'done:%'"),
        )
        .await
        .unwrap();
    assert_eq!(left, Value::Int(0), "every marker finished");
    assert_eq!(gateway.recover_transactions().await.forward, 0);
}

#[tokio::test]
async fn two_engines_on_one_redis_database_each_apply_their_writes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = redis.gateway_config();
    // A second engine on the same server and database (the operator's
    // "sessions" beside "cache"): before, both applied under one marker,
    // and the second's writes were taken for applied by the first's.
    let second = omnigate_drivers::redis::RedisConfig {
        url: redis.url(0),
        ..Default::default()
    };
    config.engines.insert(
        "sessions".into(),
        EngineConfig::new(DriverConfig::Redis(second)),
    );
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    run(&gateway, "sql", "CREATE TABLE both_applied (n INTEGER)").await;
    let tx = gateway.begin(TxOptions::default()).unwrap();
    tx.execute(Request::new("sql", "INSERT INTO both_applied VALUES (1)"))
        .await
        .unwrap();
    for (engine, key) in [("cache", "from-cache"), ("sessions", "from-sessions")] {
        tx.execute(Request::new("redis", format!("INCR {key}")).target(engine))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // Recovery finishing the same record again (its marker may not be
    // marked done yet) applies neither again.
    gateway.recover_transactions().await;
    for key in ["from-cache", "from-sessions"] {
        let n = first(&gateway, "redis", &format!("GET {key}"), Some("cache")).await;
        assert_eq!(n, Value::from("1"), "{key} applied once");
    }
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
        st("INSERT INTO _omnigate.omnigate_tx_markers (tx_id, record) VALUES ($1, $2)")
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
        left = main.query_scalar(Dialect::Sql, st(open)).await.unwrap();
        keys = d.query_scalar(Dialect::Redis, st(expiring)).await.unwrap();
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
            .query_scalar(Dialect::Redis, st("TTL $1").bind(key.clone()))
            .await
            .unwrap();
        finished = falkor
            .query_scalar(
                Dialect::Cypher,
                st("MATCH (m:OmnigateTxMarker {tx_id: $id}) RETURN m.finished IS NOT NULL")
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

#[tokio::test]
async fn a_script_in_a_redis_transaction_is_applied_with_it_not_at_once() {
    let server = RedisServer::start();
    let d = server.driver().await;
    let script = "EVAL \"return redis.call('SET', KEYS[1], 'v')\" 1 scripted";
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, script).await;
    let exists = || d.query_scalar(Dialect::Redis, st("EXISTS scripted"));
    // Before: the script ran at once, outside the transaction.
    assert_eq!(exists().await.unwrap(), Value::Int(0), "not applied yet");
    tx.rollback().await.unwrap();
    assert_eq!(exists().await.unwrap(), Value::Int(0), "rolled back");
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, script).await;
    tx.commit().await.unwrap();
    assert_eq!(exists().await.unwrap(), Value::Int(1), "applied at commit");
}
