//! What a hostile client found against the real engines, over gRPC
//! (issue 12, items 3, 6 and 9–12): PostgreSQL errors by SQLSTATE class,
//! COPY, dates past chrono's range, NUL bytes on every engine, Redis `ERR`.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_drivers::postgres::PostgresConfig;
use omnigate_drivers::redis::RedisConfig;
use omnigate_drivers::victoria::VictoriaConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::victoria::VictoriaServer;
use omnigate_tests::{TestGateway, exec, fail, request, scalar};
use pb::value::Kind;
use tonic::Code;
use tonic_types::StatusExt;

async fn postgres(server: &PgServer, max_response_bytes: usize) -> TestGateway {
    let mut config = server.gateway_config();
    config.server.max_response_bytes = max_response_bytes;
    TestGateway::with_config(config).await
}

fn sql(text: &str) -> pb::ExecuteRequest {
    request("sql", text, vec![])
}

/// The code and the engine's SQLSTATE of a failed statement.
async fn sqlstate(gw: &mut TestGateway, text: &str) -> (Code, String) {
    let status = fail(&mut gw.client, sql(text)).await;
    let code = status
        .get_details_error_info()
        .and_then(|i| i.metadata.get("code").cloned())
        .unwrap_or_default();
    (status.code(), code)
}

#[tokio::test]
async fn every_sqlstate_class_has_a_deliberate_status() {
    let server = PgServer::start();
    let mut gw = postgres(&server, 16 << 20).await;
    // One code of every class of PostgreSQL's appendix A, raised by hand.
    let table = [
        ("03000", Code::Internal),
        ("08006", Code::Unavailable),
        ("09000", Code::FailedPrecondition),
        ("0A000", Code::Unimplemented),
        ("0B000", Code::FailedPrecondition),
        ("0F000", Code::InvalidArgument),
        ("0L000", Code::InvalidArgument),
        ("0P000", Code::InvalidArgument),
        ("0Z000", Code::InvalidArgument),
        ("20000", Code::InvalidArgument),
        ("21000", Code::InvalidArgument),
        ("22012", Code::InvalidArgument),
        ("23505", Code::FailedPrecondition),
        ("24000", Code::FailedPrecondition),
        ("25000", Code::FailedPrecondition),
        ("26000", Code::InvalidArgument),
        ("27000", Code::FailedPrecondition),
        ("28000", Code::PermissionDenied),
        ("2B000", Code::FailedPrecondition),
        ("2BP01", Code::FailedPrecondition),
        ("2D000", Code::FailedPrecondition),
        ("2F000", Code::InvalidArgument),
        ("34000", Code::InvalidArgument),
        ("38000", Code::FailedPrecondition),
        ("39000", Code::FailedPrecondition),
        ("3B000", Code::FailedPrecondition),
        ("3D000", Code::NotFound),
        ("3F000", Code::NotFound),
        ("40001", Code::Aborted),
        ("42601", Code::InvalidArgument),
        ("44000", Code::FailedPrecondition),
        ("53000", Code::ResourceExhausted),
        ("53200", Code::ResourceExhausted),
        ("53300", Code::Unavailable),
        ("54000", Code::OutOfRange),
        ("54001", Code::OutOfRange),
        ("55000", Code::FailedPrecondition),
        ("57000", Code::Unavailable),
        ("58000", Code::Unavailable),
        ("72000", Code::Aborted),
        ("F0000", Code::FailedPrecondition),
        ("HV000", Code::FailedPrecondition),
        ("P0001", Code::FailedPrecondition),
        ("P0002", Code::FailedPrecondition),
        ("P0003", Code::FailedPrecondition),
        ("XX000", Code::Internal),
    ];
    for (state, want) in table {
        let raise = format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised by hand' USING ERRCODE = '{state}'; END $$"
        );
        // UNIMPLEMENTED names the operation instead of an engine code.
        let code = if want == Code::Unimplemented {
            ""
        } else {
            state
        };
        assert_eq!(
            sqlstate(&mut gw, &raise).await,
            (want, code.to_owned()),
            "{state}"
        );
    }
    // And as the server raises them itself.
    let (code, state) =
        sqlstate(&mut gw, "DO $$ BEGIN RAISE EXCEPTION 'no to %', 42; END $$").await;
    assert_eq!((code, state.as_str()), (Code::FailedPrecondition, "P0001"));
    exec(&mut gw.client, sql("CREATE TABLE base (id int)")).await;
    exec(
        &mut gw.client,
        sql("CREATE VIEW over_base AS SELECT id FROM base"),
    )
    .await;
    let (code, state) = sqlstate(&mut gw, "DROP TABLE base").await;
    assert_eq!((code, state.as_str()), (Code::FailedPrecondition, "2BP01"));
    let wide = format!(
        "SELECT {}",
        (0..1700)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (code, state) = sqlstate(&mut gw, &wide).await;
    assert_eq!((code, state.as_str()), (Code::OutOfRange, "54011"));
    let one = exec(&mut gw.client, sql("SELECT 1")).await;
    assert_eq!(scalar(&one), Some(Kind::Int(1)));
}

