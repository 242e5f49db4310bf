//! The PostgreSQL-wire front end against a real PostgreSQL, Redis and the
//! embedded SQLite: a PostgreSQL driver (tokio-postgres) and psql log in
//! with a principal's token, run statements, and commit or roll back a
//! transaction that spans PostgreSQL and Redis (the Redis part over gRPC,
//! joined by the transaction's id); grants and read-only hold over the
//! wire; a client gone mid-transaction rolls it back.

#![allow(clippy::unwrap_used)]

mod cancel;
mod clients;
mod malformed;
mod native;
mod parsed;
mod rounds;
mod security;
mod tx;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use omnigate::config::PostgresFrontendConfig;
use omnigate::security::tokens;
use omnigate_tests::TestGateway;
use omnigate_tests::auth::{config, principal};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A principal whose token also logs in over the PostgreSQL wire.
pub(crate) fn wire_principal(token: &str, read_only: bool) -> omnigate::config::PrincipalConfig {
    omnigate::config::PrincipalConfig {
        scram_sha256: Some(tokens::scram_verifier(token)),
        read_only,
        ..principal(token)
    }
}

/// PostgreSQL (`main-db`), Redis (`cache`) and SQLite (`main`) behind the
/// gRPC and PostgreSQL-wire listeners, with principals `app` and
/// `reader` (read-only).
pub(crate) async fn gateway(pg: &PgServer, redis: &RedisServer) -> (TestGateway, SocketAddr) {
    gateway_idle_after(pg, redis, None).await
}

/// [`gateway`], its PostgreSQL-wire clients closed after `idle` of silence
/// (the default without).
pub(crate) async fn gateway_idle_after(
    pg: &PgServer,
    redis: &RedisServer,
    idle: Option<std::time::Duration>,
) -> (TestGateway, SocketAddr) {
    let principals = BTreeMap::from([
        ("app".to_owned(), wire_principal("app-token", false)),
        ("reader".to_owned(), wire_principal("reader-token", true)),
    ]);
    let mut config = config(pg, redis, principals);
    let mut frontend = PostgresFrontendConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    if let Some(idle) = idle {
        frontend.idle_timeout = idle;
    }
    config.frontends.postgres = Some(frontend);
    config.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let gw = TestGateway::with_config(config).await;
    let addr = gw
        .handle
        .postgres_addr()
        .expect("the PostgreSQL front end listens");
    (gw, addr)
}

/// PostgreSQL, Redis and SQLite behind a PostgreSQL-wire listener that
/// offers TLS (`[security.tls]`, certificates made in `dir`), with
/// `principals`; the certificates (`ca` is what clients trust).
pub(crate) async fn tls_gateway(
    pg: &PgServer,
    redis: &RedisServer,
    principals: BTreeMap<String, omnigate::config::PrincipalConfig>,
    dir: &std::path::Path,
) -> (TestGateway, SocketAddr, omnigate_tests::certs::Certs) {
    use omnigate::config::{ClientName, TlsConfig};
    let certs = omnigate_tests::certs::make(dir, None);
    let mut config = config(pg, redis, principals);
    config.security.tls = Some(TlsConfig {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        client_ca: None,
        client_name: ClientName::SubjectCn,
    });
    config.frontends.postgres = Some(PostgresFrontendConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))));
    let gw = TestGateway::with_config(config).await;
    let addr = gw.handle.postgres_addr().unwrap();
    (gw, addr, certs)
}

pub(crate) async fn connect(addr: SocketAddr, user: &str, password: &str, db: &str) -> Client {
    try_connect(addr, user, password, db)
        .await
        .unwrap_or_else(|e| panic!("{user} connects to {db}: {e}"))
}

pub(crate) async fn try_connect(
    addr: SocketAddr,
    user: &str,
    password: &str,
    db: &str,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={user} password={password} dbname={db} connect_timeout=5",
            addr.ip(),
            addr.port()
        ),
        NoTls,
    )
    .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The rows of a simple query, as text.
pub(crate) async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

pub(crate) fn sqlstate(err: &tokio_postgres::Error) -> String {
    err.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {err}"))
}

