//! Transactions across real engines: PostgreSQL with Redis committed and
//! rolled back together, a failure before the decision, and recovery of
//! what a crash at each step of the commit leaves in the log and on the
//! engines (the log and the prepared transactions are made as the crashed
//! gateway left them, then a new gateway starts on them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate::tx::log::{PartRecord, Record, encode_args};
use omnigate_drivers::{BeginOptions, Dialect, Statement, StorageDriver, StorageDriverExt, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{
    TestGateway, assert_status, begin_tx, commit_tx, exec, fail, i, in_tx, request, s, scalar,
    tx_counts,
};
use pb::value::Kind;

/// PostgreSQL as `main-db` and Redis as `cache`; the log at `log`.
fn config(pg: &PgServer, redis: &RedisServer, log: Option<PathBuf>) -> Config {
    let mut config = pg.gateway_config_with(redis);
    if let Some(log) = log {
        config.transactions.log = Some(log.display().to_string());
    }
    config
}

async fn setup(gw: &mut TestGateway) {
    exec(
        &mut gw.client,
        request(
            "sql",
            "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)",
            vec![],
        ),
    )
    .await;
}

async fn row(gw: &mut TestGateway, id: i64) -> Option<Kind> {
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT count(*) FROM t WHERE id = $1", vec![i(id)]),
    )
    .await;
    scalar(&rows)
}

async fn key(gw: &mut TestGateway, key: &str) -> Option<Kind> {
    scalar(&exec(&mut gw.client, request("redis", "GET $1", vec![s(key)])).await)
}

#[tokio::test]
async fn postgres_and_redis_commit_and_roll_back_together() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut gw = TestGateway::with_config(config(&pg, &redis, None)).await;
    setup(&mut gw).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k1 one", vec![])).await;
    let mut engines = commit_tx(&mut gw.client, &tx).await.unwrap();
    engines.sort();
    assert_eq!(engines, vec!["cache".to_owned(), "main-db".to_owned()]);
    assert_eq!(row(&mut gw, 1).await, Some(Kind::Int(1)));
    assert_eq!(key(&mut gw, "k1").await, Some(Kind::String("one".into())));
    let prepared = exec(
        &mut gw.client,
        request("sql", "SELECT count(*) FROM pg_prepared_xacts", vec![]),
    )
    .await;
    assert_eq!(
        scalar(&prepared),
        Some(Kind::Int(0)),
        "nothing left prepared"
    );

    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (2)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k2 two", vec![])).await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    assert_eq!(row(&mut gw, 2).await, Some(Kind::Int(0)));
    assert!(matches!(key(&mut gw, "k2").await, Some(Kind::Null(_))));
}

