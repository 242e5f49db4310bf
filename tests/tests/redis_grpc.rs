//! The gateway over gRPC with a real Redis engine: binary-safe parameters,
//! pipelines with per-statement errors, refused commands.
#![allow(clippy::unwrap_used)]

use omnigate_proto::v1 as pb;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, exec, fail, request, s, scalar, v};
use pb::value::Kind;
use tonic::Code;

async fn gateway(server: &RedisServer) -> TestGateway {
    TestGateway::with_config(server.gateway_config()).await
}

fn batch(statements: &[(&str, Vec<pb::Value>)]) -> pb::ExecuteBatchRequest {
    pb::ExecuteBatchRequest {
        dialect: "redis".into(),
        statements: statements
            .iter()
            .map(|(text, params)| pb::BatchStatement {
                statement: (*text).to_owned(),
                params: params.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn binary_parameters_round_trip_through_real_redis() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    let key = v(Kind::Bytes(b"bin\x00key".to_vec()));
    let raw = v(Kind::Bytes(b"\x00\xff\xfe invalid utf-8 \r\n".to_vec()));
    exec(
        &mut gw.client,
        request("redis", "SET $1 $2", vec![key.clone(), raw.clone()]),
    )
    .await;
    let got = exec(&mut gw.client, request("redis", "GET $1", vec![key])).await;
    assert_eq!(got.rows[0].values[0], raw);
    assert_eq!(got.engine, "cache");
    let status = fail(&mut gw.client, request("redis", "SELECT 2", vec![])).await;
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status
            .message()
            .contains("the database is set by the engine config"),
        "{status:?}"
    );
    let cache = omnigate_tests::engine(&mut gw.client, "cache").await;
    assert_eq!(cache.kind, "redis");
    assert_eq!(
        cache.health.as_ref().unwrap().status(),
        pb::health::Status::Serving
    );
}

#[tokio::test]
async fn a_pipeline_returns_each_statements_outcome_even_when_one_fails() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    let request = batch(&[
        ("SET greeting hello", vec![]),
        ("LPUSH greeting x", vec![]),
        ("GET $1", vec![s("greeting")]),
        ("SET \"unclosed", vec![]),
        ("SUBSCRIBE news", vec![]),
        ("INCR counter", vec![]),
    ]);
    let response = gw.client.execute_batch(request).await.unwrap().into_inner();
    assert_eq!(response.engine, "cache");
    let outcomes: Vec<Result<Option<Kind>, (u32, String)>> = response
        .results
        .into_iter()
        .map(|r| match r.outcome.unwrap() {
            pb::batch_result::Outcome::Result(ok) => Ok(scalar(&ok)),
            pb::batch_result::Outcome::Error(e) => Err((e.code, e.reason)),
        })
        .collect();
    assert_eq!(outcomes[0], Ok(Some(Kind::String("OK".into()))));
    assert_eq!(
        outcomes[1],
        Err((
            Code::FailedPrecondition as u32,
            "FAILED_PRECONDITION".into()
        )),
        "WRONGTYPE in the middle"
    );
    assert_eq!(
        outcomes[2],
        Ok(Some(Kind::String("hello".into()))),
        "later statements still ran"
    );
    assert_eq!(
        outcomes[3],
        Err((Code::InvalidArgument as u32, "INVALID_STATEMENT".into()))
    );
    assert_eq!(
        outcomes[4],
        Err((Code::Unimplemented as u32, "NOT_SUPPORTED".into()))
    );
    assert_eq!(outcomes[5], Ok(Some(Kind::Int(1))));
}

#[tokio::test]
async fn batches_work_on_every_engine() {
    let mut gw = TestGateway::start().await;
    let response = gw
        .client
        .execute_batch(batch(&[
            ("SET a 1", vec![]),
            ("INCRBY a 41", vec![]),
            ("GET a", vec![]),
        ]))
        .await
        .unwrap()
        .into_inner();
    let last = match response.results[2].outcome.clone().unwrap() {
        pb::batch_result::Outcome::Result(ok) => scalar(&ok),
        pb::batch_result::Outcome::Error(e) => panic!("{e:?}"),
    };
    assert_eq!(
        last,
        Some(Kind::String("42".into())),
        "the memory engine runs them in order"
    );
    let sql = pb::ExecuteBatchRequest {
        dialect: "sql".into(),
        statements: [
            "CREATE TABLE b (v INTEGER)",
            "INSERT INTO b VALUES (1), (2)",
            "SELECT COUNT(*) FROM b",
        ]
        .iter()
        .map(|t| pb::BatchStatement {
            statement: (*t).into(),
            params: vec![],
            ..Default::default()
        })
        .collect(),
        ..Default::default()
    };
    let response = gw.client.execute_batch(sql).await.unwrap().into_inner();
    match response.results[2].outcome.clone().unwrap() {
        pb::batch_result::Outcome::Result(ok) => assert_eq!(scalar(&ok), Some(Kind::Int(2))),
        pb::batch_result::Outcome::Error(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn raw_bytes_returns_bulk_strings_as_bytes() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    exec(&mut gw.client, request("redis", "RPUSH l hello", vec![])).await;
    let mut req = request("redis", "LRANGE l 0 -1", vec![]);
    req.options = Some(pb::ExecuteOptions {
        raw_bytes: true,
        ..Default::default()
    });
    let got = exec(&mut gw.client, req).await;
    assert_eq!(
        scalar(&got),
        Some(Kind::List(pb::ValueList {
            values: vec![v(Kind::Bytes(b"hello".to_vec()))]
        }))
    );
    let text = exec(&mut gw.client, request("redis", "LRANGE l 0 -1", vec![])).await;
    assert_eq!(
        scalar(&text),
        Some(Kind::List(pb::ValueList {
            values: vec![s("hello")]
        })),
        "text by default"
    );
    let mut memory = TestGateway::start().await;
    exec(&mut memory.client, request("redis", "SET k hello", vec![])).await;
    let mut req = request("redis", "GET k", vec![]);
    req.options = Some(pb::ExecuteOptions {
        raw_bytes: true,
        ..Default::default()
    });
    assert_eq!(
        scalar(&exec(&mut memory.client, req).await),
        Some(Kind::Bytes(b"hello".to_vec())),
        "memory engine too"
    );
}

#[tokio::test]
async fn a_malformed_parameter_names_its_statement_in_the_batch() {
    let mut gw = TestGateway::start().await;
    let bad_uuid = v(Kind::Uuid("nope".into()));
    let status = gw
        .client
        .execute_batch(batch(&[("PING", vec![]), ("SET k $1", vec![bad_uuid])]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("parameter $1: (statement 2 of the batch)"),
        "{status:?}"
    );
}
