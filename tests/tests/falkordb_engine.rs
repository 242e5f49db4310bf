//! The falkordb engine against a real FalkorDB: the cypher conformance
//! suite, large graphs, the name tables' refresh, graph selection,
//! timeouts, Describe, and a server restart.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_drivers::conformance::cypher::{self, ok, one};
use omnigate_drivers::falkordb::{FalkorConfig, FalkorDriver};
use omnigate_drivers::redis::{RedisConfig, RedisDriver};
use omnigate_drivers::{
    DescribeOptions, Dialect, Error, ExecuteOptions, PoolSettings, Statement, StorageDriver,
    StorageDriverExt, Value,
};
use omnigate_tests::falkordb::FalkorServer;

fn config(server: &FalkorServer) -> FalkorConfig {
    FalkorConfig {
        url: server.url(),
        pool: PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
        graph: "test".into(),
        databases: vec!["tenant_*".into()],
        ..FalkorConfig::default()
    }
}

async fn driver(server: &FalkorServer) -> FalkorDriver {
    FalkorDriver::connect("graph", config(server))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cypher_conformance_suite_passes() {
    let server = FalkorServer::start();
    cypher::run_all(&driver(&server).await).await;
}

#[tokio::test]
async fn a_hundred_thousand_nodes_are_created_and_read_back() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    let created = ok(
        &d,
        "UNWIND range(1, $n) AS i CREATE (:Big {i: i, name: 'node ' + toString(i)})",
        &[("n", Value::Int(100_000))],
    )
    .await;
    assert_eq!(
        created.rows_affected, 300_000,
        "nodes plus two properties each"
    );
    let all = ok(&d, "MATCH (b:Big) RETURN b.i, b.name ORDER BY b.i", &[]).await;
    assert_eq!(all.rows.len(), 100_000);
    assert_eq!(
        all.rows[99_999],
        vec![Value::Int(100_000), Value::from("node 100000")]
    );
    let sum = one(&d, "MATCH (b:Big) RETURN sum(b.i)", &[]).await;
    assert_eq!(cypher::number(&sum), 5_000_050_000.0);
}

#[tokio::test]
async fn names_made_by_another_client_are_fetched_when_a_reply_holds_them() {
    let server = FalkorServer::start();
    let reader = driver(&server).await;
    let writer = driver(&server).await;
    ok(&reader, "CREATE (:First {a: 1})", &[]).await;
    // The reader now caches tables that know First and a only.
    assert!(matches!(
        one(&reader, "MATCH (n:First) RETURN n", &[]).await,
        Value::Node(_)
    ));
    ok(
        &writer,
        "CREATE (:Second {fresh_key: 'x'})-[:NEW_TYPE]->(:First {a: 2})",
        &[],
    )
    .await;
    let result = ok(&reader, "MATCH (s:Second)-[r]->(f) RETURN s, r", &[]).await;
    let Value::Node(second) = &result.rows[0][0] else {
        panic!()
    };
    assert_eq!(second.labels, vec!["Second".to_owned()]);
    assert_eq!(
        second.properties,
        vec![("fresh_key".to_owned(), Value::from("x"))]
    );
    let Value::Relationship(r) = &result.rows[0][1] else {
        panic!()
    };
    assert_eq!(r.rel_type, "NEW_TYPE");
}

#[tokio::test]
async fn requests_choose_among_the_allowed_graphs_only() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    let in_graph = |graph: &str| ExecuteOptions {
        database: Some(graph.to_owned()),
        ..ExecuteOptions::default()
    };
    let create = Statement::new("CREATE (:Tenant {name: 'a'})");
    d.execute(Dialect::Cypher, &create, &in_graph("tenant_a"))
        .await
        .unwrap();
    let count = Statement::new("MATCH (t:Tenant) RETURN count(t)");
    let there = d
        .execute(Dialect::Cypher, &count, &in_graph("tenant_a"))
        .await
        .unwrap();
    assert_eq!(there.rows[0][0], Value::Int(1));
    assert_eq!(
        one(&d, "MATCH (t:Tenant) RETURN count(t)", &[]).await,
        Value::Int(0)
    );
    let refused = d
        .execute(Dialect::Cypher, &count, &in_graph("other"))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::PermissionDenied(_)), "{refused}");
}

#[tokio::test]
async fn a_slow_query_is_cut_at_its_timeout_and_the_engine_serves_on() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    let slow =
        Statement::new("UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 0 RETURN count(x)");
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(200)),
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Cypher, &slow, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)),
        "{err}"
    );
    assert_eq!(one(&d, "RETURN 1", &[]).await, Value::Int(1));
}

#[tokio::test]
async fn describe_lists_labels_types_keys_indexes_and_constraints() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    ok(
        &d,
        "CREATE (:Person {name: 'ada'})-[:KNOWS]->(:Person {name: 'bob'})",
        &[],
    )
    .await;
    ok(&d, "CREATE INDEX FOR (p:Person) ON (p.name)", &[]).await;
    let objects = d.describe(&DescribeOptions::default()).await.unwrap();
    let has = |kind: &str, name: &str| objects.iter().any(|o| o.kind == kind && o.name == name);
    assert!(has("label", "Person"), "{objects:?}");
    assert!(has("relationship_type", "KNOWS"));
    assert!(has("property_key", "name"));
    assert!(has("index", "Person(name)"), "{objects:?}");
    let only = d
        .describe(&DescribeOptions {
            name: Some("KNOWS".into()),
        })
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
}

#[tokio::test]
async fn a_unique_constraint_violation_is_a_constraint_error() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    ok(&d, "CREATE INDEX FOR (u:User) ON (u.email)", &[]).await;
    // FalkorDB makes constraints with a command of its own.
    let plain = RedisDriver::connect(
        "plain",
        RedisConfig {
            url: server.url(),
            ..RedisConfig::default()
        },
    )
    .await
    .unwrap();
    plain
        .run(
            Dialect::Redis,
            Statement::new("GRAPH.CONSTRAINT CREATE test UNIQUE NODE User PROPERTIES 1 email"),
        )
        .await
        .unwrap();
    // The constraint is built in the background.
    for _ in 0..50 {
        let status = ok(&d, "CALL db.constraints() YIELD status RETURN status", &[]).await;
        if status.rows.first().map(|r| &r[0]) == Some(&Value::from("OPERATIONAL")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ok(
        &d,
        "CREATE (:User {email: $e})",
        &[("e", Value::from("a@x"))],
    )
    .await;
    let err = cypher::cypher(
        &d,
        "CREATE (:User {email: $e})",
        &[("e", Value::from("a@x"))],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ConstraintViolation(_)), "{err}");
    let objects = d.describe(&DescribeOptions::default()).await.unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o.kind == "constraint" && o.name == "User(email)"),
        "{objects:?}"
    );
}

#[tokio::test]
async fn the_engine_fails_fast_while_falkordb_is_down_and_recovers() {
    let mut server = FalkorServer::start();
    let d = driver(&server).await;
    ok(&d, "CREATE (:Before)", &[]).await;
    server.server().kill();
    omnigate_tests::outage_then_recovery(&d, Dialect::Cypher, "RETURN 1", || {
        server.server().restart()
    })
    .await;
}
