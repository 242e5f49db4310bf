//! Who may call, as it changes and as it is limited: the tokens file
//! edited while calls run, limits per principal (rate, concurrency, rows),
//! reflection behind credentials, and the library API under the same
//! rules.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use omnigate::config::{PrincipalConfig, PrincipalLimits};
use omnigate::security::tokens;
use omnigate_tests::TestGateway;
use omnigate_tests::auth::{config, on, principal, signed};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use tonic::Code;
use tonic_types::StatusExt;

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
        (
            "bytes".to_owned(),
            limited(
                PrincipalLimits {
                    max_bytes: Some(200),
                    ..Default::default()
                },
                "bytes-token",
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
    // Bytes per result.
    let big = on("main-db", "sql", "SELECT repeat('x', 1000)");
    let too_big = gw
        .client
        .execute(signed("bytes-token", big))
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    let small = on("main-db", "sql", "SELECT repeat('x', 10)");
    gw.client
        .execute(signed("bytes-token", small))
        .await
        .unwrap();
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
    // A config reload naming another tokens file takes it at once, and
    // watches it from then on (before: "takes effect after a restart").
    let moved = dir.path().join("moved.toml");
    tokens_file(&moved, &["d"]);
    let mut next = gw.gateway.current_config().await;
    next.security.tokens_file = Some(moved.clone());
    next.security.reload_poll = Duration::from_millis(50);
    let reloaded = gw.gateway.reload(next.clone()).await.unwrap();
    assert!(reloaded.need_restart.is_empty(), "{reloaded:?}");
    assert!(reloaded.principals);
    gw.client
        .execute(signed("d-token", select()))
        .await
        .unwrap();
    let gone = gw.client.execute(signed("a-token", select())).await;
    assert_eq!(gone.unwrap_err().code(), Code::Unauthenticated);
    tokens_file(&moved, &["e"]);
    let mut watched = false;
    for _ in 0..100 {
        if gw.client.execute(signed("e-token", select())).await.is_ok() {
            watched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(watched, "the new file is watched");
    // A file that does not load is refused with the reload: the old stays.
    let mut broken = next;
    broken.security.tokens_file = Some(dir.path().join("missing.toml"));
    assert!(gw.gateway.reload(broken).await.is_err());
    gw.client
        .execute(signed("e-token", select()))
        .await
        .unwrap();
}

#[tokio::test]
async fn reflection_asks_for_credentials_unless_configured_open() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let principals = BTreeMap::from([("app".to_owned(), principal("app-token"))]);
    let list = || {
        futures::stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    // auto, with principals: authenticated.
    let gw = TestGateway::with_config(config(&pg, &redis, principals.clone())).await;
    let mut reflection = ServerReflectionClient::new(gw.channel().await);
    let refused = reflection.server_reflection_info(list()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut replies = reflection
        .server_reflection_info(signed("app-token", list()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        futures::StreamExt::next(&mut replies)
            .await
            .unwrap()
            .is_ok()
    );
    // open: anyone.
    let mut open = config(&pg, &redis, principals);
    open.security.reflection = omnigate::config::Reflection::Open;
    let gw = TestGateway::with_config(open).await;
    let mut reflection = ServerReflectionClient::new(gw.channel().await);
    reflection.server_reflection_info(list()).await.unwrap();
}

#[tokio::test]
async fn the_library_takes_the_same_principals_and_rules() {
    use omnigate::security::Credentials;
    use omnigate::{CallContext, Request};

    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let principals = BTreeMap::from([(
        "reader".to_owned(),
        PrincipalConfig {
            read_only: true,
            engines: Some(vec!["main-db".into()]),
            ..principal("reader-token")
        },
    )]);
    let gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    let gateway = &gw.gateway;
    let caller = gateway
        .authenticate(Credentials {
            authorization: Some("Bearer reader-token"),
            ..Default::default()
        })
        .unwrap();
    let wrong = gateway.authenticate(Credentials {
        authorization: Some("Bearer nope"),
        ..Default::default()
    });
    assert!(wrong.is_err());
    let as_reader = |text: &str, target: &str| {
        let mut request = Request::new("sql", text).target(target);
        request.context = CallContext::anonymous().as_caller(caller.clone());
        request
    };
    gateway
        .execute(as_reader("SELECT 1", "main-db"))
        .await
        .unwrap();
    let denied = gateway
        .execute(as_reader("SELECT 1", "main"))
        .await
        .unwrap_err();
    assert!(
        denied.to_string().contains("principals.reader.engines"),
        "{denied}"
    );
    let write = gateway
        .execute(as_reader("CREATE TABLE t (v int)", "main-db"))
        .await
        .unwrap_err();
    assert!(write.to_string().contains("read"), "{write}");
    // Anonymous on a gateway with principals: refused.
    let anonymous = gateway
        .execute(Request::new("sql", "SELECT 1").target("main-db"))
        .await
        .unwrap_err();
    assert!(
        anonymous.to_string().contains("unauthenticated"),
        "{anonymous}"
    );
    // A transaction of the caller is read-only too.
    let tx = gateway
        .begin_as(caller.clone(), omnigate::tx::TxOptions::default())
        .unwrap();
    let refused = tx
        .execute(Request::new("sql", "CREATE TABLE u (v int)").target("main-db"))
        .await;
    assert!(refused.is_err());
    tx.rollback().await.unwrap();
}
