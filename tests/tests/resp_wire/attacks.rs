//! What a hostile Redis client tried (each from a review of the front end
//! read as an attacker would), against a real Redis: a request nested
//! deep enough to overflow a stack before AUTH, requests past Redis' limits
//! for a client not yet authenticated, a script that runs an `@admin`
//! command, writes into another database, a write inside MULTI that ran at
//! once, AUTH inside MULTI, a token revoked under an open connection.

use super::{
    Backend, Raw, V, bulk, connect, err, gateway, ok, principals, resp, status, try_connect,
};

#[tokio::test]
async fn a_deep_request_before_auth_is_refused_and_the_gateway_lives_on() {
    let backend = Backend::Memory;
    let mut config = backend.config();
    config.principals = principals();
    config.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (gw, addr) = gateway(config).await;

    // redis-protocol's decoder recursed once per `*1`: this aborted the
    // whole process (every front end with it), before any AUTH.
    let mut raw = Raw::connect(addr).await;
    raw.send(&b"*1\r\n".repeat(200_000)).await;
    let line = raw.lines(1).await;
    assert_eq!(line[0], "-ERR Protocol error: expected '$', got '*'");
    assert!(raw.closed().await);

    // Redis' limits for a client that has not authenticated.
    let mut raw = Raw::connect(addr).await;
    let many: Vec<&[u8]> = vec![b"PING"; 11];
    raw.send(&resp(&many)).await;
    assert_eq!(
        raw.lines(1).await[0],
        "-ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(raw.closed().await);
    let mut raw = Raw::connect(addr).await;
    raw.send(&resp(&[b"AUTH", &vec![b'x'; 20_000]])).await;
    assert_eq!(
        raw.lines(1).await[0],
        "-ERR Protocol error: unauthenticated bulk length"
    );
    // Once authenticated, a large argument in the same pipeline as AUTH
    // is read with the limits of an authenticated client.
    let mut raw = Raw::connect(addr).await;
    let value = vec![b'v'; 100_000];
    let mut pipeline = resp(&[b"AUTH", b"app-token"]);
    pipeline.extend(resp(&[b"SET", b"big", &value]));
    pipeline.extend(resp(&[b"STRLEN", b"big"]));
    raw.send(&pipeline).await;
    assert_eq!(raw.lines(3).await, ["+OK", "+OK", ":100000"]);

    // An inline `$5` is a word, not a placeholder.
    raw.send(b"SET price $5\r\nGET price\r\n").await;
    assert_eq!(raw.lines(3).await, ["+OK", "$2", "$5"]);

    // The gateway still serves.
    let mut app = connect(addr, Some(("", "app-token")), false).await;
    assert_eq!(ok(&mut app, &[b"PING"]).await, status("PONG"));

    // And counted each connection, and holds the open one.
    let metrics = gw.handle.metrics_addr().expect("the metrics listener");
    let (scrape, _) = omnigate_tests::metrics::scrape_at(metrics).await;
    let accepted = omnigate_tests::metrics::value(
        &scrape,
        "omnigate_frontend_connections_total",
        &[("frontend", "redis"), ("outcome", "accepted")],
    );
    assert!(accepted.is_some_and(|n| n >= 5.0), "{accepted:?}");
    let open = omnigate_tests::metrics::value(
        &scrape,
        "omnigate_frontend_connections_open",
        &[("frontend", "redis")],
    );
    assert!(open.is_some_and(|n| n >= 1.0), "{open:?}");
    // The SET and STRLEN ran through the core.
    let statements = omnigate_tests::metrics::value(
        &scrape,
        "omnigate_frontend_statements_total",
        &[("frontend", "redis"), ("outcome", "ok")],
    );
    assert!(statements.is_some_and(|n| n >= 2.0), "{statements:?}");
}

#[tokio::test]
async fn scripts_other_databases_and_writes_in_multi_stay_inside_the_grant() {
    let server = omnigate_tests::redis::RedisServer::start();
    let direct = redis::Client::open(server.url(0)).unwrap();
    let mut direct = direct.get_multiplexed_async_connection().await.unwrap();
    let backend = Backend::Redis(server);
    let mut config = backend.config();
    config.principals = principals();
    config.server.max_response_bytes = 64 << 10;
    let (gw, addr) = gateway(config).await;
    let mut app = connect(addr, Some(("", "app-token")), false).await;
    ok(&mut app, &[b"SET", b"keep", b"1"]).await;

    // A script may run any command: it needs @scripting.
    let (code, line) = err(&mut app, &[b"EVAL", b"return redis.call('FLUSHALL')", b"0"]).await;
    assert_eq!(code, "NOPERM", "{line}");
    assert!(line.contains("allow @scripting"), "{line}");
    let (code, _) = err(&mut app, &[b"FUNCTION", b"LOAD", b"REPLACE", b"x"]).await;
    assert_eq!(code, "NOPERM");
    // No write leaves the engine's database.
    for args in [
        &[&b"MOVE"[..], b"keep", b"5"][..],
        &[b"COPY", b"keep", b"other", b"DB", b"5", b"REPLACE"],
        &[b"SCRIPT", b"DEBUG", b"SYNC"],
    ] {
        let (code, line) = err(&mut app, args).await;
        assert_eq!(code, "ERR", "{line}");
    }
    assert_eq!(ok(&mut app, &[b"GET", b"keep"]).await, bulk(b"1"));

    // Inside MULTI, a write that carries no `write` flag of its own (a
    // container's subcommand) waits for EXEC: DISCARD leaves nothing.
    let mut raw = Raw::connect(addr).await;
    raw.send(&resp(&[b"AUTH", b"app-token"])).await;
    raw.send(&resp(&[b"MULTI"])).await;
    raw.send(&resp(&[
        b"XGROUP",
        b"CREATE",
        b"s",
        b"g",
        b"$",
        b"MKSTREAM",
    ]))
    .await;
    raw.send(&resp(&[b"PUBLISH", b"channel", b"hello"])).await;
    raw.send(&resp(&[b"DISCARD"])).await;
    raw.send(&resp(&[b"EXISTS", b"s"])).await;
    assert_eq!(
        raw.lines(6).await,
        ["+OK", "+OK", "+QUEUED", "+QUEUED", "+OK", ":0"]
    );

    // AUTH inside MULTI is refused, and EXEC then discards.
    raw.send(&resp(&[b"MULTI"])).await;
    raw.send(&resp(&[b"SET", b"queued", b"1"])).await;
    raw.send(&resp(&[b"AUTH", b"reader-token"])).await;
    raw.send(&resp(&[b"EXEC"])).await;
    raw.send(&resp(&[b"EXISTS", b"queued"])).await;
    let lines = raw.lines(5).await;
    assert_eq!(lines[0..2], ["+OK", "+QUEUED"]);
    assert!(lines[2].starts_with("-ERR AUTH inside MULTI"), "{lines:?}");
    assert!(lines[3].starts_with("-EXECABORT"), "{lines:?}");
    assert_eq!(lines[4], ":0");

    // EXEC's replies are one answer, held to max_response_bytes: reads
    // queued past it are refused while queuing, and EXEC discards.
    let value = vec![b'v'; 40 << 10];
    raw.send(&resp(&[b"SET", b"large", &value])).await;
    raw.send(&resp(&[b"MULTI"])).await;
    raw.send(&resp(&[b"GET", b"large"])).await;
    raw.send(&resp(&[b"GET", b"large"])).await;
    raw.send(&resp(&[b"EXEC"])).await;
    let lines = raw.lines(5).await;
    assert_eq!(lines[0..3], ["+OK", "+OK", "+QUEUED"], "{lines:?}");
    assert!(lines[3].contains("max_response_bytes"), "{lines:?}");
    assert!(lines[4].starts_with("-EXECABORT"), "{lines:?}");

    // A token taken away ends the connections that authenticated with it,
    // and the transaction one was queuing.
    raw.send(&resp(&[b"MULTI"])).await;
    raw.send(&resp(&[b"SET", b"revoked", b"1"])).await;
    assert_eq!(raw.lines(2).await, ["+OK", "+QUEUED"]);
    let mut config = gw.gateway.current_config().await;
    config.principals.remove("app");
    gw.gateway.reload(config).await.unwrap();
    raw.send(&resp(&[b"EXEC"])).await;
    let line = raw.lines(1).await;
    assert!(
        line[0].starts_with("-NOAUTH") && line[0].contains("revoked"),
        "{line:?}"
    );
    assert!(raw.closed().await);
    assert_eq!(ok(&mut direct, &[b"EXISTS", b"revoked"]).await, V::Int(0));
    assert!(
        try_connect(addr, Some(("", "app-token")), false)
            .await
            .is_err()
    );
}
