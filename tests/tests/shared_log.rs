//! Gateway replicas sharing one transaction log, a table in PostgreSQL:
//! they commit at once without getting in each other's way, a replica
//! leaves another's fresh transaction alone and takes over one whose
//! gateway is gone, two replicas recovering at once finish a transaction
//! once, and a commit and a replica's abort of one transaction cannot both
//! win.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate::tx::failpoint::Action;
use omnigate_drivers::postgres::PostgresConfig;
use omnigate_drivers::{Dialect, PoolSettings, Statement, StorageDriverExt, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, in_tx, request, scalar, tx_counts};
use pb::value::Kind;

/// PostgreSQL `main-db` (which holds the log) and `other-db` (a second
/// database: a second preparable engine), Redis `cache`.
fn config(pg: &PgServer, redis: &RedisServer, takeover_after: Duration) -> Config {
    let mut config = pg.gateway_config_with(redis);
    let other = PostgresConfig {
        url: Some(pg.url("other")),
        pool: PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
        ..PostgresConfig::default()
    };
    config.engines.insert(
        "other-db".into(),
        EngineConfig::new(DriverConfig::Postgres(other)),
    );
    config.transactions.log = Some("main-db".into());
    config.transactions.takeover_after = takeover_after;
    // Recovery runs when the test asks, not on a timer.
    config.transactions.recovery_interval = Duration::from_secs(3600);
    config
}

async fn servers() -> (PgServer, RedisServer) {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let d = pg.engine().await;
    d.run(Dialect::Sql, Statement::new("CREATE DATABASE other"))
        .await
        .unwrap();
    (pg, redis)
}

fn sql(target: &str, tx: &str, text: &str) -> pb::ExecuteRequest {
    let mut req = in_tx(tx, "sql", text, vec![]);
    req.target = target.to_owned();
    req
}

async fn setup(gw: &mut TestGateway) {
    for target in ["main-db", "other-db"] {
        let mut req = request(
            "sql",
            "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)",
            vec![],
        );
        req.target = target.into();
        exec(&mut gw.client, req).await;
    }
}

/// Transaction `tx`'s writes for `id`: a row in each database, and one
/// more on the Redis counter.
async fn write(gw: &mut TestGateway, tx: &str, id: i64) {
    let insert = format!("INSERT INTO t VALUES ({id})");
    exec(&mut gw.client, sql("main-db", tx, &insert)).await;
    exec(&mut gw.client, sql("other-db", tx, &insert)).await;
    exec(&mut gw.client, in_tx(tx, "redis", "INCR counter", vec![])).await;
}

async fn count(gw: &mut TestGateway, target: &str, text: &str) -> i64 {
    let mut req = request("sql", text, vec![]);
    req.target = target.into();
    match scalar(&exec(&mut gw.client, req).await) {
        Some(Kind::Int(n)) => n,
        other => panic!("{text}: {other:?}"),
    }
}

async fn counter(gw: &mut TestGateway) -> i64 {
    match scalar(&exec(&mut gw.client, request("redis", "GET counter", vec![])).await) {
        Some(Kind::String(n)) => n.parse().unwrap(),
        Some(Kind::Null(_)) => 0,
        other => panic!("counter: {other:?}"),
    }
}

/// Rows in each database, the counter, log rows, prepared transactions.
async fn state(gw: &mut TestGateway, pg: &PgServer) -> [i64; 5] {
    let log = match pg
        .scalar("SELECT count(*) FROM _omnigate.omnigate_tx_log")
        .await
    {
        Value::Int(n) => n,
        other => panic!("log rows: {other:?}"),
    };
    [
        count(gw, "main-db", "SELECT count(*) FROM t").await,
        count(gw, "other-db", "SELECT count(*) FROM t").await,
        counter(gw).await,
        log,
        count(gw, "main-db", "SELECT count(*) FROM pg_prepared_xacts").await,
    ]
}

#[tokio::test]
async fn two_replicas_commit_at_once_on_one_shared_log() {
    let (pg, redis) = servers().await;
    let long = Duration::from_secs(3600);
    let mut a = TestGateway::with_config(config(&pg, &redis, long)).await;
    let mut b = TestGateway::with_config(config(&pg, &redis, long)).await;
    setup(&mut a).await;
    let run = |mut gw: TestGateway, first: i64| async move {
        for id in first..first + 15 {
            let tx = begin_tx(&mut gw.client, None).await;
            write(&mut gw, &tx, id).await;
            let mut engines = commit_tx(&mut gw.client, &tx).await.unwrap();
            engines.sort();
            assert_eq!(engines, ["cache", "main-db", "other-db"]);
        }
        gw
    };
    let (a_done, b_done) = tokio::join!(run(a, 0), run(b, 100));
    a = a_done;
    b = b_done;
    assert_eq!(state(&mut a, &pg).await, [30, 30, 30, 0, 0]);
    // Both replicas' recovery find nothing to do, and take nothing.
    let (ra, rb) = tokio::join!(
        a.gateway.recover_transactions(),
        b.gateway.recover_transactions()
    );
    assert_eq!(
        (ra.forward, ra.backward, rb.forward, rb.backward),
        (0, 0, 0, 0)
    );
    drop(b);
}

