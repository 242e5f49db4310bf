//! The neo4j engine. Neo4j cannot be installed on the machines the test
//! command runs on, so the tests that need a server are ignored; run them
//! against docker-compose's Neo4j with
//!
//! ```sh
//! docker compose up -d neo4j
//! NEO4J_URL=bolt://127.0.0.1:7687 NEO4J_PASSWORD=omnigate-test \
//!   cargo test -p omnigate-tests --test neo4j_engine -- --ignored
//! ```
//!
//! What runs everywhere: a server that is not there is a clear error.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::conformance::cypher::{self, ok, one};
use omnigate_drivers::neo4j::{Neo4jConfig, Neo4jDriver};
use omnigate_drivers::{
    DescribeOptions, Dialect, Error, ExecuteOptions, Statement, StorageDriver, StorageDriverExt,
    Value,
};
use omnigate_proto::v1 as pb;
use omnigate_tests::{TestGateway, exec, request};

fn from_env() -> Neo4jConfig {
    let url = std::env::var("NEO4J_URL").unwrap_or_else(|_| {
        panic!(
            "set NEO4J_URL (and NEO4J_PASSWORD) to a running Neo4j 5, e.g. `docker compose up -d neo4j` and NEO4J_URL=bolt://127.0.0.1:7687 NEO4J_PASSWORD=omnigate-test"
        )
    });
    Neo4jConfig {
        url,
        user: std::env::var("NEO4J_USER").unwrap_or_else(|_| "neo4j".into()),
        password: std::env::var("NEO4J_PASSWORD").ok().map(Into::into),
        ..Neo4jConfig::default()
    }
}

async fn driver() -> Neo4jDriver {
    Neo4jDriver::connect("graph", from_env()).await.unwrap()
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable_at_startup() {
    let port = omnigate_tests::free_port();
    let config = Neo4jConfig {
        url: format!("bolt://127.0.0.1:{port}"),
        password: Some("not-shown".into()),
        ..Neo4jConfig::default()
    };
    let err = Neo4jDriver::connect("graph", config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("Neo4j"), "{err}");
    assert!(
        !err.to_string().contains("not-shown"),
        "no password in errors"
    );
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_passes_the_cypher_conformance_suite() {
    cypher::run_all(&driver().await).await;
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_keeps_a_deciding_engines_markers() {
    omnigate_drivers::conformance::decision::run_all(&driver().await).await;
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_types_round_trip_as_bolt_values() {
    let d = driver().await;
    let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    for value in [
        Value::Date(date.into()),
        Value::Bytes(vec![0, 1, 255].into()),
        Value::Timestamp(omnigate_drivers::Timestamp {
            unix_micros: 1_700_000_000_123_456,
            zoned: true,
        }),
    ] {
        assert_eq!(one(&d, "RETURN $v", &[("v", value.clone())]).await, value);
    }
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_read_only_timeouts_and_describe() {
    let d = driver().await;
    ok(&d, "MERGE (:Described {k: 1})", &[]).await;
    let read_only = ExecuteOptions {
        read_only: true,
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(
            Dialect::Cypher,
            &Statement::new("CREATE (:Nope)"),
            &read_only,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Precondition(_)), "{err}");
    let slow = ExecuteOptions {
        timeout: Some(std::time::Duration::from_millis(300)),
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(
            Dialect::Cypher,
            &Statement::new(
                "UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 0 RETURN count(x)",
            ),
            &slow,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let objects = d.describe(&DescribeOptions::default()).await.unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o.kind == "label" && o.name == "Described")
    );
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_nested_properties_go_through_the_codec() {
    let env = from_env();
    let mut config = Config::default();
    let neo4j = Neo4jConfig {
        url: env.url,
        user: env.user,
        password: env.password,
        ..Neo4jConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Neo4j(neo4j)),
    );
    let mut gw = TestGateway::with_config(config).await;
    let meta = pb::Value {
        kind: Some(pb::value::Kind::Map(pb::ValueMap {
            entries: vec![pb::MapEntry {
                key: "tier".into(),
                value: Some(omnigate_tests::s("gold")),
            }],
        })),
    };
    let props = pb::Value {
        kind: Some(pb::value::Kind::Map(pb::ValueMap {
            entries: vec![pb::MapEntry {
                key: "meta".into(),
                value: Some(meta.clone()),
            }],
        })),
    };
    let mut create = request("cypher", "CREATE (n:NestedAccount) SET n = $props", vec![]);
    create.named_params.insert("props".into(), props);
    exec(&mut gw.client, create).await;
    let got = exec(
        &mut gw.client,
        request(
            "cypher",
            "MATCH (n:NestedAccount) RETURN n.meta LIMIT 1",
            vec![],
        ),
    )
    .await;
    assert_eq!(got.rows[0].values[0], meta);
}

#[tokio::test]
#[ignore = "needs Neo4j: docker compose up -d neo4j, then NEO4J_URL=... (see the file's header)"]
async fn neo4j_transactions_read_their_writes_and_decide_with_redis() {
    use omnigate_tests::redis::RedisServer;
    use omnigate_tests::{begin_tx, commit_tx, in_tx, scalar};
    use pb::value::Kind;
    let redis = RedisServer::start();
    let mut config = redis.gateway_config();
    config.engines.remove("main");
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Neo4j(from_env())),
    );
    let mut gw = TestGateway::with_config(config).await;
    let id = format!("tx-{}", std::process::id());
    let count = format!("MATCH (n:TxNode {{id: '{id}'}}) RETURN count(n)");
    // Live: the transaction reads its own write; others do not see it.
    let tx = begin_tx(&mut gw.client, None).await;
    let create = format!("CREATE (:TxNode {{id: '{id}'}})");
    exec(&mut gw.client, in_tx(&tx, "cypher", &create, vec![])).await;
    let inside = exec(&mut gw.client, in_tx(&tx, "cypher", &count, vec![])).await;
    assert_eq!(scalar(&inside), Some(Kind::Int(1)));
    let outside = exec(&mut gw.client, request("cypher", &count, vec![])).await;
    assert_eq!(scalar(&outside), Some(Kind::Int(0)));
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET neo4j-tx 1", vec![]),
    )
    .await;
    // Neo4j decides: its marker node commits with the node.
    let mut engines = commit_tx(&mut gw.client, &tx).await.unwrap();
    engines.sort();
    assert_eq!(engines, ["cache", "graph"]);
    let after = exec(&mut gw.client, request("cypher", &count, vec![])).await;
    assert_eq!(scalar(&after), Some(Kind::Int(1)));
    let marker = format!("MATCH (m:OmnigateTxMarker {{tx_id: '{tx}'}}) RETURN count(m)");
    let marker = driver()
        .await
        .query_scalar(Dialect::Cypher, Statement::new(marker))
        .await
        .unwrap();
    assert_eq!(marker, Value::Int(1));

    // Rolled back: nothing on either engine.
    let tx = begin_tx(&mut gw.client, None).await;
    let gone = format!("CREATE (:TxNode {{id: '{id}-gone'}})");
    exec(&mut gw.client, in_tx(&tx, "cypher", &gone, vec![])).await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    let count_gone = format!("MATCH (n:TxNode {{id: '{id}-gone'}}) RETURN count(n)");
    let after = exec(&mut gw.client, request("cypher", &count_gone, vec![])).await;
    assert_eq!(scalar(&after), Some(Kind::Int(0)));
}
