//! The cross-engine commit stopped (as by a crash) or failed at each of
//! its steps, over PostgreSQL (prepared), SQLite (the deciding engine),
//! and Redis, FalkorDB and VictoriaMetrics (buffered): after recovery, each
//! transaction is on every engine or on none, and which one follows from
//! where it stopped.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate::tx::failpoint::{Action, POINTS};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_drivers::sqlite::SqliteConfig;
use omnigate_drivers::victoria::VictoriaConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::victoria::VictoriaServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, i, in_tx, request, scalar};
use pb::value::Kind;

/// The engines every transaction here spans.
struct Servers {
    pg: PgServer,
    redis: RedisServer,
    graph: FalkorServer,
    metrics: VictoriaServer,
}

fn config(servers: &Servers, dir: &std::path::Path) -> Config {
    let mut config = servers.pg.gateway_config_with(&servers.redis);
    let sqlite = SqliteConfig::file(dir.join("main.sqlite3"));
    let graph = FalkorConfig {
        url: servers.graph.url(),
        graph: "g".into(),
        ..FalkorConfig::default()
    };
    let metrics = VictoriaConfig {
        url: servers.metrics.url(),
        read_your_writes: true,
        ..VictoriaConfig::default()
    };
    for (name, driver) in [
        ("main", DriverConfig::Sqlite(sqlite)),
        ("graph", DriverConfig::Falkordb(graph)),
        ("metrics", DriverConfig::Victoriametrics(metrics)),
    ] {
        config
            .engines
            .insert(name.into(), EngineConfig::new(driver));
    }
    config
}

fn sql(target: &str, tx: Option<&str>, text: &str, params: Vec<pb::Value>) -> pb::ExecuteRequest {
    let mut req = match tx {
        Some(tx) => in_tx(tx, "sql", text, params),
        None => request("sql", text, params),
    };
    req.target = target.to_owned();
    req
}

/// Whether row `id` is on PostgreSQL and on SQLite (when `live`), its key
/// on Redis, its node on FalkorDB and its sample on VictoriaMetrics.
async fn where_is(gw: &mut TestGateway, id: i64, live: bool) -> Vec<bool> {
    let mut found = vec![false; 5];
    let targets: &[(usize, &str)] = if live {
        &[(0, "main-db"), (1, "main")]
    } else {
        &[]
    };
    for &(slot, target) in targets {
        let rows = exec(
            &mut gw.client,
            sql(
                target,
                None,
                "SELECT count(*) FROM t WHERE id = $1",
                vec![i(id)],
            ),
        )
        .await;
        found[slot] = scalar(&rows) == Some(Kind::Int(1));
    }
    let key = exec(
        &mut gw.client,
        request(
            "redis",
            "EXISTS $1",
            vec![omnigate_tests::s(&format!("k{id}"))],
        ),
    )
    .await;
    found[2] = scalar(&key) == Some(Kind::Int(1));
    let node = exec(
        &mut gw.client,
        request(
            "cypher",
            &format!("MATCH (n:T {{id: {id}}}) RETURN count(n)"),
            vec![],
        ),
    )
    .await;
    found[3] = scalar(&node) == Some(Kind::Int(1));
    let sample = exec(
        &mut gw.client,
        request(
            "ts",
            &format!("count_over_time(t_id{{id=\"{id}\"}}[1h])"),
            vec![],
        ),
    )
    .await;
    found[4] = !sample.rows.is_empty();
    if !live {
        found.drain(..2);
    }
    found
}

/// With SQLite deciding and PostgreSQL prepared beside the buffered
/// engines: the deciding engine's commit is the decision and its marker
/// the record.
#[tokio::test]
async fn every_step_stopped_or_failed_is_all_or_nothing_after_recovery() {
    trials(true).await;
}

/// With buffered engines only: the log's COMMIT record is the decision.
#[tokio::test]
async fn without_a_deciding_engine_every_step_is_all_or_nothing_after_recovery() {
    trials(false).await;
}

async fn trials(live: bool) {
    let servers = Servers {
        pg: PgServer::start(),
        redis: RedisServer::start(),
        graph: FalkorServer::start(),
        metrics: VictoriaServer::start(),
    };
    let mut report = Vec::new();
    let mut id = 0;
    for action in [Action::Stop, Action::Fail] {
        for (step, point) in POINTS.iter().enumerate() {
            id += 1;
            let dir = tempfile::tempdir().unwrap();
            let mut gw = TestGateway::with_config(config(&servers, dir.path())).await;
            for target in ["main-db", "main"] {
                exec(
                    &mut gw.client,
                    sql(
                        target,
                        None,
                        "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)",
                        vec![],
                    ),
                )
                .await;
            }
            gw.gateway.failpoints().set(point, Some(action));
            let tx = begin_tx(&mut gw.client, None).await;
            for target in ["main-db", "main"].iter().filter(|_| live) {
                let insert = sql(target, Some(&tx), "INSERT INTO t VALUES ($1)", vec![i(id)]);
                exec(&mut gw.client, insert).await;
            }
            let key = omnigate_tests::s(&format!("k{id}"));
            exec(&mut gw.client, in_tx(&tx, "redis", "SET $1 v", vec![key])).await;
            let node = format!("CREATE (:T {{id: {id}}})");
            exec(&mut gw.client, in_tx(&tx, "cypher", &node, vec![])).await;
            // A minute old: VictoriaMetrics shows a sample of the current
            // millisecond to queries at "now" only a moment later.
            let nanos = (omnigate_drivers::ts::now_millis() - 60_000) * 1_000_000;
            let sample = format!("t,id={id} id={id} {nanos}");
            exec(&mut gw.client, in_tx(&tx, "ts", &sample, vec![])).await;
            let committed = commit_tx(&mut gw.client, &tx).await;
            gw.gateway.failpoints().set(point, None);
            let recovered = gw.gateway.recover_transactions().await;
            let found = where_is(&mut gw, id, live).await;
            let (all, none) = (found.iter().all(|f| *f), found.iter().all(|f| !f));
            report.push(format!(
                "{action:?} at {point}: commit {:?}, {recovered:?}, found {found:?}",
                committed.as_ref().map_err(|s| s.code())
            ));
            assert!(
                all || none,
                "partial after {action:?} at {point}: {found:?} ({committed:?})"
            );
            // Stopped or failed before the deciding engine committed:
            // nothing anywhere. From its commit on ("decided": committed,
            // its reply lost), everything: what is left, recovery finishes.
            let decided = step >= POINTS.iter().position(|p| *p == "decided").unwrap();
            assert_eq!(all, decided, "{action:?} at {point}: {found:?}");
            let prepared = exec(
                &mut gw.client,
                sql(
                    "main-db",
                    None,
                    "SELECT count(*) FROM pg_prepared_xacts",
                    vec![],
                ),
            )
            .await;
            assert_eq!(
                scalar(&prepared),
                Some(Kind::Int(0)),
                "{action:?} at {point}: left prepared"
            );
            if decided {
                assert!(
                    committed.is_ok() || action == Action::Stop || *point == "decided",
                    "{action:?} at {point}: {committed:?}"
                );
            } else {
                assert!(
                    committed.is_err(),
                    "{action:?} at {point}: reported committed"
                );
            }
        }
    }
    println!("{}", report.join("\n"));
}
