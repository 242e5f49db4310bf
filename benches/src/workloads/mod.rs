//! The workloads, one module per engine; each is an operation per path.

mod graph;
mod redis;
mod sql;
mod ts;
mod tx;

use std::sync::Arc;

pub(crate) use graph::load as load_graph;
pub(crate) use ts::load as load_series;

use futures::FutureExt;

use crate::measure::Op;
use crate::setup::{Targets, Workload};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The library path of a workload: `request(n)` run by the in-process
/// gateway.
fn library_path(
    t: &Arc<Targets>,
    request: impl Fn(u64) -> omnigate::Request + Send + Sync + 'static,
) -> Op {
    let t = Arc::clone(t);
    Arc::new(move |n| {
        let t = Arc::clone(&t);
        let request = request(n);
        async move { t.gateway.execute(request).await.map_err(err).map(drop) }.boxed()
    })
}

/// The gRPC path of a workload: `request(n)` sent with Execute, on the
/// clients in turn.
fn grpc_path(
    t: &Arc<Targets>,
    request: impl Fn(u64) -> omnigate_proto::v1::ExecuteRequest + Send + Sync + 'static,
) -> Op {
    let t = Arc::clone(t);
    Arc::new(move |n| {
        let mut client = t.grpc(n);
        let request = request(n);
        async move { client.execute(request).await.map_err(err).map(drop) }.boxed()
    })
}

/// The `grpc` path and `grpc-uds`, the same calls over the served
/// gateway's Unix socket.
fn grpc_paths(
    t: &Arc<Targets>,
    request: impl Fn(u64) -> omnigate_proto::v1::ExecuteRequest + Send + Sync + 'static,
) -> [(&'static str, Op); 2] {
    let request = Arc::new(request);
    let tcp = {
        let request = Arc::clone(&request);
        grpc_path(t, move |n| request(n))
    };
    let t = Arc::clone(t);
    let uds: Op = Arc::new(move |n| {
        let mut client = t.grpc_uds(n);
        let request = request(n);
        async move { client.execute(request).await.map_err(err).map(drop) }.boxed()
    });
    [("grpc", tcp), ("grpc-uds", uds)]
}

/// Every workload whose engine is reachable.
pub(crate) fn all(t: &Arc<Targets>) -> Vec<Workload> {
    let mut out = vec![
        sql::sql_workload(
            t,
            "pg_point_read",
            "SELECT id, name, balance FROM bench_accounts WHERE id = $1",
            |n| (n % 10_000) as i64 + 1,
        ),
        sql::sql_workload(
            t,
            "pg_insert",
            "INSERT INTO bench_events (account, note) VALUES ($1, 'bench')",
            |n| (n % 10_000) as i64 + 1,
        ),
        sql::sql_workload(
            t,
            "pg_read_100",
            "SELECT id, name, balance FROM bench_accounts WHERE id BETWEEN $1 AND $1 + 99",
            |n| (n % 9_900) as i64 + 1,
        ),
        sql::stream_10k(t),
        redis::redis_workload(t, "redis_get_100b", |n| {
            vec!["GET".into(), format!("bench:100b:{}", n % 1000)]
        }),
        redis::redis_workload(t, "redis_set_100b", |n| {
            vec![
                "SET".into(),
                format!("bench:set:{}", n % 1000),
                "z".repeat(100),
            ]
        }),
        redis::redis_workload(t, "redis_get_10kb", |n| {
            vec!["GET".into(), format!("bench:10kb:{}", n % 100)]
        }),
        redis::redis_pipeline(t),
    ];
    out.extend(graph::workloads(t));
    out.extend(ts::workloads(t));
    out.extend(tx::workloads(t));
    out.push(grpc_floor(t));
    out
}

/// The cheapest call the gateway's server answers (`grpc.health.v1`
/// Check): the floor of any gRPC path on this machine, to read the
/// gateway's own share of the gRPC figures against.
fn grpc_floor(t: &Arc<Targets>) -> Workload {
    use futures::FutureExt;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let grpc: crate::measure::Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = HealthClient::new(t.channel(n));
            async move {
                client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    Workload {
        name: "grpc_floor",
        paths: vec![("grpc", grpc)],
    }
}