#[tokio::test]
async fn a_replica_leaves_a_fresh_transaction_and_takes_over_an_abandoned_one() {
    let (pg, redis) = servers().await;
    let mut a = TestGateway::with_config(config(&pg, &redis, Duration::from_secs(3600))).await;
    setup(&mut a).await;
    // A commit stopped (as by a crash) after other-db's PREPARE, before
    // main-db (the deciding engine) committed its marker and the record.
    a.gateway.failpoints().set("decide", Some(Action::Stop));
    let tx = begin_tx(&mut a.client, None).await;
    write(&mut a, &tx, 1).await;
    assert!(commit_tx(&mut a.client, &tx).await.is_err());
    a.gateway.failpoints().set("decide", None);
    assert_eq!(state(&mut a, &pg).await, [0, 0, 0, 0, 1], "left prepared");

    // A replica that takes over only after an hour leaves it alone: its
    // gateway may still be finishing it.
    let mut patient =
        TestGateway::with_config(config(&pg, &redis, Duration::from_secs(3600))).await;
    let pass = patient.gateway.recover_transactions().await;
    assert_eq!((pass.backward, pass.orphans), (0, 0));
    assert_eq!(state(&mut patient, &pg).await, [0, 0, 0, 0, 1]);

    // Two replicas that take it over at once (each recovers as it starts)
    // roll the prepared part back once: no marker records it, so it was
    // never decided.
    let (mut b, mut c) = tokio::join!(
        TestGateway::with_config(config(&pg, &redis, Duration::ZERO)),
        TestGateway::with_config(config(&pg, &redis, Duration::ZERO))
    );
    let orphans = |counts: HashMap<String, u64>| counts["orphans_rolled_back"];
    assert_eq!(
        orphans(tx_counts(&mut b.client).await) + orphans(tx_counts(&mut c.client).await),
        1
    );
    assert_eq!(state(&mut b, &pg).await, [0, 0, 0, 0, 0]);
    drop((a, patient, c));
}

#[tokio::test]
async fn two_replicas_finish_a_decided_transaction_once() {
    let (pg, redis) = servers().await;
    let mut a = TestGateway::with_config(config(&pg, &redis, Duration::from_secs(3600))).await;
    setup(&mut a).await;
    // Stopped after the decision (main-db committed with its marker),
    // before other-db's COMMIT PREPARED and the Redis apply.
    a.gateway
        .failpoints()
        .set("commit_record", Some(Action::Stop));
    let tx = begin_tx(&mut a.client, None).await;
    write(&mut a, &tx, 7).await;
    let _ = commit_tx(&mut a.client, &tx).await;
    a.gateway.failpoints().set("commit_record", None);
    assert_eq!(
        state(&mut a, &pg).await,
        [1, 0, 0, 0, 1],
        "decided, unfinished"
    );
    let marker = pg
        .scalar("SELECT count(*) FROM _omnigate.omnigate_tx_markers")
        .await;
    assert_eq!(
        marker,
        Value::Int(1),
        "the deciding engine's marker records what to finish"
    );

    let (mut b, mut c) = tokio::join!(
        TestGateway::with_config(config(&pg, &redis, Duration::ZERO)),
        TestGateway::with_config(config(&pg, &redis, Duration::ZERO))
    );
    let (rb, rc) = tokio::join!(
        b.gateway.recover_transactions(),
        c.gateway.recover_transactions()
    );
    let forward = |counts: HashMap<String, u64>| counts["recovered_forward"];
    let forward = forward(tx_counts(&mut b.client).await) + forward(tx_counts(&mut c.client).await);
    assert!(forward >= 1, "{rb:?} {rc:?}");
    assert_eq!(
        state(&mut b, &pg).await,
        [1, 1, 1, 0, 0],
        "committed everywhere, the counter incremented once"
    );
    drop((a, c));
}

#[tokio::test]
async fn on_a_shared_log_commit_and_a_replicas_abort_cannot_both_win() {
    use omnigate::tx::log::{Record, TableLog};
    let (pg, _redis) = servers().await;
    let driver: std::sync::Arc<dyn omnigate_drivers::StorageDriver> =
        std::sync::Arc::new(pg.engine().await);
    let a = TableLog::open(driver.clone(), "a".into()).await.unwrap();
    let b = TableLog::open(driver, "b".into()).await.unwrap();
    assert_eq!(a.gid_prefix(), b.gid_prefix(), "one log, one prefix");
    for (tx, first_commits) in [("t1", true), ("t2", false)] {
        a.append(Record::Prepared {
            at: None,
            tx: tx.into(),
            parts: Vec::new(),
        })
        .await
        .unwrap();
        // The owner commits while a replica that took it over aborts: the
        // first to record its decision wins, the other hears it lost.
        let (first, second) = if first_commits {
            (
                a.decide(tx, true).await.unwrap(),
                b.decide(tx, false).await.unwrap(),
            )
        } else {
            (
                b.decide(tx, false).await.unwrap(),
                a.decide(tx, true).await.unwrap(),
            )
        };
        assert!(first && !second, "{tx}: {first} {second}");
    }
    // The committed one is still in doubt (to finish); the aborted one is gone.
    let doubts = b.in_doubt(Duration::ZERO).await.unwrap();
    let left: Vec<(&str, bool)> = doubts
        .iter()
        .map(|d| (d.tx.as_str(), d.committed))
        .collect();
    assert_eq!(left, [("t1", true)]);
    // Another owner's fresh row is not the replica's to take.
    assert!(
        b.in_doubt(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.in_doubt(Duration::from_secs(3600)).await.unwrap().len(),
        1
    );
}
