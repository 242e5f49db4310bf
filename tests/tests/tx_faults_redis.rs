//! Faults of a cross-engine commit's Redis part, each against a real Redis
//! (docs/design.md, "Faults a commit must survive"): Redis refusing the
//! writes at `EXEC`, before or after the decision; a committer and a
//! replica's recovery applying at once; a key changed between the check
//! and `EXEC`; writes that would fail, refused before the decision; two
//! engines on one database; a script applied with its transaction.
#![allow(clippy::unwrap_used)]

use omnigate::config::{DriverConfig, EngineConfig};
use omnigate::tx::TxOptions;
use omnigate::{Gateway, Request};
use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
use omnigate_drivers::{
    BeginOptions, Dialect, ExecuteOptions, Statement, StorageDriver, StorageDriverExt, Value,
};
use omnigate_proto::v1 as pb;
use omnigate_tests::driver::queue;
use omnigate_tests::library::{first, run};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, in_tx, request, scalar};
use tonic::Code;

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
    d.run(
        Dialect::Redis,
        Statement::new("CONFIG SET maxmemory-policy noeviction"),
    )
    .await
    .unwrap();
    d.run(Dialect::Redis, Statement::new("CONFIG SET maxmemory 1"))
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
    d.run(Dialect::Redis, Statement::new("CONFIG SET maxmemory 0"))
        .await
        .unwrap();
    let exists = |key: &'static str| {
        d.query_scalar(
            Dialect::Redis,
            Statement::new("EXISTS $1").bind(key.to_owned()),
        )
    };
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
        .query_scalar(Dialect::Redis, Statement::new("GET counter"))
        .await
        .unwrap();
    assert_eq!(n, Value::from("1"), "INCR applied once");
    let len = d
        .query_scalar(Dialect::Redis, Statement::new("LLEN list"))
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
    d.run(Dialect::Redis, Statement::new("SET counter word"))
        .await
        .unwrap();
    let refused = tx.commit().await.unwrap_err();
    assert!(
        matches!(refused, omnigate_drivers::Error::Precondition(_)),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("none of"), "{refused}");
    let other = d
        .query_scalar(Dialect::Redis, Statement::new("EXISTS other"))
        .await;
    assert_eq!(other.unwrap(), Value::Int(0), "nothing applied");

    // A change that keeps every write valid: the apply checks again and
    // applies on what is there now.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR fine").await;
    tx.prepare("tx-changed").await.unwrap();
    d.run(Dialect::Redis, Statement::new("SET fine 41"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let fine = d
        .query_scalar(Dialect::Redis, Statement::new("GET fine"))
        .await;
    assert_eq!(fine.unwrap(), Value::from("42"));
    // Applied once: a replay of the same transaction does nothing.
    d.replay("tx-changed", &[vec!["INCR".into(), "fine".into()]])
        .await
        .unwrap();
    let fine = d
        .query_scalar(Dialect::Redis, Statement::new("GET fine"))
        .await;
    assert_eq!(fine.unwrap(), Value::from("42"));

    // A rolled-back transaction lets go of its watch.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "SET dropped 1").await;
    tx.prepare("tx-dropped").await.unwrap();
    tx.rollback().await.unwrap();
    let dropped = d
        .query_scalar(Dialect::Redis, Statement::new("EXISTS dropped"))
        .await;
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
        .execute(
            Dialect::Redis,
            &Statement::new("ſet k v"),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown command"), "{refused}");
    assert!(tx.redo().is_empty(), "nothing queued");
}

#[tokio::test]
async fn writes_that_would_fail_when_applied_are_refused_before_the_decision() {
    let server = RedisServer::start();
    let d = server.driver().await;
    d.run(Dialect::Redis, Statement::new("SET word hello"))
        .await
        .unwrap();
    d.run(Dialect::Redis, Statement::new("SET n 41"))
        .await
        .unwrap();
    // A string an APPEND made: not "int"-encoded, still an integer.
    d.run(Dialect::Redis, Statement::new("APPEND made 1"))
        .await
        .unwrap();
    d.run(Dialect::Redis, Statement::new("APPEND made 2"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR word").await;
    let refused = tx.prepare("tx-incr").await.unwrap_err();
    assert!(refused.to_string().contains("not an integer"), "{refused}");

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, "INCR n").await;
    queue(&mut tx, Dialect::Redis, "INCRBY made 3").await;
    tx.prepare("tx-ok").await.unwrap();
    tx.commit().await.unwrap();
    let made = d
        .query_scalar(Dialect::Redis, Statement::new("GET made"))
        .await;
    assert_eq!(made.unwrap(), Value::from("15"));

    // The memory engine checks the same before the decision.
    let memory = MemoryDriver::new("cache", MemoryConfig::default());
    memory
        .run(Dialect::Redis, Statement::new("SET s text"))
        .await
        .unwrap();
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
    let count = || main.query_scalar(Dialect::Sql, Statement::new(kept));
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
async fn a_script_in_a_redis_transaction_is_applied_with_it_not_at_once() {
    let server = RedisServer::start();
    let d = server.driver().await;
    let script = "EVAL \"return redis.call('SET', KEYS[1], 'v')\" 1 scripted";
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, script).await;
    let exists = || d.query_scalar(Dialect::Redis, Statement::new("EXISTS scripted"));
    // Before: the script ran at once, outside the transaction.
    assert_eq!(exists().await.unwrap(), Value::Int(0), "not applied yet");
    tx.rollback().await.unwrap();
    assert_eq!(exists().await.unwrap(), Value::Int(0), "rolled back");
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    queue(&mut tx, Dialect::Redis, script).await;
    tx.commit().await.unwrap();
    assert_eq!(exists().await.unwrap(), Value::Int(1), "applied at commit");
}