#[tokio::test]
async fn a_postgresql_driver_runs_statements_on_postgres_and_sqlite() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    for db in ["main-db", "main"] {
        let client = connect(addr, "app", "app-token", db).await;
        let messages = client
            .simple_query(
                "CREATE TABLE wire_t (id INTEGER PRIMARY KEY, name TEXT); \
                 INSERT INTO wire_t VALUES (1, 'a;b'), (2, NULL)",
            )
            .await
            .unwrap();
        let tags: Vec<u64> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(tags, [0, 2], "{db}: CREATE TABLE, then INSERT 0 2");
        assert_eq!(
            rows(&client, "SELECT id, name FROM wire_t ORDER BY id").await,
            [
                vec![Some("1".into()), Some("a;b".into())],
                vec![Some("2".into()), None]
            ],
            "{db}"
        );
        let err = client.simple_query("SELEC 1").await.unwrap_err();
        assert_eq!(sqlstate(&err), "42601", "{db}: {err}");
    }
    // The extended protocol, binary both ways (tokio-postgres' own way):
    // PostgreSQL's types, described by the engine.
    let client = connect(addr, "app", "app-token", "main-db").await;
    let row = client
        .query_one("SELECT $1::int4 + 1 AS n, $2::text AS t", &[&41i32, &"x"])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i32>("n"), row.get::<_, String>("t")),
        (42, "x".into())
    );
    let statement = client
        .prepare("SELECT name FROM wire_t WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(statement.params(), [tokio_postgres::types::Type::INT4]);
    let found = client.query(&statement, &[&1i32]).await.unwrap();
    assert_eq!(found[0].get::<_, Option<String>>(0).as_deref(), Some("a;b"));
    let inserted = client
        .execute("INSERT INTO wire_t VALUES ($1, $2)", &[&3i32, &"c"])
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    // SQLite types no parameters: the client sends them as text.
    let sqlite = connect(addr, "app", "app-token", "main").await;
    let rows = sqlite
        .query("SELECT id, name FROM wire_t WHERE id = $1", &[&"1"])
        .await
        .unwrap();
    assert_eq!(
        (rows[0].get::<_, i64>(0), rows[0].get::<_, String>(1)),
        (1, "a;b".into())
    );
    let err = sqlite
        .query("SELECT nope FROM wire_t", &[])
        .await
        .unwrap_err();
    assert!(err.code().is_some(), "a clear error at Parse: {err}");
}

