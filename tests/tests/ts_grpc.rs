//! The ts dialect over gRPC: on the embedded default (the memory engine)
//! and on a real VictoriaMetrics: options.ts and $1..$3 windows, streamed
//! ranges, DELETE, precision, and the errors of each.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::conformance::ts::base_millis;
use omnigate_drivers::victoria::VictoriaConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::victoria::VictoriaServer;
use omnigate_tests::{TestGateway, exec, fail, i, request, s, v};
use pb::value::Kind;
use tonic::Code;

fn stamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn with_ts(mut req: pb::ExecuteRequest, ts: pb::TsOptions) -> pb::ExecuteRequest {
    req.options = Some(pb::ExecuteOptions {
        ts: Some(ts),
        ..Default::default()
    });
    req
}

fn write_ms(lines: &str) -> pb::ExecuteRequest {
    with_ts(
        request("ts", lines, vec![]),
        pb::TsOptions {
            precision: pb::ts_options::Precision::Milliseconds as i32,
            ..Default::default()
        },
    )
}

fn values(response: &pb::ExecuteResponse) -> Vec<f64> {
    response
        .rows
        .iter()
        .map(|r| match r.values[2].kind {
            Some(Kind::Float(f)) => f,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

async fn victoria_gateway(server: &VictoriaServer) -> TestGateway {
    let mut config = Config::default();
    config.engines.remove("cache");
    let vm = VictoriaConfig {
        url: server.url(),
        read_your_writes: true,
        stream_points: 7,
        ..VictoriaConfig::default()
    };
    config.engines.insert(
        "metrics".into(),
        EngineConfig::new(DriverConfig::Victoriametrics(vm)),
    );
    TestGateway::with_config(config).await
}

/// The checks both engines pass, through the gateway.
async fn ts_over_grpc(gw: &mut TestGateway) {
    let base = base_millis();
    let mut lines = String::new();
    for n in 0..30 {
        lines.push_str(&format!("temp,room=a c={n} {}\n", base + n * 10_000));
    }
    let written = exec(&mut gw.client, write_ms(&lines)).await;
    assert_eq!(written.rows_affected, 30);
    let window = pb::TsOptions {
        start: Some(stamp(base)),
        end: Some(stamp(base + 40_000)),
        step: Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        }),
        ..Default::default()
    };
    let ranged = exec(
        &mut gw.client,
        with_ts(request("ts", "temp_c", vec![]), window),
    )
    .await;
    let columns: Vec<&str> = ranged.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["labels", "timestamp", "value"]);
    assert_eq!(values(&ranged), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    let Some(Kind::Timestamp(t)) = &ranged.rows[1].values[1].kind else {
        panic!()
    };
    assert_eq!(t.unix_micros, (base + 10_000) * 1000);
    // The same window as $1..$3: start, end (unix seconds) and a step.
    let by_params = request(
        "ts",
        "temp_c",
        vec![
            v(Kind::Timestamp(pb::Timestamp {
                unix_micros: base * 1000,
                zoned: true,
            })),
            i((base + 40_000) / 1000),
            s("10s"),
        ],
    );
    assert_eq!(
        values(&exec(&mut gw.client, by_params).await),
        values(&ranged)
    );
    // Streamed: the same rows.
    let mut stream = gw
        .client
        .execute_stream(with_ts(request("ts", "temp_c", vec![]), window))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(batch) = stream.next().await {
        streamed.extend(values(&batch.unwrap()));
    }
    assert_eq!(streamed, values(&ranged));
    // Errors.
    let bad = fail(&mut gw.client, write_ms("temp,room=a c=1\ntemp,room=b c=x")).await;
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("line 2 column"), "{bad:?}");
    let delete = fail(&mut gw.client, request("ts", "DELETE temp_c", vec![])).await;
    assert_eq!(delete.code(), Code::FailedPrecondition);
    assert!(delete.message().contains("allow_delete"), "{delete:?}");
    let allowed = with_ts(
        request("ts", "DELETE temp_c{room=\"a\"}", vec![]),
        pb::TsOptions {
            allow_delete: true,
            ..Default::default()
        },
    );
    assert_eq!(exec(&mut gw.client, allowed).await.rows_affected, 1);
    let at = pb::TsOptions {
        time: Some(stamp(base + 10_000)),
        ..Default::default()
    };
    let gone = exec(&mut gw.client, with_ts(request("ts", "temp_c", vec![]), at)).await;
    assert!(gone.rows.is_empty(), "deleted");
}

#[tokio::test]
async fn the_embedded_default_serves_ts_over_grpc() {
    let mut gw = TestGateway::start().await;
    ts_over_grpc(&mut gw).await;
    let unsupported = fail(
        &mut gw.client,
        request("ts", "predict_linear(temp_c[5m], 60)", vec![]),
    )
    .await;
    assert_eq!(unsupported.code(), Code::Unimplemented);
    assert!(
        unsupported.message().contains("predict_linear"),
        "{unsupported:?}"
    );
}

#[tokio::test]
async fn victoriametrics_serves_ts_over_grpc() {
    let server = VictoriaServer::start();
    let mut gw = victoria_gateway(&server).await;
    ts_over_grpc(&mut gw).await;
    let metrics = omnigate_tests::engine(&mut gw.client, "metrics").await;
    assert_eq!(metrics.kind, "victoriametrics");
    let pool = metrics.pool.as_ref().unwrap();
    assert!(pool.acquired >= 5 && pool.max_size == 16, "{pool:?}");
}
