//! Redis workloads: GET / SET of 100 B, GET of 10 KB, an 8-command pipeline;
//! each direct, in-process (library), over gRPC, through the served
//! gateway's RESP front end (the same client as direct, pointed at its
//! listener), and through twemproxy when there is one.

use std::sync::Arc;

use futures::FutureExt;
use omnigate::{BatchRequest, Request};
use omnigate_drivers::{Statement, Value};
use omnigate_proto::v1 as pb;

use super::{err, grpc_paths, library_path};
use crate::measure::Op;
use crate::setup::{Targets, Workload};

/// A Redis workload: `args(n)` are the command's arguments.
pub(super) fn redis_workload(
    t: &Arc<Targets>,
    name: &'static str,
    args: fn(u64) -> Vec<String>,
) -> Workload {
    // The client on its own, and through twemproxy when there is one.
    let client = |conn: redis::aio::MultiplexedConnection| -> Op {
        Arc::new(move |n| {
            let mut conn = conn.clone();
            async move {
                let args = args(n);
                let mut cmd = redis::cmd(&args[0]);
                for arg in &args[1..] {
                    cmd.arg(arg);
                }
                cmd.query_async::<redis::Value>(&mut conn)
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let direct = client(t.redis.clone());
    let proxied = t.proxy.clone().map(client);
    let resp = client(t.resp.clone());
    // The statement text is the same for every call (`GET $1`); only the
    // parameters change, as in a user's code.
    let text: Arc<str> = {
        let first = args(0);
        let placeholders: Vec<String> = (1..first.len()).map(|i| format!("${i}")).collect();
        format!("{} {}", first[0], placeholders.join(" ")).into()
    };
    let params = move |n| args(n).into_iter().skip(1);
    let library = {
        let text = Arc::clone(&text);
        library_path(t, move |n| {
            let mut request = Request::new("redis", &*text);
            request.params = params(n).map(Value::from).collect();
            request
        })
    };
    let [grpc, grpc_uds] = grpc_paths(t, move |n| pb::ExecuteRequest {
        dialect: "redis".into(),
        statement: text.to_string(),
        params: params(n)
            .map(|p| pb::Value {
                kind: Some(pb::value::Kind::String(p)),
            })
            .collect(),
        ..Default::default()
    });
    let mut paths = vec![("direct", direct), ("library", library), grpc, grpc_uds];
    paths.push(("resp", resp));
    paths.extend(proxied.map(|op| ("twemproxy", op)));
    Workload { name, paths }
}

/// An 8-command Redis pipeline: one round trip on every path.
pub(super) fn redis_pipeline(t: &Arc<Targets>) -> Workload {
    let keys = |n: u64| (0..8).map(move |i| format!("bench:100b:{}", (n * 8 + i) % 1000));
    let pipeline = |conn: redis::aio::MultiplexedConnection| -> Op {
        Arc::new(move |n| {
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for key in keys(n) {
                    pipe.get(key);
                }
                pipe.query_async::<Vec<redis::Value>>(&mut conn)
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let direct = pipeline(t.redis.clone());
    let proxied = t.proxy.clone().map(pipeline);
    let resp = pipeline(t.resp.clone());
    let library: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let t = Arc::clone(&t);
            async move {
                let batch = BatchRequest {
                    dialect: "redis".into(),
                    statements: keys(n).map(|k| Statement::new("GET $1").bind(k)).collect(),
                    ..BatchRequest::default()
                };
                t.gateway.execute_batch(batch).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    let grpc: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = t.grpc(n);
            async move {
                let request = pb::ExecuteBatchRequest {
                    dialect: "redis".into(),
                    statements: keys(n)
                        .map(|k| pb::BatchStatement {
                            statement: "GET $1".into(),
                            params: vec![pb::Value {
                                kind: Some(pb::value::Kind::String(k)),
                            }],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                client.execute_batch(request).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    let mut paths = vec![
        ("direct", direct),
        ("library", library),
        ("grpc", grpc),
        ("resp", resp),
    ];
    paths.extend(proxied.map(|op| ("twemproxy", op)));
    Workload {
        name: "redis_pipeline_8",
        paths,
    }
}
