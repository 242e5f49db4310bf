//! MULTI/EXEC/DISCARD as a gateway transaction, joined across engines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use omnigate::config::PostgresFrontendConfig;
use omnigate::security::tokens;
use omnigate_tests::auth::principal;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

use super::{Backend, Raw, V, bulk, connect, err, gateway, loopback, ok, resp, status};

#[tokio::test]
async fn multi_exec_commits_and_discard_discards() {
    for backend in Backend::both() {
        let on = backend.name();
        let (mut gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        ok(&mut c, &[b"SET", b"seen", b"before"]).await;
        // EXEC answers, in order, each command's reply: a write's as it
        // was applied at the commit (SET's OK, INCRBY's new value, SET ..
        // GET's old value); a read's is what it read when queued
        // (committed state).
        let replies: Vec<V> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("m1")
            .arg("v1")
            .cmd("INCRBY")
            .arg("m2")
            .arg(5)
            .cmd("GET")
            .arg("seen")
            .cmd("GET")
            .arg("m1")
            .cmd("SET")
            .arg("seen")
            .arg("after")
            .arg("GET")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(
            replies,
            [V::Okay, V::Int(5), bulk(b"before"), V::Nil, bulk(b"before")],
            "{on}"
        );
        ok(&mut c, &[b"SET", b"seen", b"before"]).await;
        assert_eq!(ok(&mut c, &[b"GET", b"m1"]).await, bulk(b"v1"), "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"m2"]).await, bulk(b"5"), "{on}");

        assert_eq!(ok(&mut c, &[b"MULTI"]).await, V::Okay);
        let V::BulkString(id) = ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await else {
            panic!("{on}: the transaction has an id");
        };
        assert!(!id.is_empty());
        assert_eq!(ok(&mut c, &[b"SET", b"d1", b"x"]).await, status("QUEUED"));
        let (_, line) = err(&mut c, &[b"MULTI"]).await;
        assert!(line.contains("can not be nested"), "{on}: {line}");
        assert_eq!(ok(&mut c, &[b"DISCARD"]).await, V::Okay);
        assert_eq!(
            ok(&mut c, &[b"GET", b"d1"]).await,
            V::Nil,
            "{on}: discarded"
        );
        assert_eq!(ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await, V::Nil);

        // A command refused while queuing: EXEC applies nothing.
        assert_eq!(ok(&mut c, &[b"MULTI"]).await, V::Okay);
        assert_eq!(ok(&mut c, &[b"SET", b"e1", b"x"]).await, status("QUEUED"));
        err(&mut c, &[b"INCR"]).await;
        let (code, _) = err(&mut c, &[b"EXEC"]).await;
        assert_eq!(code, "EXECABORT", "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"e1"]).await, V::Nil, "{on}");

        let (_, line) = err(&mut c, &[b"EXEC"]).await;
        assert!(line.contains("EXEC without MULTI"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"DISCARD"]).await;
        assert!(line.contains("DISCARD without MULTI"), "{on}: {line}");

        // Joined without MULTI: commands answer at once, EXEC commits.
        let tx = omnigate_tests::begin_tx(&mut gw.client, None).await;
        ok(&mut c, &[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]).await;
        assert_eq!(
            ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await,
            bulk(tx.as_bytes())
        );
        assert_eq!(ok(&mut c, &[b"SET", b"j1", b"x"]).await, status("QUEUED"));
        assert_eq!(ok(&mut c, &[b"GET", b"seen"]).await, bulk(b"before"));
        let (_, line) = err(&mut c, &[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]).await;
        assert!(line.contains("already in transaction"), "{on}: {line}");
        assert_eq!(ok(&mut c, &[b"EXEC"]).await, V::Array(Vec::new()), "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"j1"]).await, bulk(b"x"), "{on}");

        // Joined, with a write made by another caller in the same engine's
        // part: EXEC cannot tell the session's replies from the other's,
        // and answers the writes' QUEUED.
        let tx = omnigate_tests::begin_tx(&mut gw.client, None).await;
        let other = omnigate_proto::v1::ExecuteRequest {
            target: "cache".into(),
            ..omnigate_tests::in_tx(&tx, "redis", "SET j2 y", Vec::new())
        };
        gw.client.execute(other).await.unwrap();
        ok(&mut c, &[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]).await;
        ok(&mut c, &[b"MULTI"]).await;
        assert_eq!(ok(&mut c, &[b"INCR", b"j3"]).await, status("QUEUED"));
        assert_eq!(
            ok(&mut c, &[b"EXEC"]).await,
            V::Array(vec![status("QUEUED")]),
            "{on}"
        );
        assert_eq!(ok(&mut c, &[b"GET", b"j2"]).await, bulk(b"y"), "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"j3"]).await, bulk(b"1"), "{on}");
        let (_, line) = err(&mut c, &[b"OMNIGATE.TX", b"JOIN", b"no-such-tx"]).await;
        assert!(line.contains("unknown transaction"), "{on}: {line}");
    }
}

/// A principal whose token also logs in over the PostgreSQL wire.
fn wire_principal(token: &str) -> omnigate::config::PrincipalConfig {
    omnigate::config::PrincipalConfig {
        scram_sha256: Some(tokens::scram_verifier(token)),
        ..principal(token)
    }
}

async fn pg_connect(addr: SocketAddr) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=app password=app-token dbname=main-db connect_timeout=5",
            addr.ip(),
            addr.port()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

async fn pg_count(pg: &tokio_postgres::Client, id: i32) -> String {
    let rows = pg
        .simple_query(&format!("SELECT count(*) FROM orders WHERE id = {id}"))
        .await
        .unwrap();
    rows.into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

async fn pg_tx_id(pg: &tokio_postgres::Client) -> String {
    let rows = pg.simple_query("SHOW omnigate.tx_id").await.unwrap();
    rows.into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn a_transaction_spans_postgres_over_its_wire_and_redis_over_resp() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = omnigate_tests::auth::config(
        &pg,
        &redis,
        BTreeMap::from([("app".to_owned(), wire_principal("app-token"))]),
    );
    config.frontends.postgres = Some(PostgresFrontendConfig::new(loopback()));
    let (gw, addr) = gateway(config).await;
    let pg_addr = gw.handle.postgres_addr().unwrap();
    let sql = pg_connect(pg_addr).await;
    let reader = pg_connect(pg_addr).await;
    sql.simple_query("CREATE TABLE orders (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut c = connect(addr, Some(("", "app-token")), false).await;

    // Begun over the PostgreSQL wire, joined over RESP; PostgreSQL's
    // COMMIT or ROLLBACK ends both parts.
    for (commit, id) in [(true, 1), (false, 2)] {
        sql.simple_query(&format!("BEGIN; INSERT INTO orders VALUES ({id})"))
            .await
            .unwrap();
        let tx = pg_tx_id(&sql).await;
        ok(&mut c, &[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]).await;
        let key = format!("order:{id}");
        assert_eq!(
            ok(&mut c, &[b"SET", key.as_bytes(), b"placed"]).await,
            status("QUEUED"),
            "a write in the transaction waits for its commit"
        );
        assert_eq!(ok(&mut c, &[b"GET", key.as_bytes()]).await, V::Nil);
        sql.simple_query(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .unwrap();
        // The RESP session learns it ended when it next speaks, and leaves.
        let (_, line) = err(&mut c, &[b"GET", key.as_bytes()]).await;
        let how = if commit {
            "was committed"
        } else {
            "was rolled back"
        };
        assert!(line.contains(how), "{line}");
        assert_eq!(ok(&mut c, &[b"OMNIGATE.TX", b"LEAVE"]).await, V::Okay);
        let value = ok(&mut c, &[b"GET", key.as_bytes()]).await;
        let rows = pg_count(&reader, id).await;
        if commit {
            assert_eq!((value, rows.as_str()), (bulk(b"placed"), "1"));
        } else {
            assert_eq!((value, rows.as_str()), (V::Nil, "0"));
        }
    }

    // Begun over RESP by MULTI, joined over the wire; RESP's EXEC or
    // DISCARD ends both parts.
    for (commit, id) in [(true, 3), (false, 4)] {
        ok(&mut c, &[b"MULTI"]).await;
        let V::BulkString(tx) = ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await else {
            panic!("an id");
        };
        let tx = String::from_utf8(tx).unwrap();
        sql.simple_query(&format!(
            "SET omnigate.tx_id = '{tx}'; INSERT INTO orders VALUES ({id})"
        ))
        .await
        .unwrap();
        let key = format!("order:{id}");
        ok(&mut c, &[b"SET", key.as_bytes(), b"placed"]).await;
        assert_eq!(pg_count(&reader, id).await, "0", "not committed yet");
        let end: &[u8] = if commit { b"EXEC" } else { b"DISCARD" };
        let ended = ok(&mut c, &[end]).await;
        if commit {
            // The Redis part applied after PostgreSQL decided: SET's reply.
            assert_eq!(ended, V::Array(vec![V::Okay]));
        }
        // The wire session learns its transaction ended when it next speaks.
        sql.simple_query("ROLLBACK").await.unwrap();
        let value = ok(&mut c, &[b"GET", key.as_bytes()]).await;
        let rows = pg_count(&reader, id).await;
        if commit {
            assert_eq!((value, rows.as_str()), (bulk(b"placed"), "1"));
        } else {
            assert_eq!((value, rows.as_str()), (V::Nil, "0"));
        }
    }
    assert_eq!(gw.gateway.open_transactions(), 0);
}

#[tokio::test]
async fn a_client_gone_mid_multi_discards_and_a_joined_transaction_stays_its_owners() {
    for backend in Backend::both() {
        let on = backend.name();
        let (mut gw, addr) = gateway(backend.config()).await;
        let mut leaver = Raw::connect(addr).await;
        leaver.send(&resp(&[b"MULTI"])).await;
        leaver.send(&resp(&[b"SET", b"gone", b"1"])).await;
        assert_eq!(leaver.lines(2).await, ["+OK", "+QUEUED"], "{on}");
        assert_eq!(gw.gateway.open_transactions(), 1, "{on}");
        drop(leaver);
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.gateway.open_transactions() > 0 {
            assert!(
                Instant::now() < deadline,
                "{on}: the gone client's MULTI is still open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c = connect(addr, None, false).await;
        assert_eq!(ok(&mut c, &[b"GET", b"gone"]).await, V::Nil, "{on}");

        // A transaction joined without MULTI is its owner's to end.
        let tx = omnigate_tests::begin_tx(&mut gw.client, None).await;
        let mut joiner = Raw::connect(addr).await;
        joiner
            .send(&resp(&[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]))
            .await;
        joiner.send(&resp(&[b"SET", b"joined", b"1"])).await;
        assert_eq!(joiner.lines(2).await, ["+OK", "+QUEUED"], "{on}");
        drop(joiner);
        tokio::time::sleep(Duration::from_millis(300)).await;
        omnigate_tests::commit_tx(&mut gw.client, &tx)
            .await
            .unwrap();
        assert_eq!(ok(&mut c, &[b"GET", b"joined"]).await, bulk(b"1"), "{on}");
    }
}
