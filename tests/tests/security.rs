//! Who may call and what each caller may do, over gRPC against real
//! PostgreSQL and Redis: tokens (missing, wrong, revoked by editing the
//! tokens file while calls run), the rule matrix (principal × engine ×
//! dialect × read-only × statement rule), transactions owned by their
//! principal, and limits (rate, concurrency, rows).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use omnigate::config::{DriverConfig, EngineConfig, PrincipalConfig};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::auth::{config, deny, on, principal, signed};
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, i};
use tonic::Code;

#[tokio::test]
async fn tokens_missing_wrong_or_unknown_are_refused_alike() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let principals = BTreeMap::from([("app".to_owned(), principal("good-token"))]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    let select = || on("main-db", "sql", "SELECT 1");
    let missing = gw.client.execute(select()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("authorization: Bearer"),
        "{missing:?}"
    );
    let wrong = gw
        .client
        .execute(signed("bad-token", select()))
        .await
        .unwrap_err();
    let mut basic = tonic::Request::new(select());
    basic
        .metadata_mut()
        .insert("authorization", "Basic YWxhZGRpbjpvcGVu".parse().unwrap());
    let not_bearer = gw.client.execute(basic).await.unwrap_err();
    for refused in [&wrong, &not_bearer] {
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert_eq!(
            refused.message(),
            wrong.message(),
            "one message for every bad token"
        );
        assert!(!refused.message().contains("bad-token"));
    }
    gw.client
        .execute(signed("good-token", select()))
        .await
        .unwrap();
    // Every RPC asks: ListEngines and Begin too.
    let engines = gw.client.list_engines(pb::ListEnginesRequest {}).await;
    assert_eq!(engines.unwrap_err().code(), Code::Unauthenticated);
    let begin = gw.client.begin(pb::BeginRequest::default()).await;
    assert_eq!(begin.unwrap_err().code(), Code::Unauthenticated);
    // Health stays open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(gw.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
}

/// What the rules below allow: `Ok` or the code and the words of the
/// denial.
fn expected(
    who: &str,
    engine: &str,
    dialect: &str,
    writes: bool,
    text: &str,
) -> Result<(), (Code, &'static str)> {
    let admin = text.starts_with("FLUSHDB") || text.starts_with("DROP");
    match who {
        "app" if engine == "main" || engine == "graph" => {
            Err((Code::PermissionDenied, "principals.app.engines"))
        }
        "app" if admin && dialect == "redis" => Err((Code::PermissionDenied, "no-redis-admin")),
        "app" if admin => Err((Code::PermissionDenied, "no-ddl")),
        // Redis files FLUSHDB under @admin: no principal runs it unless
        // `allow_commands` names it.
        "reader" if admin && dialect == "redis" => {
            Err((Code::PermissionDenied, "principals.reader.allow_commands"))
        }
        // The grant, not the request, made it read-only: PERMISSION_DENIED
        // naming the grant.
        "reader" if writes => Err((Code::PermissionDenied, "principals.reader.read_only")),
        "sqlonly" if dialect != "sql" => {
            Err((Code::PermissionDenied, "principals.sqlonly.dialects"))
        }
        _ => Ok(()),
    }
}

