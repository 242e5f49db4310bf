//! What a hostile client found against the embedded default, over gRPC:
//! each input gets a clear status, loses nothing, and the server keeps
//! serving (issue 12, items 1–8 and the smaller ones).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use omnigate::config::Config;
use omnigate_proto::v1 as pb;
use omnigate_tests::{TestGateway, assert_status, exec, fail, i, request, s, scalar, v};
use pb::value::Kind;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn still_serving(gw: &mut TestGateway) {
    let pong = exec(&mut gw.client, request("redis", "PING", vec![])).await;
    assert_eq!(scalar(&pong), Some(Kind::String("PONG".into())));
    let one = exec(&mut gw.client, request("sql", "SELECT 1", vec![])).await;
    assert_eq!(scalar(&one), Some(Kind::Int(1)));
}

fn with_options(mut req: pb::ExecuteRequest, options: pb::ExecuteOptions) -> pb::ExecuteRequest {
    req.options = Some(options);
    req
}

fn timeout(d: Duration) -> Option<prost_types::Duration> {
    Some(d.try_into().unwrap())
}

/// This process's resident memory (the gateway runs in it), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[tokio::test]
async fn deeply_nested_promql_is_refused_not_a_crash() {
    let mut gw = TestGateway::start().await;
    let deep = format!("{}x{}", "(".repeat(50_000), ")".repeat(50_000));
    let status = fail(&mut gw.client, request("ts", &deep, vec![])).await;
    assert_status(&status, Code::InvalidArgument, "nests too deeply");
    let chained = format!("x{}", " + x".repeat(5_000));
    let status = fail(&mut gw.client, request("ts", &chained, vec![])).await;
    assert_status(&status, Code::InvalidArgument, "at most 128");
    let delete = with_options(
        request("ts", &format!("DELETE {deep}"), vec![]),
        pb::ExecuteOptions {
            ts: Some(pb::TsOptions {
                allow_delete: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let status = fail(&mut gw.client, delete).await;
    assert_status(&status, Code::InvalidArgument, "nests too deeply");
    // An ordinary nested query still runs.
    exec(&mut gw.client, request("ts", "x v=1", vec![])).await;
    exec(&mut gw.client, request("ts", "sum(((x_v)))", vec![])).await;
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn a_huge_batch_size_is_capped_not_allocated() {
    let mut gw = TestGateway::start().await;
    let req = with_options(
        request("sql", "SELECT 1", vec![]),
        pb::ExecuteOptions {
            batch_size: u32::MAX,
            ..Default::default()
        },
    );
    let mut stream = gw.client.execute_stream(req).await.unwrap().into_inner();
    let mut rows = 0;
    while let Some(message) = stream.next().await {
        rows += message.unwrap().rows.len();
    }
    assert_eq!(rows, 1);
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn a_nul_byte_or_a_second_statement_never_runs_past_what_the_client_sees() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    exec(
        c,
        request("sql", "CREATE TABLE t (id INTEGER PRIMARY KEY)", vec![]),
    )
    .await;
    exec(
        c,
        request("sql", "INSERT INTO t VALUES (1), (2), (3)", vec![]),
    )
    .await;
    let status = fail(c, request("sql", "DELETE FROM t\0 WHERE id = 1", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "NUL byte at byte 13");
    let status = fail(c, request("sql", "SELECT 1 AS x\0 WHERE 0", vec![])).await;
    assert_status(&status, Code::InvalidArgument, "NUL byte");
    let status = fail(c, request("sql", "SELECT 1; DELETE FROM t", vec![])).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let count = exec(c, request("sql", "SELECT count(*) FROM t", vec![])).await;
    assert_eq!(scalar(&count), Some(Kind::Int(3)), "nothing was deleted");
    for (dialect, text) in [("redis", "SET k\0 v"), ("ts", "x\0 v=1"), ("ts", "up\0")] {
        let status = fail(c, request(dialect, text, vec![])).await;
        assert_status(&status, Code::InvalidArgument, "NUL byte");
    }
    // Binary data travels as a parameter, NUL bytes included.
    exec(
        c,
        request("redis", "SET bin $1", vec![v(Kind::Bytes(vec![0, 1, 0]))]),
    )
    .await;
    let back = exec(c, request("redis", "GET bin", vec![])).await;
    assert_eq!(scalar(&back), Some(Kind::String("\0\u{1}\0".into())));
    still_serving(&mut gw).await;
}

/// A list `levels` deep with an int at the bottom.
fn nested(levels: usize) -> pb::Value {
    let mut value = i(1);
    for _ in 0..levels {
        value = v(Kind::List(pb::ValueList {
            values: vec![value],
        }));
    }
    value
}

#[tokio::test]
async fn deeply_nested_parameters_are_the_clients_mistake() {
    let mut gw = TestGateway::start().await;
    for levels in [40, 49, 50, 60, 200] {
        let status = fail(
            &mut gw.client,
            request("sql", "SELECT $1", vec![nested(levels)]),
        )
        .await;
        assert_eq!(status.code(), Code::InvalidArgument, "{levels}: {status:?}");
        let says_limit = status.message().contains("at most 32 levels")
            || status.message().contains("at most 100 levels");
        assert!(says_limit, "{levels}: {}", status.message());
    }
    // Within the limit a nested value is just a value of the wrong kind here.
    let status = fail(&mut gw.client, request("sql", "SELECT $1", vec![nested(3)])).await;
    assert_status(&status, Code::InvalidArgument, "parameter $1");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn slow_memory_commands_stop_at_their_deadline_and_block_no_one() {
    let mut gw = TestGateway::start().await;
    let key = "a".repeat(66_000);
    exec(&mut gw.client, request("redis", "SET $1 v", vec![s(&key)])).await;
    let pattern = format!("*{}b", "a".repeat(33_000));
    let keys = move |limit: Duration| {
        with_options(
            request("redis", "KEYS $1", vec![s(&pattern)]),
            pb::ExecuteOptions {
                timeout: timeout(limit),
                ..Default::default()
            },
        )
    };
    let status = fail(&mut gw.client, keys.clone()(Duration::from_millis(200))).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // While a long KEYS runs, other engines and the health service answer.
    let mut slow = gw.client.clone();
    let running = tokio::spawn(async move { slow.execute(keys(Duration::from_secs(5))).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut health = HealthClient::new(gw.channel().await);
    for _ in 0..3 {
        health.check(HealthCheckRequest::default()).await.unwrap();
        exec(&mut gw.client, request("sql", "SELECT 1", vec![])).await;
        // ListEngines reads the memory engine's counters without waiting.
        let engines = gw.client.list_engines(pb::ListEnginesRequest {}).await;
        assert_eq!(engines.unwrap().into_inner().engines.len(), 2);
    }
    assert!(
        !running.is_finished(),
        "the health checks, SQL and ListEngines did not wait for KEYS"
    );
    let outcome = running.await.unwrap();
    assert_eq!(outcome.unwrap_err().code(), Code::DeadlineExceeded);
    // A long PromQL range on the memory engine stops at its deadline too.
    let mut lines = String::new();
    for host in 0..2000 {
        lines.push_str(&format!("load,host=h{host} v=1 1700000000\n"));
    }
    let write = with_options(
        request("ts", &lines, vec![]),
        pb::ExecuteOptions {
            ts: Some(pb::TsOptions {
                precision: pb::ts_options::Precision::Seconds as i32,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    exec(&mut gw.client, write).await;
    let at = |secs: i64| {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    };
    let range = with_options(
        request("ts", "sum(load_v)", vec![]),
        pb::ExecuteOptions {
            timeout: timeout(Duration::from_millis(100)),
            ts: Some(pb::TsOptions {
                start: at(1_700_000_000),
                end: at(1_700_000_000 + 3440),
                step: timeout(Duration::from_secs(1)),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let status = fail(&mut gw.client, range).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn execute_stops_reading_at_the_response_limit() {
    let mut config = Config::default();
    config.server.max_response_bytes = 1 << 20;
    let mut gw = TestGateway::with_config(config).await;
    let before = rss_mib();
    let cte = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000000) \
               SELECT i, 'some padding text' FROM r";
    let req = with_options(
        request("sql", cte, vec![]),
        pb::ExecuteOptions {
            max_rows: u64::MAX,
            ..Default::default()
        },
    );
    let status = fail(&mut gw.client, req).await;
    assert_status(&status, Code::ResourceExhausted, "max_response_bytes");
    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 100,
        "the gateway grew by {grown} MiB for a 1 MiB limit"
    );
    // max_rows is cut to the server's maximum (1,000,000 by default).
    let mut gw = TestGateway::start().await;
    let narrow = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000000) \
                  SELECT NULL FROM r";
    let req = with_options(
        request("sql", narrow, vec![]),
        pb::ExecuteOptions {
            max_rows: u64::MAX,
            ..Default::default()
        },
    );
    let status = fail(&mut gw.client, req).await;
    assert_status(&status, Code::ResourceExhausted, "more than 1000000 rows");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn a_stored_codec_bomb_comes_back_as_stored_bytes() {
    let mut gw = TestGateway::start().await;
    // The codec header, then snappy-compressed MessagePack of 10M nils.
    let mut nils = vec![0xdd];
    nils.extend(10_000_000u32.to_be_bytes());
    nils.resize(5 + 10_000_000, 0xc0);
    let mut bomb = vec![0xC1, b'O', b'G', 0x11];
    bomb.extend(snap::raw::Encoder::new().compress_vec(&nils).unwrap());
    assert!(bomb.len() < 600_000);
    exec(
        &mut gw.client,
        request("redis", "SET k $1", vec![v(Kind::Bytes(bomb.clone()))]),
    )
    .await;
    let before = rss_mib();
    let got = exec(&mut gw.client, request("redis", "GET k", vec![])).await;
    assert_eq!(scalar(&got), Some(Kind::Bytes(bomb)));
    let grown = rss_mib().saturating_sub(before);
    assert!(grown < 100, "reading it grew the gateway by {grown} MiB");
    still_serving(&mut gw).await;
}

#[tokio::test]
async fn small_mistakes_say_what_to_fix() {
    let mut gw = TestGateway::start().await;
    for dialect in ["sql", "redis", "ts"] {
        let status = fail(&mut gw.client, request(dialect, "  ", vec![])).await;
        assert_status(&status, Code::InvalidArgument, "the statement is empty");
    }
    let req = with_options(
        request("ts", "up", vec![]),
        pb::ExecuteOptions {
            ts: Some(pb::TsOptions {
                start: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                step: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1,
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let status = fail(&mut gw.client, req).await;
    assert_status(&status, Code::InvalidArgument, "options.ts.step");
    assert!(!status.message().contains("$3"), "{}", status.message());
    still_serving(&mut gw).await;
}