#[tokio::test]
async fn copy_is_refused_before_it_is_sent_and_the_engine_stays_healthy() {
    let server = PgServer::start();
    let mut gw = postgres(&server, 16 << 20).await;
    for text in [
        "COPY (SELECT 1) TO STDOUT",
        "  /* bulk */ copy t FROM STDIN",
    ] {
        let status = fail(&mut gw.client, sql(text)).await;
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
        assert!(
            status.message().contains("ExecuteBatch"),
            "{}",
            status.message()
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata["retryable"], "false");
    }
    let mut stream = gw
        .client
        .execute_stream(sql("COPY (SELECT 1) TO STDOUT"))
        .await;
    if let Ok(response) = &mut stream {
        let first = response.get_mut().message().await;
        assert_eq!(first.unwrap_err().code(), Code::Unimplemented);
    } else {
        assert_eq!(stream.unwrap_err().code(), Code::Unimplemented);
    }
    for _ in 0..4 {
        let one = exec(&mut gw.client, sql("SELECT 1")).await;
        assert_eq!(scalar(&one), Some(Kind::Int(1)));
    }
    let info = omnigate_tests::engine(&mut gw.client, "main-db").await;
    assert_eq!(
        info.health.unwrap().status,
        pb::health::Status::Serving as i32
    );
}

#[tokio::test]
async fn dates_keep_their_calendar_and_timestamps_past_the_model_are_refused() {
    let server = PgServer::start();
    let mut gw = postgres(&server, 16 << 20).await;
    let date = exec(&mut gw.client, sql("SELECT '300000-01-01'::date")).await;
    assert_eq!(
        scalar(&date),
        Some(Kind::Date(pb::Date {
            days_since_epoch: 108_853_222
        }))
    );
    let back = exec(
        &mut gw.client,
        request(
            "sql",
            "SELECT $1::date = '300000-01-01'::date",
            vec![omnigate_tests::v(Kind::Date(pb::Date {
                days_since_epoch: 108_853_222,
            }))],
        ),
    )
    .await;
    assert_eq!(scalar(&back), Some(Kind::Bool(true)));
    let infinity = exec(&mut gw.client, sql("SELECT 'infinity'::date")).await;
    assert_eq!(scalar(&infinity), Some(Kind::String("infinity".into())));
    let status = fail(
        &mut gw.client,
        sql("SELECT '294276-12-31 23:59:59'::timestamp"),
    )
    .await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("294247"), "{}", status.message());
    let fits = exec(
        &mut gw.client,
        sql("SELECT '294246-12-31 23:59:59'::timestamp"),
    )
    .await;
    assert!(matches!(scalar(&fits), Some(Kind::Timestamp(_))));
}

