//! Graph workloads on FalkorDB: a 1-hop neighbourhood read and a node
//! create. The direct path sends `GRAPH.QUERY` with the same `CYPHER`
//! parameter prefix and compact replies over a redis multiplexed
//! connection, as FalkorDB's own clients do.

use std::sync::Arc;

use futures::FutureExt;
use omnigate::Request;
use omnigate_proto::v1 as pb;

use super::{err, grpc_path, library_path};
use crate::measure::Op;
use crate::setup::{GRAPH, Targets, Workload};

/// People in the graph; each knows three others.
pub(crate) const PEOPLE: u64 = 1000;

/// Loads the graph the workloads read.
pub(crate) async fn load(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    for query in [
        "UNWIND range(0, 999) AS i CREATE (:Person {id: i, name: 'person ' + toString(i)})",
        "CREATE INDEX FOR (p:Person) ON (p.id)",
        "UNWIND range(0, 999) AS i UNWIND [1, 7, 31] AS d MATCH (a:Person {id: i}), (b:Person {id: (i + d) % 1000}) CREATE (a)-[:KNOWS]->(b)",
    ] {
        redis::cmd("GRAPH.QUERY")
            .arg(GRAPH)
            .arg(query)
            .query_async::<redis::Value>(conn)
            .await
            .map_err(err)?;
    }
    Ok(())
}

fn workload(
    t: &Arc<Targets>,
    name: &'static str,
    query: &'static str,
    param: fn(u64) -> i64,
) -> Option<Workload> {
    let conn = t.falkor.clone()?;
    let direct: Op = Arc::new(move |n| {
        let mut conn = conn.clone();
        async move {
            let text = format!("CYPHER v={} {query}", param(n));
            redis::cmd("GRAPH.QUERY")
                .arg(GRAPH)
                .arg(text)
                .arg("--compact")
                .query_async::<redis::Value>(&mut conn)
                .await
                .map_err(err)
                .map(drop)
        }
        .boxed()
    });
    let library = library_path(t, move |n| {
        Request::new("cypher", query).named("v", param(n))
    });
    let grpc = grpc_path(t, move |n| {
        let mut request = pb::ExecuteRequest {
            dialect: "cypher".into(),
            statement: query.into(),
            ..Default::default()
        };
        request.named_params.insert(
            "v".into(),
            pb::Value {
                kind: Some(pb::value::Kind::Int(param(n))),
            },
        );
        request
    });
    Some(Workload {
        name,
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    })
}

/// The graph workloads (none when FalkorDB is not reachable).
pub(super) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    [
        workload(
            t,
            "graph_1hop",
            "MATCH (p:Person {id: $v})-[:KNOWS]->(f) RETURN f.id, f.name",
            |n| (n % PEOPLE) as i64,
        ),
        workload(t, "graph_create", "CREATE (:Event {n: $v})", |n| n as i64),
    ]
    .into_iter()
    .flatten()
    .collect()
}
