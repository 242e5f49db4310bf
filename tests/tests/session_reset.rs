//! A pooled connection goes back to the pool as it came out: what one
//! caller's statements leave on a PostgreSQL session (settings, roles,
//! prepared statements, temporary tables, advisory locks, `LISTEN`s) is
//! never seen by the next caller of the same connection, in or out of a
//! transaction; the Redis commands that would change a shared connection
//! are refused. And the gateway's table of Redis admin commands agrees
//! with a real server's `COMMAND`, command by command.
#![allow(clippy::unwrap_used)]

use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, request, scalar};
use pb::value::Kind;
use tonic::Code;

fn sql(text: &str) -> pb::ExecuteRequest {
    request("sql", text, vec![])
}

#[tokio::test]
async fn one_callers_session_state_is_not_the_next_callers() {
    let pg = PgServer::start();
    // One connection: every call gets the connection the last one used.
    let mut gw = TestGateway::with_config(pg.gateway_config_with_pool(1)).await;
    let c = &mut gw.client;
    type Client = pb::gateway_client::GatewayClient<tonic::transport::Channel>;
    let show = async |c: &mut Client, what: &str| {
        let reply = c.execute(sql(&format!("SHOW {what}"))).await.unwrap();
        scalar(&reply.into_inner())
    };
    let default_search_path = show(c, "search_path").await;
    for change in [
        "SET statement_timeout = '1ms'",
        "SET search_path = nowhere",
        "SELECT set_config('work_mem', '64kB', false)",
        "PREPARE leaked AS SELECT 1",
        "LISTEN leaked",
        "CREATE TEMP TABLE leaked (v int)",
        "SELECT pg_advisory_lock(42)",
        "DECLARE leaked CURSOR WITH HOLD FOR SELECT 1",
    ] {
        // DECLARE outside a transaction block fails; the rest run.
        let _ = c.execute(sql(change)).await;
    }
    // The report: the next caller's queries timed out at 1ms.
    c.execute(sql("SELECT pg_sleep(0.01)")).await.unwrap();
    assert_eq!(
        show(c, "statement_timeout").await,
        Some(Kind::String("0".into()))
    );
    assert_eq!(show(c, "search_path").await, default_search_path);
    assert_eq!(show(c, "work_mem").await, Some(Kind::String("4MB".into())));
    let prepared = c.execute(sql("EXECUTE leaked")).await.unwrap_err();
    assert_ne!(prepared.code(), Code::Ok);
    let temp = c.execute(sql("SELECT * FROM leaked")).await.unwrap_err();
    assert_eq!(temp.code(), Code::NotFound, "{temp:?}");
    let state = "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') \
                 + (SELECT count(*) FROM pg_listening_channels())";
    let held = c.execute(sql(state)).await.unwrap().into_inner();
    assert_eq!(scalar(&held), Some(Kind::Int(0)), "no lock or LISTEN left");
    // The prepared statements the driver keeps still work after a reset.
    for _ in 0..3 {
        c.execute(request("sql", "SELECT $1::int", vec![omnigate_tests::i(1)]))
            .await
            .unwrap();
    }
    // A session SET inside a transaction outlives its commit: reset too.
    let tx = omnigate_tests::begin_tx(c, None).await;
    c.execute(omnigate_tests::in_tx(
        &tx,
        "sql",
        "SET statement_timeout = '1ms'",
        vec![],
    ))
    .await
    .unwrap();
    c.commit(pb::CommitRequest { tx_id: tx }).await.unwrap();
    c.execute(sql("SELECT pg_sleep(0.01)")).await.unwrap();
    assert_eq!(
        show(c, "statement_timeout").await,
        Some(Kind::String("0".into()))
    );
    // A stream's session SET too.
    let mut stream = c
        .execute_stream(sql("SELECT set_config('statement_timeout', '1ms', false)"))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    c.execute(sql("SELECT pg_sleep(0.01)")).await.unwrap();
}

