//! The cypher dialect over gRPC with a real FalkorDB: named parameters,
//! graph values in the proto, nested properties through the codec, graph
//! selection, Describe, and the errors of a wrong parameter style.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::{TestGateway, exec, fail, i, request, s, scalar, v};
use pb::value::Kind;
use tonic::Code;

async fn gateway(server: &FalkorServer) -> TestGateway {
    let mut config = Config::default();
    let graph = FalkorConfig {
        url: server.url(),
        graph: "main".into(),
        databases: vec!["scratch_*".into()],
        ..FalkorConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(graph)),
    );
    TestGateway::with_config(config).await
}

fn cypher(statement: &str, named: &[(&str, pb::Value)]) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        named_params: named
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..request("cypher", statement, vec![])
    }
}

fn map(entries: &[(&str, pb::Value)]) -> pb::Value {
    v(Kind::Map(pb::ValueMap {
        entries: entries
            .iter()
            .map(|(k, v)| pb::MapEntry {
                key: (*k).to_owned(),
                value: Some(v.clone()),
            })
            .collect(),
    }))
}

fn list(items: Vec<pb::Value>) -> pb::Value {
    v(Kind::List(pb::ValueList { values: items }))
}

#[tokio::test]
async fn nodes_relationships_and_paths_come_back_as_graph_values() {
    let server = FalkorServer::start();
    let mut gw = gateway(&server).await;
    exec(
        &mut gw.client,
        cypher(
            "CREATE (:Person {name: $a})-[:KNOWS {since: $since}]->(:Person {name: $b})",
            &[("a", s("ada")), ("b", s("charles")), ("since", i(1833))],
        ),
    )
    .await;
    let got = exec(
        &mut gw.client,
        cypher(
            "MATCH p = (a:Person {name: $a})-[r:KNOWS]->(b) RETURN a, r, p",
            &[("a", s("ada"))],
        ),
    )
    .await;
    assert_eq!(got.engine, "graph");
    let row = &got.rows[0].values;
    let Some(Kind::Node(a)) = &row[0].kind else {
        panic!("{row:?}")
    };
    assert_eq!(a.labels, vec!["Person".to_owned()]);
    let Some(Kind::Relationship(r)) = &row[1].kind else {
        panic!("{row:?}")
    };
    assert_eq!((r.r#type.as_str(), r.start_node_id), ("KNOWS", a.id));
    let Some(Kind::Path(p)) = &row[2].kind else {
        panic!("{row:?}")
    };
    assert_eq!((p.nodes.len(), p.relationships.len()), (2, 1));
}

#[tokio::test]
async fn nested_properties_are_stored_through_the_codec_and_read_back() {
    let server = FalkorServer::start();
    let mut gw = gateway(&server).await;
    let meta = map(&[("tier", s("gold")), ("limits", list(vec![i(1), i(2)]))]);
    let history = list(vec![map(&[("at", i(1))]), map(&[("at", i(2))])]);
    let props = map(&[
        ("name", s("ada")),
        ("meta", meta.clone()),
        ("history", history.clone()),
    ]);
    exec(
        &mut gw.client,
        cypher("CREATE (n:Account) SET n = $props", &[("props", props)]),
    )
    .await;
    let got = exec(
        &mut gw.client,
        cypher("MATCH (n:Account) RETURN n.name, n.meta, n.history, n", &[]),
    )
    .await;
    let row = &got.rows[0].values;
    assert_eq!(row[0], s("ada"), "plain properties stay plain");
    assert_eq!(row[1], meta, "a nested map comes back as a map");
    assert_eq!(row[2], history, "a list of maps comes back as a list");
    let Some(Kind::Node(node)) = &row[3].kind else {
        panic!()
    };
    let stored = node.properties.as_ref().unwrap();
    assert!(
        stored
            .entries
            .iter()
            .any(|e| e.key == "meta" && e.value.as_ref() == Some(&meta)),
        "node properties are decoded too"
    );
    // Other clients see the encoded form: a marked string, not the map.
    let raw = exec(
        &mut gw.client,
        cypher("MATCH (n:Account) RETURN n.meta STARTS WITH 'x'", &[]),
    )
    .await;
    assert_eq!(scalar(&raw), Some(Kind::Bool(false)));
}

#[tokio::test]
async fn parameters_of_the_wrong_style_are_refused_clearly() {
    let server = FalkorServer::start();
    let mut gw = gateway(&server).await;
    let positional = fail(&mut gw.client, request("cypher", "RETURN $1", vec![i(1)])).await;
    assert_eq!(positional.code(), Code::InvalidArgument);
    assert!(
        positional.message().contains("named parameters"),
        "{positional:?}"
    );
    let mut named_sql = cypher("SELECT $1", &[("x", i(1))]);
    named_sql.dialect = "sql".into();
    let status = fail(&mut gw.client, named_sql).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("$x"), "{status:?}");
    let date = v(Kind::Date(pb::Date {
        days_since_epoch: 1,
    }));
    let status = fail(&mut gw.client, cypher("RETURN $d", &[("d", date)])).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("ISO-8601"), "{status:?}");
    let status = fail(&mut gw.client, cypher("MATCH (n RETURN n", &[])).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut read_only = cypher("CREATE (:X)", &[]);
    read_only.options = Some(pb::ExecuteOptions {
        read_only: true,
        ..Default::default()
    });
    let status = fail(&mut gw.client, read_only).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

#[tokio::test]
async fn the_database_option_picks_an_allowed_graph() {
    let server = FalkorServer::start();
    let mut gw = gateway(&server).await;
    let in_graph = |statement: &str, graph: &str| pb::ExecuteRequest {
        options: Some(pb::ExecuteOptions {
            database: graph.to_owned(),
            ..Default::default()
        }),
        ..cypher(statement, &[])
    };
    exec(&mut gw.client, in_graph("CREATE (:Only)", "scratch_1")).await;
    let there = exec(
        &mut gw.client,
        in_graph("MATCH (n:Only) RETURN count(n)", "scratch_1"),
    )
    .await;
    assert_eq!(scalar(&there), Some(Kind::Int(1)));
    let main = exec(
        &mut gw.client,
        cypher("MATCH (n:Only) RETURN count(n)", &[]),
    )
    .await;
    assert_eq!(scalar(&main), Some(Kind::Int(0)));
    let status = fail(&mut gw.client, in_graph("RETURN 1", "private")).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn describe_and_list_engines_show_the_graph_engine() {
    let server = FalkorServer::start();
    let mut gw = gateway(&server).await;
    exec(
        &mut gw.client,
        cypher("CREATE (:Shown {k: 1})-[:LINK]->(:Shown)", &[]),
    )
    .await;
    let objects = gw
        .client
        .describe(pb::DescribeRequest {
            target: "graph".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .objects;
    assert!(
        objects
            .iter()
            .any(|o| o.kind == "label" && o.name == "Shown"),
        "{objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o.kind == "relationship_type" && o.name == "LINK")
    );
    let graph = omnigate_tests::engine(&mut gw.client, "graph").await;
    assert_eq!(graph.kind, "falkordb");
    assert_eq!(graph.dialects, vec!["cypher".to_owned()]);
    assert!(graph.pool.as_ref().unwrap().acquired >= 1);
}