#[tokio::test]
async fn postgres_decides_when_it_is_the_only_live_engine_even_without_prepare() {
    // A default install: no prepared transactions. PostgreSQL is the one
    // live engine here, so it decides (commits with its marker) and needs
    // no PREPARE.
    let (pg, redis) = (
        PgServer::start_without_prepared_transactions(),
        RedisServer::start(),
    );
    let mut gw = TestGateway::with_config(config(&pg, &redis, None)).await;
    setup(&mut gw).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (3)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k3 three", vec![])).await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    assert_eq!(row(&mut gw, 3).await, Some(Kind::Int(1)));
    assert_eq!(key(&mut gw, "k3").await, Some(Kind::String("three".into())));
    // The decision and its record were PostgreSQL's marker row, in its
    // commit: the gateway's log holds no record of the transaction.
    let log = std::fs::read_to_string(gw.dir.path().join("tx.log")).unwrap_or_default();
    assert!(!log.contains(&tx), "{log}");
    // Once every part finished, the marker is deleted (just after the
    // commit returns).
    let mut left = None;
    for _ in 0..100 {
        let marker = pg
            .scalar(
                "SELECT count(*) FROM _omnigate.omnigate_tx_markers \
                 WHERE record NOT LIKE 'done:%'",
            )
            .await;
        left = Some(marker);
        if left == Some(Value::Int(0)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        left,
        Some(Value::Int(0)),
        "the marker of a finished transaction"
    );
}

/// Writes the log a crashed gateway would have left.
fn write_log(path: &Path, records: &[Record]) {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// A PostgreSQL transaction inserting `id`, prepared under `gid` and left
/// so (its session gone, as with a crashed gateway).
async fn prepared_insert(pg: &PgServer, id: i64, gid: &str) {
    let d = pg.engine().await;
    d.run(
        Dialect::Sql,
        Statement::new("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)"),
    )
    .await
    .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(
        Dialect::Sql,
        &Statement::new("INSERT INTO t VALUES ($1)").bind(id),
        &Default::default(),
    )
    .await
    .unwrap();
    tx.prepare(gid).await.unwrap();
}

fn redo(args: &[&str]) -> Vec<String> {
    let args: Vec<bytes::Bytes> = args
        .iter()
        .map(|a| bytes::Bytes::from(a.to_string()))
        .collect();
    encode_args(&args)
}

/// Redis' part: the write; its replay adds the transaction's marker.
fn buffered(key: &str) -> PartRecord {
    PartRecord::BufferedPerEngine {
        engine: "cache".into(),
        redo: vec![redo(&["SET", key, "v"])],
    }
}

async fn prepared_count(pg: &PgServer) -> Value {
    pg.engine()
        .await
        .query_scalar(
            Dialect::Sql,
            Statement::new("SELECT count(*) FROM pg_prepared_xacts"),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn recovery_finishes_a_transaction_decided_before_the_crash() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tx.log");
    // Crashed after the COMMIT record, before COMMIT PREPARED and the apply.
    prepared_insert(&pg, 10, "omnigate-crashed-tx10-main-db").await;
    // Crashed after the PREPARED record, with no engine to decide: it never
    // committed anywhere.
    prepared_insert(&pg, 11, "omnigate-crashed-tx11-main-db").await;
    // Crashed after PREPARE, before the PREPARED record: an orphan.
    prepared_insert(&pg, 12, "omnigate-crashed-tx12-main-db").await;
    // Another gateway's prepared transaction: not this log's to touch.
    prepared_insert(&pg, 13, "omnigate-other-tx13-main-db").await;
    write_log(
        &log,
        &[
            Record::Log {
                id: "crashed".into(),
            },
            Record::Prepared {
                at: None,
                tx: "tx10".into(),
                parts: vec![
                    PartRecord::Prepared {
                        engine: "main-db".into(),
                        gid: "omnigate-crashed-tx10-main-db".into(),
                    },
                    buffered("k10"),
                ],
            },
            Record::Commit { tx: "tx10".into() },
            Record::Prepared {
                at: None,
                tx: "tx11".into(),
                parts: vec![
                    PartRecord::Prepared {
                        engine: "main-db".into(),
                        gid: "omnigate-crashed-tx11-main-db".into(),
                    },
                    buffered("k11"),
                ],
            },
        ],
    );
    assert_eq!(prepared_count(&pg).await, Value::Int(4));
    let mut gw = TestGateway::with_config(config(&pg, &redis, Some(log.clone()))).await;
    assert_eq!(
        row(&mut gw, 10).await,
        Some(Kind::Int(1)),
        "finished forward"
    );
    assert_eq!(key(&mut gw, "k10").await, Some(Kind::String("v".into())));
    assert_eq!(row(&mut gw, 11).await, Some(Kind::Int(0)), "rolled back");
    assert!(matches!(key(&mut gw, "k11").await, Some(Kind::Null(_))));
    assert_eq!(
        row(&mut gw, 12).await,
        Some(Kind::Int(0)),
        "the orphan rolled back"
    );
    assert_eq!(
        prepared_count(&pg).await,
        Value::Int(1),
        "only the other gateway's is left"
    );
    let counts = tx_counts(&mut gw.client).await;
    assert_eq!(
        (
            counts["recovered_forward"],
            counts["recovered_backward"],
            counts["orphans_rolled_back"],
            counts["in_doubt"]
        ),
        (1, 1, 1, 0),
        "{counts:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("{\"t\":\"done\",\"tx\":\"tx10\"}"), "{text}");
    assert!(text.contains("{\"t\":\"abort\",\"tx\":\"tx11\"}"), "{text}");

    // A replay is a no-op: the marker shows the writes were applied.
    exec(&mut gw.client, request("redis", "SET k10 changed", vec![])).await;
    // The log as if the DONE had been lost; this gateway keeps it open.
    write_log(
        &log,
        &[
            Record::Log {
                id: "crashed".into(),
            },
            Record::Prepared {
                at: None,
                tx: "tx10".into(),
                parts: vec![buffered("k10")],
            },
            Record::Commit { tx: "tx10".into() },
        ],
    );
    let pass = gw.gateway.recover_transactions().await;
    assert_eq!(pass.forward, 1, "{pass:?}");
    assert_eq!(
        key(&mut gw, "k10").await,
        Some(Kind::String("changed".into()))
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("{\"t\":\"done\",\"tx\":\"tx10\"}"),
        "recovered (as a no-op): {text}"
    );
}

#[tokio::test]
async fn recovery_finishes_what_a_deciding_engines_marker_records() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tx.log");
    let db = dir.path().join("decider.sqlite3");
    let mut config = config(&pg, &redis, Some(log.clone()));
    config.engines.insert(
        "main".into(),
        EngineConfig::new(DriverConfig::Sqlite(
            omnigate_drivers::sqlite::SqliteConfig::file(&db),
        )),
    );
    // The log's identity, as a crashed gateway left it (no records: a
    // transaction with a deciding engine writes none).
    write_log(
        &log,
        &[Record::Log {
            id: "decided".into(),
        }],
    );
    prepared_insert(&pg, 20, "omnigate-decided-tx20-main-db").await;
    prepared_insert(&pg, 21, "omnigate-decided-tx21-main-db").await;
    // The deciding engine (SQLite) committed tx20: its marker records the
    // prepared part and Redis' writes. tx21 never got that far.
    let record = serde_json::to_string(&vec![
        PartRecord::Prepared {
            engine: "main-db".into(),
            gid: "omnigate-decided-tx20-main-db".into(),
        },
        buffered("k20"),
    ])
    .unwrap();
    {
        let sqlite = omnigate_drivers::sqlite::SqliteDriver::open(
            "main",
            omnigate_drivers::sqlite::SqliteConfig::file(&db),
        )
        .await
        .unwrap();
        sqlite
            .run(
                Dialect::Sql,
                Statement::new(
                    "CREATE TABLE omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)",
                ),
            )
            .await
            .unwrap();
        sqlite
            .run(
                Dialect::Sql,
                Statement::new("INSERT INTO omnigate_tx_markers VALUES ('tx20', $1)").bind(record),
            )
            .await
            .unwrap();
    }
    let mut gw = TestGateway::with_config(config).await;
    let mut pg_row = request("sql", "SELECT count(*) FROM t WHERE id = $1", vec![i(20)]);
    pg_row.target = "main-db".into();
    assert_eq!(
        scalar(&exec(&mut gw.client, pg_row.clone()).await),
        Some(Kind::Int(1)),
        "committed forward"
    );
    assert_eq!(key(&mut gw, "k20").await, Some(Kind::String("v".into())));
    pg_row.params = vec![i(21)];
    assert_eq!(
        scalar(&exec(&mut gw.client, pg_row).await),
        Some(Kind::Int(0)),
        "never decided: rolled back as an orphan"
    );
    assert_eq!(prepared_count(&pg).await, Value::Int(0));
    // The fence the orphan's rollback left (see markers::fence) and the
    // done mark of a finished one are not markers of unfinished decisions.
    let unfinished = "SELECT count(*) FROM omnigate_tx_markers \
         WHERE record NOT LIKE 'aborted:%' AND record NOT LIKE 'done:%'";
    // No caller reads (or forges) them through the gateway...
    let mut markers = request("sql", unfinished, vec![]);
    markers.target = "main".into();
    let refused = fail(&mut gw.client, markers).await;
    assert_status(
        &refused,
        tonic::Code::PermissionDenied,
        "may not name the table omnigate_tx_markers on engine main",
    );
    // ...an operator does, on the engine.
    let sqlite = omnigate_drivers::sqlite::SqliteDriver::open(
        "main",
        omnigate_drivers::sqlite::SqliteConfig::file(&db),
    )
    .await
    .unwrap();
    assert_eq!(
        sqlite
            .query_scalar(Dialect::Sql, Statement::new(unfinished))
            .await
            .unwrap(),
        Value::Int(0),
        "the finished transaction's marker is gone"
    );
    let counts = tx_counts(&mut gw.client).await;
    assert_eq!(
        (counts["recovered_forward"], counts["orphans_rolled_back"]),
        (1, 1),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_redis_write_that_would_fail_when_applied_rolls_back_every_engine() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut gw = TestGateway::with_config(config(&pg, &redis, None)).await;
    setup(&mut gw).await;
    exec(&mut gw.client, request("redis", "RPUSH list a", vec![])).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (30)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k30 v", vec![])).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "INCR list", vec![])).await;
    let status = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("WRONGTYPE"), "{status:?}");
    assert_eq!(
        row(&mut gw, 30).await,
        Some(Kind::Int(0)),
        "checked before the decision"
    );
    assert!(matches!(key(&mut gw, "k30").await, Some(Kind::Null(_))));
}
