//! Requests and results at the default limits, on real PostgreSQL and
//! Redis: a statement of nearly 4 MiB and a 15 MB row are served; past
//! the limits they are refused with the documented status (OUT_OF_RANGE
//! for a request over `max_request_bytes`, RESOURCE_EXHAUSTED for a
//! result over `max_response_bytes`); a batch of 100,000 statements runs
//! as one Redis pipeline, and a statement with 100,000 parameters is
//! PostgreSQL's INVALID_ARGUMENT. Memory stays bounded throughout.
#![allow(clippy::unwrap_used)]

use omnigate_proto::v1 as pb;
use omnigate_tests::auth::on;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, exec, s, scalar};
use pb::value::Kind;
use tonic::Code;

/// This process's resident memory (the gateway runs in it), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_results_at_the_limits_are_served_or_refused_as_documented() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut gw = TestGateway::with_config(pg.gateway_config_with(&redis)).await;
    let mut client = gw.client.clone().max_encoding_message_size(64 << 20);
    let before = rss_mib();

    // A statement of nearly 4 MiB (the request limit), and one past it.
    let literal = "x".repeat((4 << 20) - 4096);
    let statement = format!("SELECT length('{literal}')::int8");
    let served = exec(&mut client, on("main-db", "sql", &statement)).await;
    assert_eq!(scalar(&served), Some(Kind::Int(literal.len() as i64)));
    let past = format!("SELECT length('{literal}{literal}')");
    let refused = client
        .execute(on("main-db", "sql", &past))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");

    // A 15 MB row, from PostgreSQL and from Redis (built in 3 MB appends:
    // a request holds at most 4 MiB); 17 MB is past the response limit.
    let row = |mb: usize| format!("SELECT repeat('r', {})", mb * 1_000_000);
    let got = exec(&mut client, on("main-db", "sql", &row(15))).await;
    match scalar(&got) {
        Some(Kind::String(text)) => assert_eq!(text.len(), 15_000_000),
        other => panic!("{other:?}"),
    }
    let too_big = client
        .execute(on("main-db", "sql", &row(17)))
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    assert!(too_big.message().contains("ExecuteStream"), "{too_big:?}");
    let chunk = "c".repeat(3_000_000);
    for _ in 0..5 {
        let mut append = on("cache", "redis", "APPEND big $1");
        append.params = vec![s(&chunk)];
        exec(&mut client, append).await;
    }
    let got = exec(&mut client, on("cache", "redis", "STRLEN big")).await;
    assert_eq!(scalar(&got), Some(Kind::Int(15_000_000)));
    let got = exec(&mut client, on("cache", "redis", "GET big")).await;
    assert!(
        matches!(scalar(&got), Some(Kind::Bytes(b)) if b.len() == 15_000_000)
            || matches!(scalar(&got), Some(Kind::String(t)) if t.len() == 15_000_000),
        "the 15 MB value"
    );

    // 100,000 statements in one batch: one pipeline on Redis.
    let statements: Vec<pb::BatchStatement> = (0..100_000)
        .map(|i| pb::BatchStatement {
            statement: format!("SET b{i} $1"),
            params: vec![s("v")],
            ..Default::default()
        })
        .collect();
    let batch = client
        .execute_batch(pb::ExecuteBatchRequest {
            dialect: "redis".into(),
            target: "cache".into(),
            statements,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 100_000);
    let got = exec(&mut client, on("cache", "redis", "DBSIZE")).await;
    assert_eq!(scalar(&got), Some(Kind::Int(100_001)));
    // 100,000 parameters in one statement: past PostgreSQL's 65,535.
    let placeholders: Vec<String> = (1..=100_000).map(|i| format!("${i}")).collect();
    let mut wide = on(
        "main-db",
        "sql",
        &format!(
            "SELECT cardinality(ARRAY[{}]::text[])",
            placeholders.join(", ")
        ),
    );
    wide.params = (0..100_000).map(|_| s("p")).collect();
    let refused = client.execute(wide).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("65535"), "{refused:?}");

    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 512,
        "memory grew by {grown} MiB for requests and results of at most 16 MiB"
    );
    exec(&mut gw.client, on("main-db", "sql", "SELECT 1")).await;
}
