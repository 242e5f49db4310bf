//! The PostgreSQL-wire front end against a real PostgreSQL, Redis and the
//! embedded SQLite: a PostgreSQL driver (tokio-postgres) and psql log in
//! with a principal's token, run statements, and commit or roll back a
//! transaction that spans PostgreSQL and Redis (the Redis part over gRPC,
//! joined by the transaction's id); grants and read-only hold over the
//! wire; a client gone mid-transaction rolls it back.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use omnigate::config::PostgresFrontendConfig;
use omnigate::security::tokens;
use omnigate_tests::TestGateway;
use omnigate_tests::auth::{config, on, principal, signed};
use omnigate_tests::postgres::{PgServer, client_bin};
use omnigate_tests::redis::RedisServer;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A principal whose token also logs in over the PostgreSQL wire.
fn wire_principal(token: &str, read_only: bool) -> omnigate::config::PrincipalConfig {
    omnigate::config::PrincipalConfig {
        scram_sha256: Some(tokens::scram_verifier(token)),
        read_only,
        ..principal(token)
    }
}

/// PostgreSQL (`main-db`), Redis (`cache`) and SQLite (`main`) behind the
/// gRPC and PostgreSQL-wire listeners, with principals `app` and
/// `reader` (read-only).
async fn gateway(pg: &PgServer, redis: &RedisServer) -> (TestGateway, SocketAddr) {
    let principals = BTreeMap::from([
        ("app".to_owned(), wire_principal("app-token", false)),
        ("reader".to_owned(), wire_principal("reader-token", true)),
    ]);
    let mut config = config(pg, redis, principals);
    config.frontends.postgres = Some(PostgresFrontendConfig::new(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))));
    let gw = TestGateway::with_config(config).await;
    let addr = gw
        .handle
        .postgres_addr()
        .expect("the PostgreSQL front end listens");
    (gw, addr)
}

async fn connect(addr: SocketAddr, user: &str, password: &str, db: &str) -> Client {
    try_connect(addr, user, password, db)
        .await
        .unwrap_or_else(|e| panic!("{user} connects to {db}: {e}"))
}

async fn try_connect(
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
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
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

fn sqlstate(err: &tokio_postgres::Error) -> String {
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

#[tokio::test]
async fn a_transaction_spans_postgres_over_the_wire_and_redis_over_grpc() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (mut gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE orders (id INT PRIMARY KEY)")
        .await
        .unwrap();

    for (commit, id) in [(true, 1), (false, 2)] {
        app.simple_query("BEGIN").await.unwrap();
        app.simple_query(&format!("INSERT INTO orders VALUES ({id})"))
            .await
            .unwrap();
        let tx = rows(&app, "SHOW omnigate.tx_id").await[0][0]
            .clone()
            .unwrap();
        let mut set = on("cache", "redis", &format!("SET order:{id} placed"));
        set.tx_id = tx.clone();
        gw.client.execute(signed("app-token", set)).await.unwrap();
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        app.simple_query(end).await.unwrap();

        let count = rows(
            &app,
            &format!("SELECT count(*) FROM orders WHERE id = {id}"),
        )
        .await;
        let get = on("cache", "redis", &format!("GET order:{id}"));
        let reply = gw
            .client
            .execute(signed("app-token", get))
            .await
            .unwrap()
            .into_inner();
        let value = omnigate_tests::scalar(&reply);
        if commit {
            assert_eq!(count, [vec![Some("1".into())]]);
            assert!(value.is_some_and(|v| format!("{v:?}").contains("placed")));
        } else {
            assert_eq!(count, [vec![Some("0".into())]]);
            let shown = format!("{value:?}");
            assert!(!shown.contains("placed"), "{shown}");
        }
    }

    // A wire client joins a transaction begun over gRPC; gRPC commits it.
    let begin = omnigate_proto::v1::BeginRequest::default();
    let tx = gw
        .client
        .begin(signed("app-token", begin))
        .await
        .unwrap()
        .into_inner()
        .tx_id;
    app.simple_query(&format!("SET omnigate.tx_id = '{tx}'"))
        .await
        .unwrap();
    app.simple_query("INSERT INTO orders VALUES (3)")
        .await
        .unwrap();
    let elsewhere = connect(addr, "app", "app-token", "main-db").await;
    assert_eq!(
        rows(&elsewhere, "SELECT count(*) FROM orders WHERE id = 3").await,
        [vec![Some("0".into())]],
        "not committed yet"
    );
    let commit = omnigate_proto::v1::CommitRequest { tx_id: tx.clone() };
    gw.client.commit(signed("app-token", commit)).await.unwrap();
    assert_eq!(
        rows(&elsewhere, "SELECT count(*) FROM orders WHERE id = 3").await,
        [vec![Some("1".into())]]
    );
    // The wire session learns its transaction ended when it next speaks.
    let err = app
        .simple_query("INSERT INTO orders VALUES (4)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "25P02", "{err}");
    app.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&app, "SELECT count(*) FROM orders").await,
        [vec![Some("2".into())]]
    );

    // A joiner that goes away leaves the transaction to its owner.
    let begin = omnigate_proto::v1::BeginRequest::default();
    let tx = gw
        .client
        .begin(signed("app-token", begin))
        .await
        .unwrap()
        .into_inner()
        .tx_id;
    let joiner = connect(addr, "app", "app-token", "main-db").await;
    joiner
        .simple_query(&format!("SET omnigate.tx_id = '{tx}'"))
        .await
        .unwrap();
    joiner
        .simple_query("INSERT INTO orders VALUES (5)")
        .await
        .unwrap();
    drop(joiner);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let commit = omnigate_proto::v1::CommitRequest { tx_id: tx };
    gw.client.commit(signed("app-token", commit)).await.unwrap();
    assert_eq!(
        rows(&app, "SELECT count(*) FROM orders WHERE id = 5").await,
        [vec![Some("1".into())]]
    );
}

#[tokio::test]
async fn a_client_gone_mid_transaction_rolls_it_back() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE gone (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let leaver = connect(addr, "app", "app-token", "main-db").await;
    leaver
        .simple_query("BEGIN; INSERT INTO gone VALUES (7)")
        .await
        .unwrap();
    drop(leaver);
    // Its row lock goes with it: the same key can be written, and is once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match app.simple_query("INSERT INTO gone VALUES (7)").await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the gone client's transaction still holds its row: {e}"),
        }
    }
    assert_eq!(
        rows(&app, "SELECT count(*) FROM gone").await,
        [vec![Some("1".into())]]
    );
}

