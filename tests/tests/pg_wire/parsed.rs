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

/// A gateway on `pg` with one pooled connection (describing and running
/// share its plans) and the PostgreSQL-wire listener: the gateway, a
/// client of the listener and one straight to PostgreSQL.
async fn clients(pg: &PgServer) -> (TestGateway, Client, Client) {
    let mut config = pg.gateway_config_with_pool(1);
    config.frontends.postgres = Some(PostgresFrontendConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))));
    let gw = TestGateway::with_config(config).await;
    let addr = gw.handle.postgres_addr().expect("a listener");
    let url = format!(
        "host={} port={} user=any dbname=main-db connect_timeout=5",
        addr.ip(),
        addr.port()
    );
    let mut both = Vec::new();
    for url in [url, pg.url("postgres")] {
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        tokio::spawn(connection);
        both.push(client);
    }
    let direct = both.pop().expect("two clients");
    let wire = both.pop().expect("two clients");
    (gw, wire, direct)
}

#[tokio::test]
async fn a_statement_parsed_again_is_described_again_once_its_table_changed() {
    let pg = PgServer::start();
    let (_gw, wire, direct) = clients(&pg).await;
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
async fn a_statement_whose_parameter_type_changed_outside_is_prepared_and_described_anew() {
    let pg = PgServer::start();
    let (_gw, wire, direct) = clients(&pg).await;
    direct
        .batch_execute("CREATE TABLE parsed_p (b int4); INSERT INTO parsed_p VALUES (5)")
        .await
        .unwrap();
    let read = "SELECT count(*) FROM parsed_p WHERE b = $1";
    for _ in 0..3 {
        let row = wire.query_one(read, &[&5_i32]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 1);
    }
    // The column becomes text outside the gateway. The statement as it
    // was described (an int4 parameter) fails on the engine as prepared
    // before, is prepared anew and runs ('5' compared with the text)...
    direct
        .batch_execute("ALTER TABLE parsed_p ALTER b TYPE text")
        .await
        .unwrap();
    let row = wire.query_one(read, &[&5_i32]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    // ...and the next Parse is described anew: its parameter is text.
    let row = wire.query_one(read, &[&"x"]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let row = wire.query_one(read, &[&"5"]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn a_statement_that_fails_on_its_own_is_never_run_twice() {
    let pg = PgServer::start();
    let (_gw, wire, direct) = clients(&pg).await;
    // A sequence's step is not undone by the failure after it.
    direct
        .batch_execute(
            "CREATE SEQUENCE parsed_s; \
             CREATE FUNCTION parsed_f(x int4) RETURNS int4 AS $$ \
             BEGIN PERFORM nextval('parsed_s'); EXECUTE 'SELECT * FROM parsed_nosuch'; \
             RETURN x; END $$ LANGUAGE plpgsql",
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let err = wire
            .query_one("SELECT parsed_f($1)", &[&1_i32])
            .await
            .unwrap_err();
        assert_eq!(crate::sqlstate(&err), "42P01", "{err:?}");
    }
    let steps: i64 = direct
        .query_one("SELECT last_value FROM parsed_s", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(steps, 3, "each call ran once");
}
