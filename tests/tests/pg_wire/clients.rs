//! The real PostgreSQL clients through the front end: psql, pgbench,
//! psycopg and asyncpg.

use omnigate_tests::output_text;
use omnigate_tests::postgres::{PgServer, client_bin};
use omnigate_tests::redis::RedisServer;

use crate::gateway;

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
    // On SQLite, psql's catalog commands are refused saying why (they read
    // pg_catalog); COPY (\\copy) is refused saying what to use.
    let out = tokio::task::spawn_blocking(move || {
        [
            psql(
                "main",
                &["-c", "CREATE TABLE lite_t (id INT)", "-c", "\\d lite_t"],
            ),
            psql("main", &["-c", "\\copy lite_t FROM '/dev/null' CSV"]),
        ]
    })
    .await
    .unwrap();
    assert!(
        output_text(&out[0]).contains("has no PostgreSQL catalog"),
        "{}",
        output_text(&out[0])
    );
    assert!(
        output_text(&out[1]).contains("COPY is not served"),
        "{}",
        output_text(&out[1])
    );
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
    assert!(init.status.success(), "pgbench -i: {}", output_text(&init));
    for mode in ["simple", "extended", "prepared"] {
        let run = tokio::task::spawn_blocking(move || {
            pgbench(&["-S", "-M", mode, "-c", "4", "-j", "2", "-t", "200"])
        })
        .await
        .unwrap();
        let out = output_text(&run);
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
    let out = output_text(&run);
    assert!(run.status.success(), "pgbench: {out}");
    assert!(out.contains("processed: 100/100"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_and_asyncpg_use_both_protocols_and_transactions() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let args = [
        addr.ip().to_string(),
        addr.port().to_string(),
        "app".into(),
        "app-token".into(),
    ];
    omnigate_tests::python::run_client_script(
        "pg_clients.py",
        args.to_vec(),
        "psycopg[binary] and asyncpg",
    )
    .await;
}
