//! The gateway's own tables on PostgreSQL (transaction markers and the
//! shared log) live in a schema of their own (`gateway_schema`, default
//! `omnigate`), made with no privilege the gateway does not need, out of
//! the application's `public` and out of `describe`; callers cannot name
//! them; and an upgrade moves an earlier version's tables out of `public`
//! with the decisions they hold.
#![allow(clippy::unwrap_used)]

use omnigate::config::{Config, DriverConfig, EngineConfig};
use omnigate::tx::log::{PartRecord, encode_args};
use omnigate_drivers::postgres::{PostgresConfig, PostgresDriver};
use omnigate_drivers::{Dialect, Statement, StorageDriverExt, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{
    TestGateway, assert_status, begin_tx, commit_tx, exec, fail, in_tx, request, scalar,
};
use pb::value::Kind;

/// An administrator's session on database `db`.
async fn admin(pg: &PgServer, db: &str) -> PostgresDriver {
    let config = PostgresConfig {
        url: Some(pg.url(db)),
        ..PostgresConfig::default()
    };
    PostgresDriver::connect("admin", config).await.unwrap()
}

async fn run(d: &PostgresDriver, statements: &[&str]) {
    for text in statements {
        d.run(Dialect::Sql, Statement::new(*text))
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

/// `main-db` and `other-db` (databases `postgres` and `other`, logged in
/// as `user`; the log in `main-db`) and Redis `cache`.
fn config(pg: &PgServer, redis: &RedisServer, user: &str) -> Config {
    let mut config = Config::default();
    config.engines.clear();
    for (name, db) in [("main-db", "postgres"), ("other-db", "other")] {
        let mut engine = PostgresConfig {
            url: Some(format!("postgres://{user}@127.0.0.1:{}/{db}", pg.port())),
            ..PostgresConfig::default()
        };
        engine.pool.max_connections = 4;
        config.engines.insert(
            name.into(),
            EngineConfig::new(DriverConfig::Postgres(engine)),
        );
    }
    redis.add_to(&mut config);
    config.transactions.log = Some("main-db".into());
    config
}

/// A transaction writing `id` on both databases and Redis, committed.
async fn commit_everywhere(gw: &mut TestGateway, id: i64) {
    let tx = begin_tx(&mut gw.client, None).await;
    for target in ["main-db", "other-db"] {
        let mut insert = in_tx(&tx, "sql", &format!("INSERT INTO t VALUES ({id})"), vec![]);
        insert.target = target.into();
        exec(&mut gw.client, insert).await;
    }
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", &format!("SET k{id} v"), vec![]),
    )
    .await;
    let mut engines = commit_tx(&mut gw.client, &tx)
        .await
        .unwrap_or_else(|e| panic!("commit {id}: {e:?}"));
    engines.sort();
    assert_eq!(engines, ["cache", "main-db", "other-db"]);
}

async fn tables_in(d: &PostgresDriver, schema: &str) -> Value {
    d.query_scalar(
        Dialect::Sql,
        Statement::new(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 \
             AND tablename LIKE 'omnigate\\_tx\\_%'",
        )
        .bind(schema),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_least_privilege_role_commits_across_engines_with_the_gateway_s_tables_apart() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let main = admin(&pg, "postgres").await;
    run(&main, &["CREATE DATABASE other"]).await;
    let other = admin(&pg, "other").await;
    // `app` may use its table and the gateway's schema; PostgreSQL 15
    // gives it no CREATE on `public` or on the database.
    run(&main, &["CREATE ROLE app LOGIN", "CREATE ROLE app2 LOGIN"]).await;
    for d in [&main, &other] {
        run(
            d,
            &[
                "CREATE TABLE t (id int PRIMARY KEY)",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON t TO app, app2",
                "CREATE SCHEMA _omnigate",
                "GRANT USAGE, CREATE ON SCHEMA _omnigate TO app",
            ],
        )
        .await;
    }
    let mut gw = TestGateway::with_config(config(&pg, &redis, "app")).await;
    commit_everywhere(&mut gw, 1).await;
    for d in [&main, &other] {
        let rows = d
            .query_scalar(Dialect::Sql, Statement::new("SELECT count(*) FROM t"))
            .await
            .unwrap();
        assert_eq!(rows, Value::Int(1));
        assert_eq!(tables_in(d, "public").await, Value::Int(0), "public");
    }
    assert_eq!(
        tables_in(&main, "_omnigate").await,
        Value::Int(4),
        "the log's three tables and the markers"
    );
    assert_eq!(
        tables_in(&other, "_omnigate").await,
        Value::Int(1),
        "the markers"
    );

    // Callers neither read nor write them, whatever the spelling...
    for text in [
        "SELECT * FROM _omnigate.omnigate_tx_markers",
        "DELETE FROM \"_omnigate\".omnigate_tx_log",
        "select 1 from _OMNIGATE.omnigate_tx_meta",
        "DO $$ BEGIN EXECUTE 'DELETE FROM _omnigate.omnigate_tx_markers'; END $$",
    ] {
        let mut statement = request("sql", text, vec![]);
        statement.target = "main-db".into();
        let refused = fail(&mut gw.client, statement).await;
        assert_status(
            &refused,
            tonic::Code::PermissionDenied,
            "may not name the schema _omnigate on engine main-db",
        );
    }
    // ...and `describe` shows the application's tables only.
    let described = gw
        .client
        .describe(pb::DescribeRequest {
            target: "main-db".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let schemas: Vec<&str> = described
        .objects
        .iter()
        .map(|o| o.schema.as_str())
        .collect();
    assert!(schemas.contains(&"public"), "{schemas:?}");
    assert!(!schemas.contains(&"_omnigate"), "{schemas:?}");
    drop(gw);

    // A role with DML only, on tables an administrator made, commits too:
    // nothing is created, so nothing needs CREATE.
    for d in [&main, &other] {
        run(
            d,
            &[
                "GRANT USAGE ON SCHEMA _omnigate TO app2",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA _omnigate TO app2",
            ],
        )
        .await;
    }
    let mut gw = TestGateway::with_config(config(&pg, &redis, "app2")).await;
    commit_everywhere(&mut gw, 2).await;
    let mut read = request("sql", "SELECT count(*) FROM t", vec![]);
    read.target = "other-db".into();
    assert_eq!(
        scalar(&exec(&mut gw.client, read).await),
        Some(Kind::Int(2))
    );
}

#[tokio::test]
async fn an_upgrade_moves_the_tables_out_of_public_and_finishes_what_they_decided() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let main = pg.engine().await;
    // What an earlier version left: its markers in `public`, one of them
    // a decision whose Redis part a crash kept from being applied.
    let record = serde_json::to_string(&vec![PartRecord::Buffered {
        engine: "cache".into(),
        redo: vec![encode_args(&[
            bytes::Bytes::from_static(b"SET"),
            bytes::Bytes::from_static(b"upgraded"),
            bytes::Bytes::from_static(b"yes"),
        ])],
    }])
    .unwrap();
    run(
        &main,
        &["CREATE TABLE omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)"],
    )
    .await;
    main.run(
        Dialect::Sql,
        Statement::new("INSERT INTO omnigate_tx_markers VALUES ('tx-old', $1)").bind(record),
    )
    .await
    .unwrap();
    let gw = TestGateway::with_config(pg.gateway_config_with(&redis)).await;
    // Startup recovery read the moved table: the decision was finished.
    let redis_driver = redis.driver().await;
    let mut value = Value::Null;
    for _ in 0..100 {
        value = redis_driver
            .query_scalar(Dialect::Redis, Statement::new("GET upgraded"))
            .await
            .unwrap();
        if value != Value::Null {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(value, Value::from("yes"), "the old decision was finished");
    assert_eq!(tables_in(&main, "public").await, Value::Int(0));
    let moved = main
        .query_scalar(
            Dialect::Sql,
            Statement::new(
                "SELECT record FROM _omnigate.omnigate_tx_markers WHERE tx_id = 'tx-old'",
            ),
        )
        .await
        .unwrap();
    assert!(
        matches!(&moved, Value::String(r) if r.starts_with("done:")),
        "{moved:?}"
    );
    // A view stands where the table was: a replica still running the
    // earlier version reads and writes the moved rows through it.
    let through_view = main
        .query_scalar(
            Dialect::Sql,
            Statement::new(
                "SELECT count(*) FROM public.omnigate_tx_markers WHERE tx_id = 'tx-old'",
            ),
        )
        .await
        .unwrap();
    assert_eq!(through_view, Value::Int(1));
    drop(gw);
}

#[tokio::test]
async fn an_upgrade_finds_tables_where_the_role_s_search_path_put_them_and_never_ignores_rows() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let admin = admin(&pg, "postgres").await;
    // The earlier README's layout: schema `omnigate` first on the role's
    // search path, the log and markers made there by unqualified names.
    run(
        &admin,
        &[
            "CREATE ROLE gw LOGIN",
            "CREATE SCHEMA omnigate AUTHORIZATION gw",
            "GRANT CREATE ON DATABASE postgres TO gw",
            "ALTER ROLE gw SET search_path = omnigate, public",
            "CREATE TABLE omnigate.omnigate_tx_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO omnigate.omnigate_tx_meta VALUES ('log_id', 'earlier')",
            "ALTER TABLE omnigate.omnigate_tx_meta OWNER TO gw",
            // Another gateway's schema in the same database: not touched.
            "CREATE SCHEMA other_gw",
            "CREATE TABLE other_gw.omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)",
        ],
    )
    .await;
    let mut config = Config::default();
    config.engines.clear();
    let mut engine = PostgresConfig {
        url: Some(format!("postgres://gw@127.0.0.1:{}/postgres", pg.port())),
        ..PostgresConfig::default()
    };
    engine.pool.max_connections = 4;
    config.engines.insert(
        "main-db".into(),
        EngineConfig::new(DriverConfig::Postgres(engine)),
    );
    redis.add_to(&mut config);
    config.transactions.log = Some("main-db".into());
    let gw = TestGateway::with_config(config.clone()).await;
    // The log kept its identity (the prefix of its prepared transactions'
    // ids): the table was moved, not made anew.
    let id = admin
        .query_scalar(
            Dialect::Sql,
            Statement::new("SELECT value FROM _omnigate.omnigate_tx_meta WHERE key = 'log_id'"),
        )
        .await
        .unwrap();
    assert_eq!(id, Value::from("earlier"));
    let untouched = admin
        .query_scalar(
            Dialect::Sql,
            Statement::new("SELECT count(*) FROM other_gw.omnigate_tx_markers"),
        )
        .await
        .unwrap();
    assert_eq!(untouched, Value::Int(0));
    drop(gw);

    // An earlier table that holds rows beside the gateway's is never
    // ignored: the engine decides nothing until it is dealt with, saying
    // what to do.
    run(
        &admin,
        &[
            "CREATE TABLE omnigate.omnigate_tx_markers (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)",
            "INSERT INTO omnigate.omnigate_tx_markers VALUES ('stray', '[]')",
            "ALTER TABLE omnigate.omnigate_tx_markers OWNER TO gw",
        ],
    )
    .await;
    let mut gw = TestGateway::with_config(config).await;
    let tx = begin_tx(&mut gw.client, None).await;
    let mut select = in_tx(&tx, "sql", "SELECT 1", vec![]);
    select.target = "main-db".into();
    exec(&mut gw.client, select).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k v", vec![])).await;
    let refused = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("holds transaction records"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn callers_cannot_name_marker_keys_or_marker_nodes_in_or_out_of_a_transaction() {
    use omnigate_drivers::falkordb::FalkorConfig;
    use omnigate_drivers::memory::MemoryConfig;
    let (redis, graph) = (
        RedisServer::start(),
        omnigate_tests::falkordb::FalkorServer::start(),
    );
    let mut config = Config::default();
    config.engines.clear();
    redis.add_to(&mut config);
    config.engines.insert(
        "mem".into(),
        EngineConfig::new(DriverConfig::Memory(MemoryConfig::default())),
    );
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(FalkorConfig {
            url: graph.url(),
            graph: "g".into(),
            ..FalkorConfig::default()
        })),
    );
    let mut gw = TestGateway::with_config(config).await;
    let on = |target: &str, dialect: &str, text: &str, params: Vec<pb::Value>| {
        let mut r = request(dialect, text, params);
        r.target = target.into();
        r
    };
    let forged = "omnigate:tx:forged";
    let tx = begin_tx(&mut gw.client, None).await;
    let mut attempts = vec![
        on("cache", "redis", "SET omnigate:tx:forged 1", vec![]),
        on("cache", "redis", "DEL $1", vec![omnigate_tests::s(forged)]),
        on("cache", "redis", "RENAME k \"omnigate:tx:forged\"", vec![]),
        on("mem", "redis", "SET omnigate:tx:forged 1", vec![]),
        on(
            "graph",
            "cypher",
            "MATCH (m:OmnigateTxMarker) DETACH DELETE m",
            vec![],
        ),
        on(
            "graph",
            "cypher",
            "CREATE (:`OmnigateTxMarker` {tx_id: 'x'})",
            vec![],
        ),
    ];
    // The same inside a transaction, where writes are buffered.
    let mut inside = attempts.clone();
    for r in &mut inside {
        r.tx_id = tx.clone();
    }
    attempts.extend(inside);
    for attempt in attempts {
        let text = attempt.statement.clone();
        let refused = fail(&mut gw.client, attempt).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{text}");
        assert!(
            refused.message().contains("the marker keys omnigate:tx:*")
                || refused
                    .message()
                    .contains("the marker label OmnigateTxMarker"),
            "{text}: {refused:?}"
        );
    }
    // The transaction is still usable, and nothing was written.
    let mut plain = on("cache", "redis", "SET plain 1", vec![]);
    plain.tx_id = tx.clone();
    exec(&mut gw.client, plain).await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    let d = redis.driver().await;
    let exists = d
        .query_scalar(
            Dialect::Redis,
            Statement::new("EXISTS omnigate:tx:forged plain"),
        )
        .await
        .unwrap();
    assert_eq!(exists, Value::Int(1), "only the plain key");
}
