//! Time-series workloads on VictoriaMetrics: a 1000-point line-protocol
//! write and a 1-hour range query. The direct path is reqwest against the
//! same HTTP API.

use std::sync::Arc;

use futures::FutureExt;
use omnigate::Request;
use omnigate_drivers::Timestamp;
use omnigate_drivers::ts::{Precision, TsOptions};
use omnigate_proto::v1 as pb;

use super::{err, grpc_path, library_path};
use crate::measure::Op;
use crate::setup::{Targets, Workload};

const RANGE_QUERY: &str = "bench_load_v{host=\"h3\"}";

/// An hour of samples every 15 s for 10 hosts, ending now.
pub(crate) async fn load(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let end = omnigate_drivers::ts::now_millis();
    let mut body = String::new();
    for i in 0..240 {
        for h in 0..10 {
            body.push_str(&format!(
                "bench_load,host=h{h} v={i} {}\n",
                end - 3_600_000 + i * 15_000
            ));
        }
    }
    client
        .post(format!("{url}/write?precision=ms"))
        .body(body)
        .send()
        .await
        .map_err(err)?;
    client
        .post(format!("{url}/internal/force_flush"))
        .send()
        .await
        .map_err(err)?;
    Ok(())
}

/// 1000 lines: 100 series × 10 points, at times no other call uses.
fn lines(n: u64) -> String {
    let base = 1_600_000_000_000 + (n as i64) * 10_000;
    let mut out = String::with_capacity(40_000);
    for s in 0..100 {
        for p in 0..10 {
            out.push_str(&format!("bench_write,s=s{s} v={p} {}\n", base + p));
        }
    }
    out
}

fn write(t: &Arc<Targets>, url: String) -> Workload {
    let direct: Op = {
        let client = t.http.clone();
        Arc::new(move |n| {
            let request = client
                .post(format!("{url}/write?precision=ms"))
                .body(lines(n));
            async move { status_ok(request.send().await.map_err(err)?) }.boxed()
        })
    };
    let library = library_path(t, |n| {
        let mut request = Request::new("ts", lines(n));
        request.options.ts.precision = Precision::Milliseconds;
        request
    });
    let grpc = grpc_path(t, |n| pb::ExecuteRequest {
        dialect: "ts".into(),
        statement: lines(n),
        options: Some(pb::ExecuteOptions {
            ts: Some(pb::TsOptions {
                precision: pb::ts_options::Precision::Milliseconds as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    Workload {
        name: "ts_write_1k",
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    }
}

fn status_ok(response: reqwest::Response) -> Result<(), String> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("status {}", response.status()))
    }
}

fn range_query(t: &Arc<Targets>, url: String) -> Workload {
    let window = || {
        let end = omnigate_drivers::ts::now_millis();
        (end - 3_600_000, end)
    };
    let direct: Op = {
        let client = t.http.clone();
        Arc::new(move |_| {
            let (start, end) = window();
            let request = client.post(format!("{url}/api/v1/query_range")).form(&[
                ("query", RANGE_QUERY.to_owned()),
                ("start", format!("{}", start as f64 / 1000.0)),
                ("end", format!("{}", end as f64 / 1000.0)),
                ("step", "15000ms".to_owned()),
            ]);
            async move {
                let response = request.send().await.map_err(err)?;
                let body = response.bytes().await.map_err(err)?;
                serde_json::from_slice::<serde_json::Value>(&body)
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let at = |ms: i64| Timestamp {
        unix_micros: ms * 1000,
        zoned: true,
    };
    let library = library_path(t, move |_| {
        let (start, end) = window();
        let mut request = Request::new("ts", RANGE_QUERY);
        request.options.ts = TsOptions {
            start: Some(at(start)),
            end: Some(at(end)),
            step: Some(std::time::Duration::from_secs(15)),
            ..TsOptions::default()
        };
        request
    });
    let grpc = grpc_path(t, move |_| {
        let (start, end) = window();
        let stamp = |ms: i64| prost_types::Timestamp {
            seconds: ms / 1000,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        };
        pb::ExecuteRequest {
            dialect: "ts".into(),
            statement: RANGE_QUERY.into(),
            options: Some(pb::ExecuteOptions {
                ts: Some(pb::TsOptions {
                    start: Some(stamp(start)),
                    end: Some(stamp(end)),
                    step: Some(prost_types::Duration {
                        seconds: 15,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    });
    Workload {
        name: "ts_range_1h",
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    }
}

/// The time-series workloads (none when VictoriaMetrics is not reachable).
pub(super) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    match &t.victoria {
        Some(url) => vec![write(t, url.clone()), range_query(t, url.clone())],
        None => Vec::new(),
    }
}