#[tokio::test]
async fn several_statements_in_one_query_are_one_implicit_transaction() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    for db in ["main-db", "main"] {
        let client = connect(addr, "app", "app-token", db).await;
        client
            .batch_execute("CREATE TABLE implicit_t (n INTEGER NOT NULL)")
            .await
            .unwrap();
        // The second fails: the first is rolled back with it, as
        // PostgreSQL runs a multi-statement query (before: kept).
        let failed = client
            .batch_execute(
                "INSERT INTO implicit_t VALUES (1); INSERT INTO implicit_t VALUES (NULL)",
            )
            .await
            .unwrap_err();
        // 23502 from PostgreSQL; class 23 from SQLite, which has no codes.
        assert!(sqlstate(&failed).starts_with("23"), "{db}: {failed:?}");
        assert_eq!(
            rows(&client, "SELECT count(*) FROM implicit_t").await,
            [vec![Some("0".into())]],
            "{db}: all or none"
        );
        // All run: all kept; and the session is idle after it.
        client
            .batch_execute("INSERT INTO implicit_t VALUES (2); INSERT INTO implicit_t VALUES (3)")
            .await
            .unwrap();
        assert_eq!(
            rows(&client, "SELECT count(*) FROM implicit_t").await,
            [vec![Some("2".into())]],
            "{db}"
        );
        // An explicit block in the string is the client's: BEGIN .. COMMIT
        // is not wrapped again.
        client
            .batch_execute("BEGIN; INSERT INTO implicit_t VALUES (4); COMMIT")
            .await
            .unwrap();
        assert_eq!(
            rows(&client, "SELECT count(*) FROM implicit_t").await,
            [vec![Some("3".into())]],
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_statement_prepared_in_a_block_sees_what_the_block_made() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    for db in ["main-db", "main"] {
        let mut client = connect(addr, "app", "app-token", db).await;
        // Parse inside the block is described on the block's connection:
        // the table the block created is there (on a pooled connection it
        // was not, and the prepare failed).
        let tx = client.transaction().await.unwrap();
        tx.batch_execute("CREATE TABLE made_here (id INTEGER PRIMARY KEY, name TEXT)")
            .await
            .unwrap();
        let insert = tx
            .prepare("INSERT INTO made_here VALUES ($1, $2)")
            .await
            .unwrap_or_else(|e| panic!("{db}: {e}"));
        // PostgreSQL types the parameters; SQLite types none, so the
        // client sends them as text.
        let (id, name): (&(dyn tokio_postgres::types::ToSql + Sync), _) = if db == "main" {
            (&"1", &"one")
        } else {
            (&1i32, &"one")
        };
        tx.execute(&insert, &[id, name]).await.unwrap();
        let read = tx
            .prepare("SELECT name FROM made_here WHERE id = $1")
            .await
            .unwrap();
        let row = tx.query_one(&read, &[id]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "one", "{db}");
        tx.commit().await.unwrap();
        assert_eq!(
            rows(&client, "SELECT id, name FROM made_here").await,
            [vec![Some("1".into()), Some("one".into())]],
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_session_keeps_a_bounded_number_of_prepared_statements() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let client = connect(addr, "app", "app-token", "main").await;
    // tokio-postgres names each prepared statement and closes it when
    // dropped: kept ones fill the session's room.
    let mut kept = Vec::new();
    let refused = loop {
        match client.prepare("SELECT 1").await {
            Ok(statement) => kept.push(statement),
            Err(e) => break e,
        }
        assert!(kept.len() <= 10_000, "no bound");
    };
    assert_eq!(kept.len(), 10_000);
    assert_eq!(sqlstate(&refused), "53400", "{refused:?}");
    // Closing one makes room for one.
    drop(kept.pop());
    let again = client.prepare("SELECT 2").await.unwrap();
    assert_eq!(client.query(&again, &[]).await.unwrap().len(), 1);
    // DEALLOCATE ALL lets go of every one.
    client.batch_execute("DEALLOCATE ALL").await.unwrap();
    std::mem::forget(kept);
    client.prepare("SELECT 3").await.unwrap();

    // Named portals likewise (tokio-postgres names each one it binds).
    let mut client = connect(addr, "app", "app-token", "main").await;
    let tx = client.transaction().await.unwrap();
    let statement = tx.prepare("SELECT 1").await.unwrap();
    let mut portals = Vec::new();
    let refused = loop {
        match tx.bind(&statement, &[]).await {
            Ok(portal) => portals.push(portal),
            Err(e) => break e,
        }
        assert!(portals.len() <= 10_000, "no bound");
    };
    assert_eq!(portals.len(), 10_000);
    assert_eq!(sqlstate(&refused), "53400", "{refused:?}");
}

#[tokio::test]
async fn logins_grants_and_read_only_hold_over_the_wire() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let wrong = try_connect(addr, "app", "not-the-token", "main-db")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&wrong), "28P01", "{wrong}");
    let nobody = try_connect(addr, "nobody", "app-token", "main-db")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&nobody), "28P01", "{nobody}");
    let unknown = try_connect(addr, "app", "app-token", "cache")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&unknown), "3D000", "{unknown}");

    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE ro_t (id INT)")
        .await
        .unwrap();
    let reader = connect(addr, "reader", "reader-token", "main-db").await;
    assert_eq!(
        rows(&reader, "SELECT count(*) FROM ro_t").await,
        [vec![Some("0".into())]]
    );
    for write in [
        "INSERT INTO ro_t VALUES (1)",
        "BEGIN; SET TRANSACTION READ WRITE; INSERT INTO ro_t VALUES (1); COMMIT",
    ] {
        let err = reader.simple_query(write).await.unwrap_err();
        let code = sqlstate(&err);
        assert!(code == "42501" || code == "25006", "{write}: {code} {err}");
        reader.simple_query("ROLLBACK").await.unwrap();
    }
    assert_eq!(
        rows(&app, "SELECT count(*) FROM ro_t").await,
        [vec![Some("0".into())]]
    );
    // A session setting would leak to the pooled connection's next user.
    let err = app
        .simple_query("SET search_path = evil")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000", "{err}");
}
