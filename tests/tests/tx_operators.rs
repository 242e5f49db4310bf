//! The operators' view: ListTransactions shows every transaction not yet
//! finished (open, prepared, committing, failed after commit), and
//! ResolveTransaction finishes one by hand, refusing what would contradict
//! a recorded decision.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate::tx::failpoint::Action;
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, in_tx, request, scalar};
use pb::transaction_info::State;
use pb::value::Kind;
use tonic::Code;

async fn list(gw: &mut TestGateway) -> Vec<pb::TransactionInfo> {
    gw.client
        .list_transactions(pb::ListTransactionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .transactions
}

async fn resolve(gw: &mut TestGateway, tx: &str, commit: bool) -> Result<String, tonic::Status> {
    gw.client
        .resolve_transaction(pb::ResolveTransactionRequest {
            tx_id: tx.into(),
            commit,
        })
        .await
        .map(|r| r.into_inner().outcome)
}

/// Recovery only when asked: what a failure leaves stays for the operator.
fn no_timer(mut config: Config) -> Config {
    config.transactions.recovery_interval = Duration::from_secs(3600);
    config
}

async fn key(gw: &mut TestGateway, key: &str) -> Option<Kind> {
    let target = |t: &str| {
        let mut req = request("redis", &format!("GET {key}"), vec![]);
        req.target = t.into();
        req
    };
    scalar(&exec(&mut gw.client, target("cache")).await)
}

#[tokio::test]
async fn an_open_and_a_committing_transaction_are_listed_and_resolved_forward_only() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut gw = TestGateway::with_config(no_timer(pg.gateway_config_with(&redis))).await;
    let table = "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)";
    exec(&mut gw.client, request("sql", table, vec![])).await;
    assert!(list(&mut gw).await.is_empty());

    // Open: listed ACTIVE with its engines; resolve can only roll it back.
    let open = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&open, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    let listed = list(&mut gw).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].tx_id, open);
    assert_eq!(listed[0].state, State::Active as i32);
    assert_eq!(listed[0].engines, ["main-db"]);
    assert!(listed[0].age.is_some());
    let refused = resolve(&mut gw, &open, true).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(resolve(&mut gw, &open, false).await.unwrap(), "rolled back");

    // Decided (PostgreSQL's marker committed), stopped before the rest:
    // listed COMMITTING; a rollback would contradict the decision.
    gw.gateway
        .failpoints()
        .set("commit_record", Some(Action::Stop));
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (2)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k2 v", vec![])).await;
    let _ = commit_tx(&mut gw.client, &tx).await;
    gw.gateway.failpoints().set("commit_record", None);
    let listed = list(&mut gw).await;
    let committing = listed.iter().find(|t| t.tx_id == tx).unwrap();
    assert_eq!(committing.state, State::Committing as i32, "{listed:?}");
    assert!(
        committing.engines.contains(&"cache".to_owned()),
        "{committing:?}"
    );
    assert!(
        committing.detail.contains("main-db's marker"),
        "{committing:?}"
    );
    assert!(
        key(&mut gw, "k2")
            .await
            .is_some_and(|k| matches!(k, Kind::Null(_)))
    );
    let refused = resolve(&mut gw, &tx, false).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("forward"), "{refused:?}");
    assert_eq!(
        resolve(&mut gw, &tx, true).await.unwrap(),
        "committed on every engine"
    );
    assert_eq!(key(&mut gw, "k2").await, Some(Kind::String("v".into())));
    assert!(list(&mut gw).await.is_empty());
    let unknown = resolve(&mut gw, "no-such-tx", true).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_prepared_transaction_in_the_log_is_resolved_either_way() {
    // Two Redis databases, no live engine: the log decides.
    let redis = RedisServer::start();
    let mut config = Config::default();
    config.engines.clear();
    for (name, db) in [("cache", 0), ("cache2", 1)] {
        let engine = omnigate_drivers::redis::RedisConfig {
            url: redis.url(0),
            database: db,
            ..Default::default()
        };
        config
            .engines
            .insert(name.into(), EngineConfig::new(DriverConfig::Redis(engine)));
    }
    let mut gw = TestGateway::with_config(no_timer(config)).await;
    let write = |tx: &str, target: &str, key: &str| {
        let mut req = in_tx(tx, "redis", &format!("SET {key} v"), vec![]);
        req.target = target.into();
        req
    };
    let mut ids = Vec::new();
    for n in 0..2 {
        gw.gateway.failpoints().set("decide", Some(Action::Stop));
        let tx = begin_tx(&mut gw.client, None).await;
        exec(&mut gw.client, write(&tx, "cache", &format!("a{n}"))).await;
        exec(&mut gw.client, write(&tx, "cache2", &format!("b{n}"))).await;
        let _ = commit_tx(&mut gw.client, &tx).await;
        gw.gateway.failpoints().set("decide", None);
        ids.push(tx);
    }
    let listed = list(&mut gw).await;
    for tx in &ids {
        let t = listed.iter().find(|t| &t.tx_id == tx).unwrap();
        assert_eq!(t.state, State::Prepared as i32, "{listed:?}");
        assert!(t.detail.contains("in the log"), "{t:?}");
    }
    assert_eq!(
        resolve(&mut gw, &ids[0], true).await.unwrap(),
        "committed on every engine"
    );
    assert_eq!(
        resolve(&mut gw, &ids[1], false).await.unwrap(),
        "rolled back on every engine"
    );
    assert_eq!(key(&mut gw, "a0").await, Some(Kind::String("v".into())));
    let mut b0 = request("redis", "GET b0", vec![]);
    b0.target = "cache2".into();
    assert_eq!(
        scalar(&exec(&mut gw.client, b0).await),
        Some(Kind::String("v".into()))
    );
    assert!(matches!(key(&mut gw, "a1").await, Some(Kind::Null(_))));
    assert!(list(&mut gw).await.is_empty());
}