#[tokio::test]
async fn the_rule_matrix_holds_on_every_engine() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let principals = BTreeMap::from([
        (
            "app".to_owned(),
            PrincipalConfig {
                engines: Some(vec!["main-db".into(), "cache".into()]),
                deny: vec![
                    deny(
                        "no-redis-admin",
                        "redis",
                        r"^\s*(FLUSHALL|FLUSHDB|KEYS|CONFIG)\b",
                    ),
                    deny("no-ddl", "postgres", r"^\s*(CREATE|DROP|ALTER|TRUNCATE)\b"),
                ],
                ..principal("app-token")
            },
        ),
        (
            "reader".to_owned(),
            PrincipalConfig {
                read_only: true,
                ..principal("reader-token")
            },
        ),
        ("owner".to_owned(), principal("owner-token")),
        (
            "sqlonly".to_owned(),
            PrincipalConfig {
                dialects: Some(vec!["sql".into()]),
                ..principal("sqlonly-token")
            },
        ),
    ]);
    let graph = FalkorServer::start();
    let mut config = config(&pg, &redis, principals);
    let falkor = FalkorConfig {
        url: graph.url(),
        graph: "g".into(),
        ..FalkorConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(falkor)),
    );
    let mut gw = TestGateway::with_config(config).await;
    // The owner may do anything: it sets the engines up.
    for (target, dialect, text) in [
        ("main-db", "sql", "CREATE TABLE t (v int)"),
        ("main", "sql", "CREATE TABLE t (v int)"),
        ("graph", "cypher", "CREATE (:Node {v: 0})"),
    ] {
        let setup = on(target, dialect, text);
        gw.client
            .execute(signed("owner-token", setup))
            .await
            .unwrap();
    }
    // (engine, dialect, writes, statement); DROP and FLUSHDB last.
    let cases: &[(&str, &str, bool, &str)] = &[
        ("main-db", "sql", false, "SELECT count(*) FROM t"),
        ("main-db", "sql", true, "INSERT INTO t VALUES (1)"),
        ("main", "sql", false, "SELECT count(*) FROM t"),
        ("main", "sql", true, "INSERT INTO t VALUES (1)"),
        ("cache", "redis", false, "GET k"),
        ("cache", "redis", true, "SET k v"),
        ("graph", "cypher", false, "MATCH (n) RETURN count(n)"),
        ("graph", "cypher", true, "CREATE (:Node {v: 1})"),
        ("main-db", "sql", true, "DROP TABLE IF EXISTS nothing_here"),
        ("cache", "redis", true, "FLUSHDB"),
    ];
    for who in ["app", "reader", "sqlonly"] {
        let token = format!("{who}-token");
        for &(engine, dialect, writes, text) in cases {
            let got = gw
                .client
                .execute(signed(&token, on(engine, dialect, text)))
                .await;
            let want = expected(who, engine, dialect, writes, text);
            match (&got, want) {
                (Ok(_), Ok(())) => {}
                (Err(status), Err((code, words))) => {
                    assert_eq!(status.code(), code, "{who} {engine} {text}: {status:?}");
                    assert!(
                        status.message().contains(words),
                        "{who} {engine} {text}: {status:?}"
                    );
                }
                _ => panic!("{who} on {engine} `{text}`: got {got:?}, expected {want:?}"),
            }
        }
    }
    // The same rules in a batch and a stream.
    let batch = pb::ExecuteBatchRequest {
        dialect: "redis".into(),
        target: "cache".into(),
        statements: vec![
            pb::BatchStatement {
                statement: "GET k".into(),
                ..Default::default()
            },
            pb::BatchStatement {
                statement: "KEYS *".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let status = gw
        .client
        .execute_batch(signed("app-token", batch))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("no-redis-admin"), "{status:?}");
    let stream = gw
        .client
        .execute_stream(signed("app-token", on("main", "sql", "SELECT 1")))
        .await
        .unwrap_err();
    assert_eq!(stream.code(), Code::PermissionDenied);
    // Describe and ListEngines show a principal its engines only.
    let describe = pb::DescribeRequest {
        target: "main".into(),
        ..Default::default()
    };
    let status = gw
        .client
        .describe(signed("app-token", describe))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let listed = gw
        .client
        .list_engines(signed("app-token", pb::ListEnginesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<String> = listed.engines.into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, vec!["cache".to_owned(), "main-db".to_owned()]);
}

#[tokio::test]
async fn a_transaction_belongs_to_its_principal_and_operators_need_admin() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let principals = BTreeMap::from([
        ("app".to_owned(), principal("app-token")),
        ("other".to_owned(), principal("other-token")),
        (
            "ops".to_owned(),
            PrincipalConfig {
                admin: true,
                ..principal("ops-token")
            },
        ),
        (
            "reader".to_owned(),
            PrincipalConfig {
                read_only: true,
                ..principal("reader-token")
            },
        ),
    ]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    gw.client
        .execute(signed(
            "app-token",
            on("main-db", "sql", "CREATE TABLE t (v int)"),
        ))
        .await
        .unwrap();
    let begin = |token: &str| signed(token, pb::BeginRequest::default());
    let tx = gw
        .client
        .begin(begin("app-token"))
        .await
        .unwrap()
        .into_inner()
        .tx_id;
    let mut insert = on("main-db", "sql", "INSERT INTO t VALUES ($1)");
    insert.params = vec![i(1)];
    insert.tx_id = tx.clone();
    // Another principal with the id: as if it did not exist.
    let theirs = gw
        .client
        .execute(signed("other-token", insert.clone()))
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    let commit = |token: &str| signed(token, pb::CommitRequest { tx_id: tx.clone() });
    assert_eq!(
        gw.client
            .commit(commit("other-token"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    gw.client
        .execute(signed("app-token", insert))
        .await
        .unwrap();
    // Operators' views need admin.
    let list = gw
        .client
        .list_transactions(signed("app-token", pb::ListTransactionsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::PermissionDenied);
    assert!(list.message().contains("principals.app.admin"), "{list:?}");
    let listed = gw
        .client
        .list_transactions(signed("ops-token", pb::ListTransactionsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.transactions.iter().any(|t| t.tx_id == tx),
        "{listed:?}"
    );
    gw.client.commit(commit("app-token")).await.unwrap();
    // A read-only principal's transaction is read-only.
    let tx = gw
        .client
        .begin(begin("reader-token"))
        .await
        .unwrap()
        .into_inner()
        .tx_id;
    let mut write = on("main-db", "sql", "INSERT INTO t VALUES (2)");
    write.tx_id = tx;
    let refused = gw
        .client
        .execute(signed("reader-token", write))
        .await
        .unwrap_err();
    assert_ne!(refused.code(), Code::Ok);
    let count = gw
        .client
        .execute(signed(
            "reader-token",
            on("main-db", "sql", "SELECT count(*) FROM t"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        omnigate_tests::scalar(&count),
        Some(pb::value::Kind::Int(1))
    );
}
