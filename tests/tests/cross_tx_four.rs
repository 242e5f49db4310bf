//! One transaction over PostgreSQL, Redis, FalkorDB and VictoriaMetrics,
//! through the gateway: committed on all four, rolled back on all four,
//! and refused before the decision when VictoriaMetrics cannot replay.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_drivers::victoria::VictoriaConfig;
use omnigate_drivers::{Dialect, Statement, StorageDriverExt, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::victoria::VictoriaServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, in_tx, request, s, scalar};
use pb::value::Kind;
use tonic::Code;

fn config(pg: &PgServer, redis: &RedisServer, graph: &FalkorServer, vm: &VictoriaServer) -> Config {
    let mut config = pg.gateway_config_with(redis);
    let graph = FalkorConfig {
        url: graph.url(),
        graph: "g".into(),
        ..FalkorConfig::default()
    };
    let metrics = VictoriaConfig {
        url: vm.url(),
        read_your_writes: true,
        ..VictoriaConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(graph)),
    );
    config.engines.insert(
        "metrics".into(),
        EngineConfig::new(DriverConfig::Victoriametrics(metrics)),
    );
    config
}

/// A sample for `id`, a minute old: VictoriaMetrics shows a sample stamped
/// with the current millisecond to queries at "now" only a moment later.
fn sample_line(id: i64) -> String {
    let nanos = (omnigate_drivers::ts::now_millis() - 60_000) * 1_000_000;
    format!("t,id={id} id={id} {nanos}")
}

/// Runs transaction `tx`'s four writes for `id`.
async fn write_everywhere(gw: &mut TestGateway, tx: &str, id: i64) {
    let writes = [
        ("sql", format!("INSERT INTO t VALUES ({id})")),
        ("redis", format!("SET k{id} v")),
        ("cypher", format!("CREATE (:T {{id: {id}}})")),
        ("ts", sample_line(id)),
    ];
    for (dialect, text) in writes {
        exec(&mut gw.client, in_tx(tx, dialect, &text, vec![])).await;
    }
}

/// Where `id` is: PostgreSQL, Redis, FalkorDB, VictoriaMetrics.
async fn where_is(gw: &mut TestGateway, id: i64) -> [bool; 4] {
    let reads = [
        ("sql", format!("SELECT count(*) FROM t WHERE id = {id}")),
        ("redis", format!("EXISTS k{id}")),
        (
            "cypher",
            format!("MATCH (n:T {{id: {id}}}) RETURN count(n)"),
        ),
        ("ts", format!("count_over_time(t_id{{id=\"{id}\"}}[1h])")),
    ];
    let mut found = [false; 4];
    for (slot, (dialect, text)) in reads.into_iter().enumerate() {
        let rows = exec(&mut gw.client, request(dialect, &text, vec![])).await;
        found[slot] = match dialect {
            "ts" => !rows.rows.is_empty(),
            _ => scalar(&rows) == Some(Kind::Int(1)),
        };
    }
    found
}

async fn setup(gw: &mut TestGateway) {
    let table = "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)";
    exec(&mut gw.client, request("sql", table, vec![])).await;
}

#[tokio::test]
async fn four_engines_commit_and_roll_back_together() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (graph, vm) = (FalkorServer::start(), VictoriaServer::start());
    let mut gw = TestGateway::with_config(config(&pg, &redis, &graph, &vm)).await;
    setup(&mut gw).await;

    let tx = begin_tx(&mut gw.client, None).await;
    write_everywhere(&mut gw, &tx, 1).await;
    assert_eq!(
        where_is(&mut gw, 1).await,
        [false; 4],
        "nothing before commit"
    );
    let mut engines = commit_tx(&mut gw.client, &tx).await.unwrap();
    engines.sort();
    assert_eq!(engines, ["cache", "graph", "main-db", "metrics"]);
    assert_eq!(where_is(&mut gw, 1).await, [true; 4]);
    let marker = graph
        .driver()
        .await
        .query_scalar(
            Dialect::Cypher,
            Statement::new("MATCH (m:OmnigateTxMarker) RETURN m.tx_id"),
        )
        .await
        .unwrap();
    assert_eq!(
        marker,
        Value::String(format!("{tx}@graph").into()),
        "FalkorDB's writes came with the transaction's marker (named by the engine too)"
    );

    let tx = begin_tx(&mut gw.client, None).await;
    write_everywhere(&mut gw, &tx, 2).await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    assert_eq!(where_is(&mut gw, 2).await, [false; 4]);
}

#[tokio::test]
async fn without_deduplication_on_victoriametrics_the_commit_is_refused_everywhere() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let graph = FalkorServer::start();
    let vm = VictoriaServer::start_with(&["-dedup.minScrapeInterval=0s"]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, &graph, &vm)).await;
    setup(&mut gw).await;
    let tx = begin_tx(&mut gw.client, None).await;
    write_everywhere(&mut gw, &tx, 3).await;
    let refused = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("-dedup.minScrapeInterval"),
        "{refused:?}"
    );
    assert_eq!(where_is(&mut gw, 3).await, [false; 4]);
    let key = exec(&mut gw.client, request("redis", "EXISTS $1", vec![s("k3")])).await;
    assert_eq!(scalar(&key), Some(Kind::Int(0)));
}
