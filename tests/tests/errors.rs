//! Every kind of bad input gets its own status code and a message that
//! says what to fix, and the server keeps serving.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::memory::MemoryConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::{TestGateway, assert_status, exec, fail, i, request, s, scalar, v};
use pb::value::Kind;
use tonic::Code;
use tonic_types::StatusExt;

async fn still_serving(gw: &mut TestGateway) {
    let pong = exec(&mut gw.client, request("redis", "PING", vec![])).await;
    assert_eq!(scalar(&pong), Some(Kind::String("PONG".into())));
}

#[tokio::test]
async fn routing_errors() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    let status = fail(c, request("mongo", "db.find()", vec![])).await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "unknown dialect \"mongo\": configured dialects are redis, sql",
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "UNKNOWN_DIALECT"
    );
    let status = fail(c, request("", "PING", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "dialect is required");
    let mut req = request("redis", "PING", vec![]);
    req.target = "nope".into();
    assert_status(
        &fail(c, req).await,
        Code::NotFound,
        "unknown target \"nope\": configured engines are cache, main",
    );
    let mut req = request("sql", "SELECT 1", vec![]);
    req.target = "cache".into();
    assert_status(
        &fail(c, req).await,
        Code::InvalidArgument,
        "engine \"cache\" does not serve the sql dialect",
    );
    let status = fail(c, request("cypher", "MATCH (n) RETURN n", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "unknown dialect \"cypher\"");
    let mut req = request("redis", "PING", vec![]);
    req.tx_id = "tx-1".into();
    assert_status(&fail(c, req).await, Code::NotFound, "unknown transaction");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn several_engines_of_one_dialect_need_a_target() {
    let mut config = Config::default();
    config.engines.insert(
        "cache2".into(),
        EngineConfig::new(DriverConfig::Memory(MemoryConfig::default())),
    );
    let mut gw = TestGateway::with_config(config).await;
    let status = fail(&mut gw.client, request("redis", "PING", vec![])).await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "set target to one of cache, cache2",
    );
    let mut req = request("redis", "PING", vec![]);
    req.target = "cache2".into();
    assert_eq!(exec(&mut gw.client, req).await.engine, "cache2");
}

#[tokio::test]
async fn malformed_statements_carry_the_engines_message_and_code() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    let status = fail(c, request("sql", "SELEC 1", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "syntax error");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "INVALID_STATEMENT");
    assert_eq!(info.metadata["engine"], "sqlite");
    assert_eq!(info.metadata["code"], "1");
    assert_eq!(info.metadata["retryable"], "false");
    let status = fail(c, request("redis", "GET", vec![])).await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "ERR wrong number of arguments for 'get' command",
    );
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["code"],
        "ERR"
    );
    let status = fail(c, request("redis", "SET k \"unclosed", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "unbalanced quotes");
    let status = fail(c, request("sql", "SELECT * FROM missing_table", vec![])).await;
    assert_status(&status, Code::NotFound, "no such table: missing_table");
    exec(c, request("redis", "SET str v", vec![])).await;
    let status = fail(c, request("redis", "LPUSH str x", vec![])).await;
    assert_status(&status, Code::FailedPrecondition, "WRONGTYPE");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn parameter_errors_name_the_parameter_never_its_value() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    let status = fail(c, request("sql", "SELECT $1, $2", vec![s("secret-one")])).await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "parameter $2: the statement uses $2 but 1 parameter(s) were given",
    );
    let status = fail(c, request("redis", "GET $1", vec![s("a"), s("secret-two")])).await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "parameter $2: given but not used",
    );
    assert!(!status.message().contains("secret"));
    let status = fail(
        c,
        request(
            "sql",
            "SELECT $1",
            vec![v(Kind::List(pb::ValueList { values: vec![i(1)] }))],
        ),
    )
    .await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "parameter $1: SQLite cannot store a list",
    );
    let status = fail(
        c,
        request(
            "sql",
            "SELECT $1",
            vec![v(Kind::Uuid("secret-not-a-uuid".into()))],
        ),
    )
    .await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "parameter $1: a uuid must be 32 hex digits",
    );
    assert!(!status.message().contains("secret"));
    let status = fail(
        c,
        request(
            "redis",
            "SET k $1",
            vec![v(Kind::Map(pb::ValueMap::default()))],
        ),
    )
    .await;
    assert_status(
        &status,
        Code::InvalidArgument,
        "a map cannot be a Redis argument",
    );
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn results_over_max_rows_or_the_message_limit_suggest_execute_stream() {
    let mut config = Config::default();
    config.server.max_response_bytes = 64 * 1024;
    config.server.default_max_rows = 50;
    let mut gw = TestGateway::with_config(config).await;
    let c = &mut gw.client;
    let series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) SELECT i FROM n";
    let status = fail(c, request("sql", series, vec![])).await;
    assert_status(
        &status,
        Code::ResourceExhausted,
        "result has more than 50 rows: raise max_rows or use ExecuteStream",
    );
    let mut req = request("sql", series, vec![]);
    req.options = Some(pb::ExecuteOptions {
        max_rows: 60,
        ..Default::default()
    });
    assert_eq!(
        exec(c, req).await.rows.len(),
        60,
        "the request may raise max_rows"
    );

    let big = "SELECT zeroblob(100000)";
    let status = fail(c, request("sql", big, vec![])).await;
    assert_status(
        &status,
        Code::ResourceExhausted,
        "over the 65536-byte message limit: use ExecuteStream",
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "RESPONSE_TOO_LARGE"
    );
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let mut config = Config::default();
    config.server.max_request_bytes = 16 * 1024;
    let mut gw = TestGateway::with_config(config).await;
    let huge = "x".repeat(32 * 1024);
    let status = fail(&mut gw.client, request("redis", "SET k $1", vec![s(&huge)])).await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn an_exceeded_deadline_cancels_the_statement() {
    let mut gw = TestGateway::start().await;
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n";
    let mut call = tonic::Request::new(request("sql", endless, vec![]));
    call.set_timeout(Duration::from_millis(300));
    let status = gw.client.execute(call).await.unwrap_err();
    assert!(omnigate_tests::is_deadline_status(&status), "{status:?}");

    let mut req = request("sql", endless, vec![]);
    req.options = Some(pb::ExecuteOptions {
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 200_000_000,
        }),
        ..Default::default()
    });
    assert_status(
        &fail(&mut gw.client, req).await,
        Code::DeadlineExceeded,
        "timed out after 200ms",
    );
    let after = exec(&mut gw.client, request("sql", "SELECT 1", vec![])).await;
    assert_eq!(scalar(&after), Some(Kind::Int(1)));
}

#[tokio::test]
async fn unsupported_statements_and_read_only_writes() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    let status = fail(c, request("redis", "SUBSCRIBE news", vec![])).await;
    assert_status(
        &status,
        Code::Unimplemented,
        "command SUBSCRIBE is not supported by the memory engine",
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "NOT_SUPPORTED"
    );
    let mut req = request("redis", "SET k v", vec![]);
    req.options = Some(pb::ExecuteOptions {
        read_only: true,
        ..Default::default()
    });
    assert_status(
        &fail(c, req).await,
        Code::FailedPrecondition,
        "SET writes, but the request is read_only",
    );
    exec(c, request("sql", "CREATE TABLE ro (v INTEGER)", vec![])).await;
    let mut req = request("sql", "INSERT INTO ro VALUES (1)", vec![]);
    req.options = Some(pb::ExecuteOptions {
        read_only: true,
        ..Default::default()
    });
    assert_status(&fail(c, req).await, Code::FailedPrecondition, "read_only");
    let count = exec(c, request("sql", "SELECT COUNT(*) FROM ro", vec![])).await;
    assert_eq!(scalar(&count), Some(Kind::Int(0)), "nothing was written");
    still_serving(&mut gw).await;
}
