//! The postgres engine against a real PostgreSQL server.
#![allow(clippy::unwrap_used)]

use omnigate_drivers::conformance::sql;
use omnigate_drivers::postgres::{PostgresConfig, PostgresDriver};
use omnigate_tests::postgres::PgServer;

async fn engine(server: &PgServer) -> PostgresDriver {
    let config = PostgresConfig {
        url: server.url("postgres"),
        ..PostgresConfig::default()
    };
    PostgresDriver::connect("pg", config).await.unwrap()
}

#[tokio::test]
async fn passes_the_sql_conformance_suite() {
    let server = PgServer::start();
    sql::run_all(&engine(&server).await).await;
}