#[tokio::test]
async fn postgres_results_stop_at_the_response_limit() {
    let server = PgServer::start();
    let mut gw = postgres(&server, 1 << 20).await;
    let cte = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000000) \
               SELECT i, 'padding' FROM r";
    let mut req = sql(cte);
    req.options = Some(pb::ExecuteOptions {
        max_rows: u64::MAX,
        ..Default::default()
    });
    let status = fail(&mut gw.client, req).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_response_bytes"),
        "{}",
        status.message()
    );
    let one = exec(&mut gw.client, sql("SELECT 1")).await;
    assert_eq!(scalar(&one), Some(Kind::Int(1)));
}

#[tokio::test]
async fn nul_bytes_and_second_statements_are_refused_on_every_engine() {
    let (pg, redis, falkor, vm) = (
        PgServer::start(),
        RedisServer::start(),
        FalkorServer::start(),
        VictoriaServer::start(),
    );
    let mut config = Config::default();
    config.engines.clear();
    let engines = [
        (
            "main-db",
            EngineConfig::new(DriverConfig::Postgres(PostgresConfig {
                url: Some(pg.url("postgres")),
                ..PostgresConfig::default()
            })),
        ),
        (
            "cache",
            EngineConfig::new(DriverConfig::Redis(RedisConfig {
                url: redis.url(0),
                ..RedisConfig::default()
            })),
        ),
        (
            "graph",
            EngineConfig::new(DriverConfig::Falkordb(FalkorConfig {
                url: falkor.url(),
                ..FalkorConfig::default()
            })),
        ),
        (
            "metrics",
            EngineConfig::new(DriverConfig::Victoriametrics(VictoriaConfig {
                url: vm.url(),
                ..VictoriaConfig::default()
            })),
        ),
    ];
    config
        .engines
        .extend(engines.map(|(name, engine)| (name.to_owned(), engine)));
    let mut gw = TestGateway::with_config(config).await;
    let c = &mut gw.client;
    exec(c, sql("CREATE TABLE t (id int)")).await;
    exec(c, sql("INSERT INTO t VALUES (1), (2), (3)")).await;
    for (dialect, text) in [
        ("sql", "DELETE FROM t\0 WHERE id = 1"),
        ("redis", "SET k\0 v"),
        ("cypher", "CREATE (:N)\0 RETURN 1"),
        ("ts", "x\0 v=1"),
    ] {
        let status = fail(c, request(dialect, text, vec![])).await;
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{dialect}: {status:?}"
        );
        assert!(
            status.message().contains("NUL byte"),
            "{}",
            status.message()
        );
    }
    let status = fail(c, sql("SELECT 1; DELETE FROM t")).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let count = exec(c, sql("SELECT count(*) FROM t")).await;
    assert_eq!(scalar(&count), Some(Kind::Int(3)), "nothing was deleted");
    let nodes = exec(c, request("cypher", "MATCH (n:N) RETURN count(n)", vec![])).await;
    assert_eq!(scalar(&nodes), Some(Kind::Int(0)));
}

#[tokio::test]
async fn redis_err_about_a_stored_value_is_failed_precondition_other_err_invalid_argument() {
    let server = RedisServer::start();
    let mut config = Config::default();
    config.engines.remove("cache");
    config.engines.insert(
        "cache".into(),
        EngineConfig::new(DriverConfig::Redis(RedisConfig {
            url: server.url(0),
            ..RedisConfig::default()
        })),
    );
    // The same statements on real Redis and on the memory engine.
    let mut real = TestGateway::with_config(config).await;
    let mut memory = TestGateway::start().await;
    for gw in [&mut real, &mut memory] {
        exec(&mut gw.client, request("redis", "SET k abc", vec![])).await;
        let status = fail(&mut gw.client, request("redis", "INCR k", vec![])).await;
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata["code"], "ERR");
        let status = fail(&mut gw.client, request("redis", "SET k v NX XX", vec![])).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            status.get_details_error_info().unwrap().metadata["code"],
            "ERR"
        );
    }
}
