//! Who may call and what each caller may do, over gRPC against real
//! PostgreSQL and Redis: tokens (missing, wrong, revoked by editing the
//! tokens file while calls run), the rule matrix (principal × engine ×
//! dialect × read-only × statement rule), transactions owned by their
//! principal, and limits (rate, concurrency, rows).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use omnigate::config::{Config, DenyRule, PrincipalConfig, PrincipalLimits};
use omnigate::security::tokens;
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, i, request};
use tonic::Code;
use tonic_types::StatusExt;

/// `message`, sent with `token`.
fn signed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn on(target: &str, dialect: &str, statement: &str) -> pb::ExecuteRequest {
    let mut req = request(dialect, statement, vec![]);
    req.target = target.to_owned();
    req
}

fn principal(token: &str) -> PrincipalConfig {
    PrincipalConfig {
        token_sha256: Some(tokens::to_hex(&tokens::hash(token))),
        ..PrincipalConfig::default()
    }
}

fn deny(name: &str, kind: &str, pattern: &str) -> DenyRule {
    DenyRule {
        name: Some(name.into()),
        engine: None,
        kind: Some(kind.into()),
        dialect: None,
        pattern: pattern.into(),
    }
}

/// PostgreSQL (`main-db`), Redis (`cache`), and the embedded SQLite
/// (`main`), with `principals`.
fn config(
    pg: &PgServer,
    redis: &RedisServer,
    principals: BTreeMap<String, PrincipalConfig>,
) -> Config {
    let mut config = pg.gateway_config_with(redis);
    config.engines.insert(
        "main".into(),
        omnigate::config::EngineConfig::new(omnigate::config::DriverConfig::Sqlite(
            Default::default(),
        )),
    );
    config.principals = principals;
    config
}

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
        "app" if engine == "main" => Err((Code::PermissionDenied, "principals.app.engines")),
        "app" if admin && dialect == "redis" => Err((Code::PermissionDenied, "no-redis-admin")),
        "app" if admin => Err((Code::PermissionDenied, "no-ddl")),
        "reader" if writes => Err((Code::FailedPrecondition, "read")),
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
        (
            "sqlonly".to_owned(),
            PrincipalConfig {
                dialects: Some(vec!["sql".into()]),
                ..principal("sqlonly-token")
            },
        ),
    ]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    let admin = "sqlonly-token";
    for (target, text) in [
        ("main-db", "CREATE TABLE t (v int)"),
        ("main", "CREATE TABLE t (v int)"),
    ] {
        gw.client
            .execute(signed(admin, on(target, "sql", text)))
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

#[tokio::test]
async fn limits_refuse_with_resource_exhausted_and_recover() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let limited = |limits: PrincipalLimits, token: &str| PrincipalConfig {
        limits,
        ..principal(token)
    };
    let principals = BTreeMap::from([
        (
            "rate".to_owned(),
            limited(
                PrincipalLimits {
                    calls_per_second: Some(2),
                    burst: Some(2),
                    ..Default::default()
                },
                "rate-token",
            ),
        ),
        (
            "one".to_owned(),
            limited(
                PrincipalLimits {
                    concurrent_calls: Some(1),
                    ..Default::default()
                },
                "one-token",
            ),
        ),
        (
            "rows".to_owned(),
            limited(
                PrincipalLimits {
                    max_rows: Some(5),
                    ..Default::default()
                },
                "rows-token",
            ),
        ),
    ]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    let select = || on("main-db", "sql", "SELECT 1");
    // Rate: the burst passes, the next waits for RetryInfo's delay.
    gw.client
        .execute(signed("rate-token", select()))
        .await
        .unwrap();
    gw.client
        .execute(signed("rate-token", select()))
        .await
        .unwrap();
    let over = gw
        .client
        .execute(signed("rate-token", select()))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.message().contains("2 calls per second"), "{over:?}");
    let wait = over
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo detail");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    gw.client
        .execute(signed("rate-token", select()))
        .await
        .unwrap();
    // Concurrency: one call at a time.
    let mut other = gw.client.clone();
    let slow = tokio::spawn(async move {
        other
            .execute(signed(
                "one-token",
                on("main-db", "sql", "SELECT pg_sleep(0.5)"),
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let busy = gw
        .client
        .execute(signed("one-token", select()))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::ResourceExhausted, "{busy:?}");
    assert!(busy.message().contains("1 concurrent calls"), "{busy:?}");
    slow.await.unwrap().unwrap();
    gw.client
        .execute(signed("one-token", select()))
        .await
        .unwrap();
    // Rows per result.
    let many = on("main-db", "sql", "SELECT generate_series(1, 10)");
    let too_many = gw
        .client
        .execute(signed("rows-token", many))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many:?}");
    let few = on("main-db", "sql", "SELECT generate_series(1, 5)");
    gw.client.execute(signed("rows-token", few)).await.unwrap();
}

/// A tokens file with a principal per token.
fn tokens_file(path: &std::path::Path, names: &[&str]) {
    let mut text = String::new();
    for name in names {
        let hash = tokens::to_hex(&tokens::hash(&format!("{name}-token")));
        text.push_str(&format!(
            "[principals.{name}]\ntoken_sha256 = \"{hash}\"\n\n"
        ));
    }
    // Written whole and renamed over, as an operator's tool would.
    let temp = path.with_extension("new");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[tokio::test]
async fn editing_the_tokens_file_revokes_and_adds_without_failing_calls_in_flight() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    tokens_file(&path, &["a", "b"]);
    let mut config = config(&pg, &redis, BTreeMap::new());
    config.security.tokens_file = Some(path.clone());
    config.security.reload_poll = Duration::from_millis(50);
    let mut gw = TestGateway::with_config(config).await;
    let select = || on("main-db", "sql", "SELECT 1");
    gw.client
        .execute(signed("b-token", select()))
        .await
        .unwrap();
    assert_eq!(
        gw.client
            .execute(signed("c-token", select()))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // b's long call and a's stream of calls run through the change.
    let mut client = gw.client.clone();
    let long = tokio::spawn(async move {
        client
            .execute(signed(
                "b-token",
                on("main-db", "sql", "SELECT pg_sleep(1)"),
            ))
            .await
    });
    let mut client = gw.client.clone();
    let steady = tokio::spawn(async move {
        for _ in 0..100 {
            client.execute(signed("a-token", select())).await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<_, tonic::Status>(())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokens_file(&path, &["a", "c"]);
    let mut revoked = false;
    for _ in 0..100 {
        match gw.client.execute(signed("b-token", select())).await {
            Err(status) if status.code() == Code::Unauthenticated => {
                revoked = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(revoked, "b's token still works after it left the file");
    gw.client
        .execute(signed("c-token", select()))
        .await
        .unwrap();
    long.await.unwrap().expect("b's call in flight finished");
    steady.await.unwrap().expect("a's calls all passed");
    // A broken file is refused whole: the principals stay as they were.
    std::fs::write(&path, "[principals.a\nthis is not toml").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.client
        .execute(signed("a-token", select()))
        .await
        .unwrap();
    gw.client
        .execute(signed("c-token", select()))
        .await
        .unwrap();
}