#[tokio::test]
async fn redis_commands_that_change_a_shared_connection_are_refused() {
    let redis = RedisServer::start();
    let mut gw = TestGateway::with_config(redis.gateway_config()).await;
    for text in [
        "SELECT 1",
        "CLIENT SETNAME leaked",
        "CLIENT TRACKING on",
        "READONLY",
        "READWRITE",
        "HELLO 3",
    ] {
        let status = gw
            .client
            .execute(request("redis", text, vec![]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{text}: {status:?}");
    }
}

/// Reads one RESP reply (enough of RESP2 for `COMMAND`).
fn read_reply(reader: &mut impl std::io::BufRead) -> serde_json::Value {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (kind, rest) = line.trim_end().split_at(1);
    match kind {
        "*" => {
            let n: i64 = rest.parse().unwrap();
            serde_json::Value::Array((0..n.max(0)).map(|_| read_reply(reader)).collect())
        }
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return serde_json::Value::Null;
            }
            let mut data = vec![0; usize::try_from(n).unwrap() + 2];
            std::io::Read::read_exact(reader, &mut data).unwrap();
            serde_json::Value::String(String::from_utf8_lossy(&data[..data.len() - 2]).into())
        }
        ":" => serde_json::Value::from(rest.parse::<i64>().unwrap()),
        _ => serde_json::Value::String(rest.into()),
    }
}

#[test]
fn the_admin_table_is_what_a_real_redis_says() {
    use std::io::Write;
    let redis = RedisServer::start();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    stream.write_all(b"*1\r\n$7\r\nCOMMAND\r\n").unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let reply = read_reply(&mut reader);
    let mut seen = Vec::new();
    let mut containers = Vec::new();
    fn walk(
        entry: &serde_json::Value,
        seen: &mut Vec<(String, bool)>,
        containers: &mut Vec<String>,
    ) {
        let name = entry[0].as_str().unwrap().to_owned();
        let categories = entry[6].as_array().unwrap();
        let admin = categories
            .iter()
            .any(|c| c == "@admin" || c == "@dangerous");
        let subs = entry[9].as_array().cloned().unwrap_or_default();
        if !subs.is_empty() {
            containers.push(name.clone());
        }
        seen.push((name, admin));
        for sub in &subs {
            walk(sub, seen, containers);
        }
    }
    for entry in reply.as_array().unwrap() {
        walk(entry, &mut seen, &mut containers);
    }
    assert!(seen.len() > 200, "COMMAND listed {} commands", seen.len());
    use omnigate_drivers::redis_commands as rc;
    for (name, admin) in &seen {
        if rc::ADMIN_TOO.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(
            rc::is_admin(name),
            *admin,
            "{name}: the server says admin = {admin}"
        );
    }
    for name in &containers {
        assert!(rc::is_container(name), "{name} has subcommands");
    }
    for name in rc::admin_or_dangerous() {
        assert!(
            seen.iter().any(|(n, _)| n == name),
            "{name} is not a command here"
        );
    }
}

#[tokio::test]
async fn a_sqlite_pragma_that_sets_a_connection_s_state_is_refused() {
    // The embedded default: SQLite `main` on pooled connections.
    let mut gw = TestGateway::start().await;
    for sets in [
        "PRAGMA foreign_keys = OFF",
        "/* x */ PRAGMA ignore_check_constraints(1)",
    ] {
        let status = gw
            .client
            .execute(request("sql", sets, Vec::new()))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{sets}: {status:?}"
        );
        assert!(status.message().contains("pooled connection"), "{status:?}");
    }
    // Reading one is allowed, and every connection keeps the engine's.
    for _ in 0..4 {
        let read = gw
            .client
            .execute(request("sql", "PRAGMA foreign_keys", Vec::new()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(scalar(&read), Some(Kind::Int(1)));
    }
}