#[tokio::test]
async fn psql_runs_queries_and_meta_commands() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    // psql blocks: it runs beside the runtime that serves it.
    let psql = move |db: &str, args: &[&str]| {
        std::process::Command::new(client_bin("psql"))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", &addr.ip().to_string()])
            .args(["-p", &addr.port().to_string(), "-U", "app", "-d", db])
            .args(args)
            .env("PGPASSWORD", "app-token")
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql runs")
    };
    let args = [
        "-c",
        "CREATE TABLE psql_t (id INT, note TEXT)",
        "-c",
        "INSERT INTO psql_t VALUES (1, 'x')",
        "-c",
        "SELECT * FROM psql_t",
        "-c",
        "\\dt",
    ];
    let out = tokio::task::spawn_blocking(move || psql("main-db", &args))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("INSERT 0 1"), "{stdout}");
    assert!(stdout.contains(" 1 | x"), "{stdout}");
    assert!(stdout.contains("psql_t"), "\\dt lists the table: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initialises_and_runs_select_only() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let pgbench = move |args: &[&str]| {
        std::process::Command::new(client_bin("pgbench"))
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-U", "app"])
            .args(args)
            .arg("main-db")
            .env("PGPASSWORD", "app-token")
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("pgbench runs")
    };
    // Data generated on the server (`G`): client-side generation uses COPY.
    let init = tokio::task::spawn_blocking(move || pgbench(&["-i", "-I", "dtGvp", "-s", "1"]))
        .await
        .unwrap();
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(init.status.success(), "pgbench -i: {}", said(&init));
    for mode in ["simple", "extended", "prepared"] {
        let run = tokio::task::spawn_blocking(move || {
            pgbench(&["-S", "-M", mode, "-c", "4", "-j", "2", "-t", "200"])
        })
        .await
        .unwrap();
        let out = said(&run);
        assert!(run.status.success(), "pgbench -S -M {mode}: {out}");
        assert!(
            out.contains("number of transactions actually processed: 800/800"),
            "{mode}: {out}"
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
    // The default (TPC-B-like) script: BEGIN, updates, an insert, COMMIT.
    let run = tokio::task::spawn_blocking(move || pgbench(&["-c", "2", "-t", "50"]))
        .await
        .unwrap();
    let out = said(&run);
    assert!(run.status.success(), "pgbench: {out}");
    assert!(out.contains("processed: 100/100"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_and_asyncpg_use_both_protocols_and_transactions() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let script = root.join("tests/python/pg_clients.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args([
                &addr.ip().to_string(),
                &addr.port().to_string(),
                "app",
                "app-token",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}: run ./scripts/test.sh (it installs psycopg and asyncpg into .venv)",
                    python.display()
                )
            })
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("No module named"),
        "{said}\ninstall the PyPI packages psycopg[binary] and asyncpg into .venv (./scripts/test.sh does)"
    );
    assert!(
        out.status.success() && said.trim_end().ends_with("ok"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_without_a_verifier_logs_in_over_tls_only() {
    use omnigate::config::{ClientName, TlsConfig};
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let certs = omnigate_tests::certs::make(dir.path(), None);
    let principals = BTreeMap::from([("plain".to_owned(), principal("plain-token"))]);
    let mut config = config(&pg, &redis, principals);
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
    let ca = certs.ca.clone();
    let psql = move |sslmode: &str| {
        std::process::Command::new(client_bin("psql"))
            .args(["-X", "-At", "-c", "SELECT 40 + 2"])
            .arg(format!(
                "host=localhost port={} user=plain dbname=main-db sslmode={sslmode} sslrootcert={}",
                addr.port(),
                ca.display()
            ))
            .env("PGPASSWORD", "plain-token")
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql runs")
    };
    let psql_plain = psql.clone();
    let over_tls = tokio::task::spawn_blocking(move || psql("verify-full"))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&over_tls.stderr).into_owned();
    assert!(over_tls.status.success(), "{said}");
    assert_eq!(String::from_utf8_lossy(&over_tls.stdout).trim(), "42");
    // Without TLS the token would cross in the clear: refused, as a wrong
    // password is (nothing tells a stranger which principals exist).
    let plain = tokio::task::spawn_blocking(move || psql_plain("disable"))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr).into_owned();
    assert!(!plain.status.success());
    assert!(
        said.to_lowercase()
            .contains("password authentication failed"),
        "{said}"
    );
}

