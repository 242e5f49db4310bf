//! The FalkorDB test server starts, and Cypher reaches it through the
//! redis engine's pass-through (the `cypher` dialect comes with its own
//! engine).
#![allow(clippy::unwrap_used)]

use omnigate_drivers::conformance::value;
use omnigate_drivers::redis::{RedisConfig, RedisDriver};
use omnigate_drivers::{Dialect, Value};
use omnigate_tests::falkordb::FalkorServer;

#[tokio::test]
async fn falkordb_answers_graph_queries() {
    let server = FalkorServer::start();
    let config = RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    };
    let d = RedisDriver::connect("graph", config).await.unwrap();
    value(
        &d,
        Dialect::Redis,
        "GRAPH.QUERY g \"CREATE (:Person {name: 'ada'})-[:KNOWS]->(:Person {name: 'charles'})\"",
        &[],
    )
    .await;
    let reply = value(
        &d,
        Dialect::Redis,
        "GRAPH.QUERY g \"MATCH (a)-[:KNOWS]->(b) RETURN a.name, b.name\"",
        &[],
    )
    .await;
    let Value::List(sections) = reply else {
        panic!("a list reply")
    };
    assert_eq!(
        sections[0],
        Value::List(vec![Value::from("a.name"), Value::from("b.name")]),
        "the header"
    );
    assert_eq!(
        sections[1],
        Value::List(vec![Value::List(vec![
            Value::from("ada"),
            Value::from("charles")
        ])]),
        "the rows"
    );
}