#[tokio::test]
async fn a_failure_after_commit_is_listed_until_acknowledged() {
    let (redis, graph) = (RedisServer::start(), FalkorServer::start());
    let mut config = redis.gateway_config();
    config.engines.remove("main");
    let falkor = FalkorConfig {
        url: graph.url(),
        graph: "g".into(),
        ..FalkorConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(falkor)),
    );
    let mut gw = TestGateway::with_config(no_timer(config)).await;
    exec(
        &mut gw.client,
        request("cypher", "CREATE (:Zero {z: 0})", vec![]),
    )
    .await;
    // The graph write plans well and fails only as it runs, after the
    // decision: FalkorDB applies none of it; Redis' write stands.
    let tx = begin_tx(&mut gw.client, None).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET kept v", vec![])).await;
    let bad = "MATCH (z:Zero) CREATE (:Bad {v: 1 / z.z})";
    exec(&mut gw.client, in_tx(&tx, "cypher", bad, vec![])).await;
    let failed = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(failed.code(), Code::FailedPrecondition, "{failed:?}");
    assert!(failed.message().contains("committed"), "{failed:?}");
    let listed = list(&mut gw).await;
    let t = listed.iter().find(|t| t.tx_id == tx).unwrap();
    assert_eq!(t.state, State::FailedAfterCommit as i32, "{listed:?}");
    assert_eq!(t.engines, ["graph"]);
    // The writes FalkorDB applied none of, for the operator to re-apply.
    let writes: Vec<Vec<&[u8]>> = t
        .writes
        .iter()
        .map(|w| w.args.iter().map(Vec::as_slice).collect())
        .collect();
    assert_eq!(writes, [[&b"g"[..], bad.as_bytes()]], "{t:?}");
    let refused = resolve(&mut gw, &tx, false).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        resolve(&mut gw, &tx, true)
            .await
            .unwrap()
            .contains("acknowledged")
    );
    assert!(list(&mut gw).await.is_empty());
}
