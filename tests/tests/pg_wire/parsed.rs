//! A statement's `Parse` sent again (every call of a driver's unnamed or
//! per-call statement) takes the description the session made of it the
//! first time, until the schema changes: through the gateway (its schema
//! epoch) or outside it (a result whose columns are not the ones
//! described).

use std::net::SocketAddr;

use omnigate::config::PostgresFrontendConfig;
use omnigate_tests::TestGateway;
use omnigate_tests::postgres::PgServer;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// The type of the first column `sql` returns, and its first row's value.
async fn first(client: &Client, sql: &str) -> (Type, i64) {
    let rows = client
        .query(sql, &[&0_i32])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let row = rows.first().expect("a row");
    let ty = row.columns()[0].type_().clone();
    let value = match ty {
        Type::INT4 => i64::from(row.get::<_, i32>(0)),
        _ => row.get::<_, i64>(0),
    };
    (ty, value)
}

async fn client(addr: SocketAddr) -> Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=any dbname=main-db connect_timeout=5",
            addr.ip(),
            addr.port()
        ),
        NoTls,
    )
    .await
    .expect("the front end accepts a client");
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_statement_parsed_again_is_described_again_once_its_table_changed() {
    let pg = PgServer::start();
    // One pooled connection: describing and running share its plans.
    let mut config = pg.gateway_config_with_pool(1);
    config.frontends.postgres = Some(PostgresFrontendConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))));
    let gw = TestGateway::with_config(config).await;
    let wire = client(gw.handle.postgres_addr().expect("a listener")).await;
    let (direct, connection) = tokio_postgres::connect(&pg.url("postgres"), NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    direct
        .batch_execute("CREATE TABLE parsed_t (a int4); INSERT INTO parsed_t VALUES (5)")
        .await
        .unwrap();
    // tokio-postgres parses a statement for each call, under a new name.
    let read = "SELECT a FROM parsed_t WHERE a > $1::int4";
    for _ in 0..3 {
        assert_eq!(first(&wire, read).await, (Type::INT4, 5));
    }
    // A schema change through the gateway: the next Parse asks the engine.
    wire.batch_execute("ALTER TABLE parsed_t ALTER a TYPE int8")
        .await
        .unwrap();
    assert_eq!(first(&wire, read).await, (Type::INT8, 5));
    // One outside it: the run after it still answers as described (its
    // cells converted), and the next Parse asks the engine again.
    direct
        .batch_execute("ALTER TABLE parsed_t ALTER a TYPE int4")
        .await
        .unwrap();
    assert_eq!(first(&wire, read).await, (Type::INT8, 5));
    assert_eq!(first(&wire, read).await, (Type::INT4, 5));
    assert_eq!(first(&wire, read).await, (Type::INT4, 5));
    // A schema change inside a transaction block through the gateway.
    wire.batch_execute("BEGIN; ALTER TABLE parsed_t ALTER a TYPE int8; COMMIT")
        .await
        .unwrap();
    assert_eq!(first(&wire, read).await, (Type::INT8, 5));
}

#[tokio::test]
async fn a_statement_whose_parameter_type_changed_is_described_again_after_it_fails() {
    let pg = PgServer::start();
    let mut config = pg.gateway_config_with_pool(1);
    config.frontends.postgres = Some(PostgresFrontendConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))));
    let gw = TestGateway::with_config(config).await;
    let wire = client(gw.handle.postgres_addr().expect("a listener")).await;
    let (direct, connection) = tokio_postgres::connect(&pg.url("postgres"), NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    direct
        .batch_execute("CREATE TABLE parsed_p (b int4); INSERT INTO parsed_p VALUES (5)")
        .await
        .unwrap();
    let read = "SELECT count(*) FROM parsed_p WHERE b = $1";
    for _ in 0..3 {
        let row = wire.query_one(read, &[&5_i32]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 1);
    }
    // The column becomes text outside the gateway: the statement as it
    // was described (an int4 parameter) fails once, on the engine...
    direct
        .batch_execute("ALTER TABLE parsed_p ALTER b TYPE text")
        .await
        .unwrap();
    let err = wire.query_one(read, &[&5_i32]).await.unwrap_err();
    assert_eq!(crate::sqlstate(&err), "42883", "{err:?}");
    // ...and is described again: its parameter is text now.
    let row = wire.query_one(read, &[&"5"]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}
