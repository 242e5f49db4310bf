//! Commands, engine errors, pipelines, RESP3 and the wire's limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use omnigate::config::{Config, DriverConfig, RedisFrontendConfig};
use omnigate_tests::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Backend, Raw, V, bulk, connect, engine_calls, err, gateway, loopback, ok, resp, status,
};

#[tokio::test]
async fn commands_binary_values_and_errors_on_redis_and_memory() {
    for backend in Backend::both() {
        let on = backend.name();
        let (_gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        assert_eq!(
            ok(&mut c, &[b"SET", b"greeting", b"hello"]).await,
            V::Okay,
            "{on}"
        );
        assert_eq!(
            ok(&mut c, &[b"GET", b"greeting"]).await,
            bulk(b"hello"),
            "{on}"
        );
        assert_eq!(ok(&mut c, &[b"GET", b"missing"]).await, V::Nil, "{on}");
        assert_eq!(ok(&mut c, &[b"INCR", b"n"]).await, V::Int(1), "{on}");
        assert_eq!(ok(&mut c, &[b"INCR", b"n"]).await, V::Int(2), "{on}");
        assert_eq!(
            ok(&mut c, &[b"HSET", b"h", b"f1", b"v1", b"f2", b"v2"]).await,
            V::Int(2),
            "{on}"
        );
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg("h")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(
            hash,
            HashMap::from([("f1".into(), "v1".into()), ("f2".into(), "v2".into())]),
            "{on}"
        );
        // Any bytes, in keys and values: nothing is parsed as text.
        let blob: Vec<u8> = (0..=255u8).chain(*b"\r\n$1 \"q\" 'x'").collect();
        let key = b"bin\0\xff $1";
        assert_eq!(ok(&mut c, &[b"SET", key, &blob]).await, V::Okay, "{on}");
        assert_eq!(ok(&mut c, &[b"GET", key]).await, bulk(&blob), "{on}");
        assert_eq!(
            ok(&mut c, &[b"STRLEN", key]).await,
            V::Int(blob.len() as i64)
        );
        // The engine's errors as the engine said them.
        let (code, line) = err(&mut c, &[b"INCR", b"h"]).await;
        assert_eq!(code, "WRONGTYPE", "{on}: {line}");
        assert!(line.contains("wrong kind of value"), "{on}: {line}");
        let (code, line) = err(&mut c, &[b"INCR", b"greeting"]).await;
        assert_eq!(code, "ERR", "{on}: {line}");
        assert!(line.contains("not an integer"), "{on}: {line}");
        // The connection's own commands.
        assert_eq!(ok(&mut c, &[b"PING"]).await, status("PONG"), "{on}");
        assert_eq!(ok(&mut c, &[b"PING", b"hi"]).await, bulk(b"hi"), "{on}");
        assert_eq!(
            ok(&mut c, &[b"ECHO", b"a\r\nb"]).await,
            bulk(b"a\r\nb"),
            "{on}"
        );
        assert_eq!(
            ok(&mut c, &[b"CLIENT", b"SETNAME", b"app-1"]).await,
            V::Okay
        );
        assert_eq!(ok(&mut c, &[b"CLIENT", b"GETNAME"]).await, bulk(b"app-1"));
        assert!(matches!(ok(&mut c, &[b"CLIENT", b"ID"]).await, V::Int(id) if id > 0));
        assert_eq!(ok(&mut c, &[b"SELECT", b"0"]).await, V::Okay, "{on}");
        let (_, line) = err(&mut c, &[b"SELECT", b"1"]).await;
        assert!(line.contains("SELECT 0"), "{on}: {line}");
        // Refused, saying why.
        let (code, line) = err(&mut c, &[b"BLPOP", b"queue", b"0"]).await;
        assert!(code == "ERR" && line.contains("blocks"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"WATCH", b"greeting"]).await;
        assert!(line.contains("WATCH is not served"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"CLIENT", b"KILL", b"ID", b"1"]).await;
        assert!(line.contains("pooled connections"), "{on}: {line}");
        // Pub/sub and MONITOR would make the connection a stream.
        let mut raw = Raw::connect(addr).await;
        raw.send(&resp(&[b"SUBSCRIBE", b"news"])).await;
        raw.send(&resp(&[b"MONITOR"])).await;
        raw.send(&resp(&[b"PUBLISH", b"news", b"x"])).await;
        let lines = raw.lines(3).await;
        assert!(
            lines[0].starts_with("-ERR SUBSCRIBE is not served"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("-ERR MONITOR is not served"),
            "{lines:?}"
        );
        // PUBLISH goes to the engine, which answers it (the memory
        // engine has no pub/sub).
        match backend {
            Backend::Redis(_) => assert_eq!(lines[2], ":0"),
            Backend::Memory => assert!(lines[2].contains("memory engine"), "{lines:?}"),
        }
    }
}

#[tokio::test]
async fn pipelines_answer_in_order_and_go_to_the_engine_as_one_batch() {
    for backend in Backend::both() {
        let on = backend.name();
        let (gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("SET")
                .arg(format!("p{i}"))
                .arg(format!("v{i}"))
                .ignore();
            pipe.cmd("INCR").arg("ctr");
            pipe.cmd("GET").arg(format!("p{i}"));
        }
        let replies: Vec<V> = pipe.query_async(&mut c).await.unwrap();
        assert_eq!(replies.len(), 400, "{on}");
        for (i, pair) in replies.chunks(2).enumerate() {
            let expected = [V::Int(i as i64 + 1), bulk(format!("v{i}").as_bytes())];
            assert_eq!(pair, expected, "{on}");
        }
        // One write of 100 commands: answered in order, in far fewer
        // engine calls than commands.
        let before = engine_calls(&gw).await;
        let mut raw = Raw::connect(addr).await;
        let mut lot = Vec::new();
        for _ in 0..100 {
            lot.extend(resp(&[b"INCR", b"lot"]));
        }
        raw.send(&lot).await;
        let lines = raw.lines(100).await;
        let expected: Vec<String> = (1..=100).map(|n| format!(":{n}")).collect();
        assert_eq!(lines, expected, "{on}");
        let calls = engine_calls(&gw).await - before;
        assert!(
            calls <= 10,
            "{on}: 100 pipelined commands took {calls} engine calls"
        );
    }
}

#[tokio::test]
async fn resp3_after_hello_3_with_the_engine_s_types() {
    // Memory: HELLO 3 switches the session; nil is RESP3's null.
    let (_gw, addr) = gateway(Config::default()).await;
    let mut c = connect(addr, None, true).await;
    let V::Map(hello) = ok(&mut c, &[b"HELLO", b"3"]).await else {
        panic!("HELLO 3 answers a map");
    };
    assert!(hello.contains(&(bulk(b"proto"), V::Int(3))), "{hello:?}");
    assert_eq!(ok(&mut c, &[b"GET", b"nothing"]).await, V::Nil);
    assert_eq!(ok(&mut c, &[b"SET", b"k", b"v"]).await, V::Okay);
    // HELLO 3's own reply is in RESP3 already: a map of seven fields.
    let mut raw = Raw::connect(addr).await;
    raw.send(&resp(&[b"HELLO", b"3"])).await;
    assert_eq!(raw.lines(1).await, ["%7"]);

    // A Redis engine spoken to in RESP3: its maps and doubles reach a
    // RESP3 client as such, and a RESP2 client as Redis sends them.
    let server = RedisServer::start();
    let mut config = server.gateway_config();
    if let Some(DriverConfig::Redis(redis)) = config.engines.get_mut("cache").map(|e| &mut e.driver)
    {
        redis.protocol = omnigate::drivers::redis::Protocol::Resp3;
    }
    let (_gw, addr) = gateway(config).await;
    let mut three = connect(addr, None, true).await;
    ok(&mut three, &[b"HSET", b"h", b"f", b"v"]).await;
    ok(&mut three, &[b"ZADD", b"z", b"1.5", b"m"]).await;
    assert_eq!(
        ok(&mut three, &[b"HGETALL", b"h"]).await,
        V::Map(vec![(bulk(b"f"), bulk(b"v"))])
    );
    assert_eq!(
        ok(&mut three, &[b"ZSCORE", b"z", b"m"]).await,
        V::Double(1.5)
    );
    let mut two = connect(addr, None, false).await;
    assert_eq!(
        ok(&mut two, &[b"HGETALL", b"h"]).await,
        V::Array(vec![bulk(b"f"), bulk(b"v")])
    );
    assert_eq!(ok(&mut two, &[b"ZSCORE", b"z", b"m"]).await, bulk(b"1.5"));
}

#[tokio::test]
async fn protocol_errors_limits_and_a_wrong_target() {
    let mut config = Config::default();
    let mut section = RedisFrontendConfig::new(loopback(), "cache");
    section.max_connections = 1;
    section.idle_timeout = Duration::from_secs(2);
    config.frontends.redis = Some(section);
    let (_gw, addr) = gateway(config).await;

    // Inline commands, as typed into telnet; then a malformed request is
    // answered and the connection closed.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"PING\r\nSET k \"a b\"\r\nSTRLEN k\r\n").await;
    assert_eq!(raw.lines(3).await, ["+PONG", "+OK", ":3"]);
    // One client at most: the next is told and closed.
    let mut second = Raw::connect(addr).await;
    let refused = second.lines(1).await;
    assert_eq!(refused, ["-ERR max number of clients reached"]);
    assert!(second.closed().await);
    raw.send(b"*1\r\n$x\r\n").await;
    let lines = raw.lines(1).await;
    assert!(lines[0].starts_with("-ERR Protocol error"), "{lines:?}");
    assert!(raw.closed().await);
    // Its slot is free again (once its task has ended); a silent client
    // is closed at idle_timeout.
    let mut idle = connect_when_free(addr).await;
    assert!(idle.closed().await, "closed after idle_timeout");
    // So is a client that does not read its replies, with what it holds.
    let mut reader = connect_when_free(addr).await;
    reader
        .send(&resp(&[b"SET", b"big", &vec![b'v'; 1 << 20]]))
        .await;
    assert_eq!(reader.lines(1).await, ["+OK"]);
    let pipeline: Vec<u8> = (0..64).flat_map(|_| resp(&[b"GET", b"big"])).collect();
    reader.send(&pipeline).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Closed with the replies still unsent: fewer bytes than 64 replies
    // of 1 MiB arrive before the end.
    let mut received = 0;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), reader.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("a client that reads no reply for idle_timeout is not closed"),
        }
    }
    assert!(
        received < 64 << 20,
        "the replies were all sent ({received} bytes): the client was not closed while it did not read"
    );

    // A target that is not an engine of the redis dialect stops startup.
    let mut config = Config::default();
    config.server.listen = loopback();
    config.frontends.redis = Some(RedisFrontendConfig::new(loopback(), "main"));
    let gateway = omnigate::Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    let err = omnigate_frontends::grpc::server::start(gateway, &config.server)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("frontends.redis.target") && err.contains("sqlite"),
        "{err}"
    );
}

/// A connection to the front end once its one slot is free (the last
/// client's task has ended), answering PING.
async fn connect_when_free(addr: std::net::SocketAddr) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = Raw::connect(addr).await;
        // (A refused connection may be closed before the PING is written.)
        let _ = next.stream.write_all(&resp(&[b"PING"])).await;
        if next.lines(1).await == ["+PONG"] {
            return next;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