/// Found by reading the front end as an attacker would: each of these got
/// past a check before the lexer followed PostgreSQL's (a carriage return
/// ends a line comment, comments nest, empty statements vanish), before
/// transaction control was refused on pooled connections, before a live
/// session re-checked its credentials, and before the extended protocol
/// kept PostgreSQL's failed-block rule.
#[tokio::test]
async fn what_an_attacker_tried_is_refused() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (mut gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE atk (id INT)").await.unwrap();

    // A read-only principal cannot lift its block's access mode behind a
    // comment the old lexer read to the end of the text.
    let reader = connect(addr, "reader", "reader-token", "main-db").await;
    reader.simple_query("BEGIN").await.unwrap();
    let lift = reader
        .simple_query("-- x\rSET TRANSACTION READ WRITE")
        .await
        .unwrap_err();
    assert!(
        matches!(sqlstate(&lift).as_str(), "25006" | "42501"),
        "{lift}"
    );
    reader.simple_query("ROLLBACK").await.unwrap();
    let write = reader
        .simple_query("-- x\rINSERT INTO atk VALUES (1)")
        .await
        .unwrap_err();
    assert!(
        matches!(sqlstate(&write).as_str(), "25006" | "42501"),
        "{write}"
    );

    // Transaction control never reaches a pooled connection outside a
    // transaction, however it is dressed (nor over gRPC).
    for hidden in ["/* /* */ */ BEGIN", "-- x\rBEGIN", ";BEGIN"] {
        let err = app.simple_query(hidden).await;
        // The session answers BEGIN itself (a gateway transaction) or the
        // engine's driver refuses it: never an engine-side block.
        if err.is_ok() {
            app.simple_query("ROLLBACK").await.unwrap();
        }
        let grpc = gw
            .client
            .execute(signed("app-token", on("main-db", "sql", hidden)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc.code(),
            tonic::Code::FailedPrecondition,
            "{hidden}: {grpc:?}"
        );
    }
    // Settings changed through pg_settings do not outlive the statement.
    app.simple_query("UPDATE pg_settings SET setting = 'evil, public' WHERE name = 'search_path'")
        .await
        .unwrap();
    for _ in 0..8 {
        let path = rows(&app, "SHOW search_path").await;
        assert!(!format!("{path:?}").contains("evil"), "{path:?}");
    }

    // Only the plain forms end a block.
    app.simple_query("BEGIN").await.unwrap();
    let chain = app.simple_query("COMMIT AND CHAIN").await.unwrap_err();
    assert_eq!(sqlstate(&chain), "0A000", "{chain}");
    app.simple_query("ROLLBACK").await.unwrap();

    // The extended protocol keeps the failed-block rule.
    app.simple_query("BEGIN").await.unwrap();
    assert!(app.query("SELECT nope FROM atk", &[]).await.is_err());
    let after = app
        .query("SELECT count(*) FROM atk", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&after), "25P02", "{after}");
    app.simple_query("ROLLBACK").await.unwrap();

    // An unknown user and a wrong password look alike.
    let unknown = try_connect(addr, "nobody", "x", "main-db")
        .await
        .unwrap_err();
    let wrong = try_connect(addr, "app", "x", "main-db").await.unwrap_err();
    assert_eq!(sqlstate(&unknown), "28P01");
    assert_eq!(sqlstate(&wrong), "28P01");
    assert_eq!(
        unknown.to_string().replace("nobody", "USER"),
        wrong.to_string().replace("app", "USER")
    );

    // A token taken away ends the sessions that logged in with it.
    let mut config = gw.gateway.current_config().await;
    config.principals.remove("app");
    gw.gateway.reload(config).await.unwrap();
    let revoked = app.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&revoked), "28000", "{revoked}");
    assert!(app.is_closed() || app.simple_query("SELECT 1").await.is_err());
}
