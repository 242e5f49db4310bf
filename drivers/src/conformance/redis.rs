//! The `redis` dialect's conformance suite. Run it against an engine whose
//! database may be flushed.

use std::time::Duration;

use super::{error, value};
use crate::{Dialect, Error, StorageDriver, Value};

async fn r(d: &dyn StorageDriver, text: &str) -> Value {
    value(d, Dialect::Redis, text, &[]).await
}

async fn rp(d: &dyn StorageDriver, text: &str, params: &[Value]) -> Value {
    value(d, Dialect::Redis, text, params).await
}

async fn e(d: &dyn StorageDriver, text: &str) -> Error {
    error(d, Dialect::Redis, text, &[]).await
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|t| s(t)).collect())
}

/// The list reply's items as sorted strings (for replies in no set order).
fn sorted(v: Value) -> Vec<String> {
    let Value::List(items) = v else {
        panic!("expected a list, got {v:?}")
    };
    let mut out: Vec<String> = items
        .into_iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{v:?}"))
        })
        .collect();
    out.sort();
    out
}

fn assert_error(err: &Error, code: &str, text: &str) {
    assert_eq!(err.engine_code(), Some(code), "{err}");
    assert!(
        err.to_string().contains(text),
        "error `{err}` should contain `{text}`"
    );
}

/// Runs every section in order, starting from an empty database.
pub async fn run_all(d: &dyn StorageDriver) {
    assert_eq!(r(d, "FLUSHDB").await, s("OK"));
    strings(d).await;
    expiry(d).await;
    hashes(d).await;
    lists(d).await;
    sets(d).await;
    sorted_sets(d).await;
    keyspace(d).await;
    errors(d).await;
    super::statement_checks(d, Dialect::Redis, "PING").await;
    binary_params(d).await;
}

/// GET, SET and its options, MGET, MSET, INCR/DECR(BY), APPEND, STRLEN.
pub async fn strings(d: &dyn StorageDriver) {
    assert_eq!(r(d, "SET s:a hello").await, s("OK"));
    assert_eq!(r(d, "GET s:a").await, s("hello"));
    assert_eq!(r(d, "GET s:missing").await, Value::Null);
    assert_eq!(r(d, "SET s:a x NX").await, Value::Null);
    assert_eq!(r(d, "SET s:b x XX").await, Value::Null);
    assert_eq!(r(d, "SET s:a world XX GET").await, s("hello"));
    assert_eq!(r(d, "SET s:new v GET").await, Value::Null);
    assert_eq!(r(d, "GET s:a").await, s("world"));
    assert_error(&e(d, "SET s:a v NX XX").await, "ERR", "syntax error");
    assert_error(
        &e(d, "SET s:a v EX 0").await,
        "ERR",
        "invalid expire time in 'set' command",
    );
    assert_error(
        &e(d, "SET s:a v EX ten").await,
        "ERR",
        "value is not an integer or out of range",
    );

    assert_eq!(r(d, "MSET s:m1 1 s:m2 2").await, s("OK"));
    assert_eq!(
        r(d, "MGET s:m1 s:nope s:m2").await,
        Value::List(vec![s("1"), Value::Null, s("2")])
    );
    assert_error(
        &e(d, "MSET s:m1 1 s:m2").await,
        "ERR",
        "wrong number of arguments for 'mset' command",
    );

    assert_eq!(r(d, "INCR s:n").await, i(1));
    assert_eq!(r(d, "INCRBY s:n 10").await, i(11));
    assert_eq!(r(d, "DECR s:n").await, i(10));
    assert_eq!(r(d, "DECRBY s:n 15").await, i(-5));
    assert_eq!(r(d, "GET s:n").await, s("-5"));
    assert_eq!(r(d, "SET s:max 9223372036854775807").await, s("OK"));
    assert_error(
        &e(d, "INCR s:max").await,
        "ERR",
        "increment or decrement would overflow",
    );
    assert!(matches!(e(d, "INCR s:a").await, Error::Precondition(_)));
    assert_error(
        &e(d, "INCR s:a").await,
        "ERR",
        "value is not an integer or out of range",
    );
    assert_error(
        &e(d, "INCRBY s:n x").await,
        "ERR",
        "value is not an integer or out of range",
    );

    assert_eq!(r(d, "APPEND s:ap foo").await, i(3));
    assert_eq!(r(d, "APPEND s:ap bar").await, i(6));
    assert_eq!(r(d, "GET s:ap").await, s("foobar"));
    assert_eq!(r(d, "STRLEN s:ap").await, i(6));
    assert_eq!(r(d, "STRLEN s:missing").await, i(0));
}

/// EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, SET EX/PX/KEEPTTL, and eviction.
pub async fn expiry(d: &dyn StorageDriver) {
    assert_eq!(r(d, "SET x:a v").await, s("OK"));
    assert_eq!(r(d, "TTL x:a").await, i(-1));
    assert_eq!(r(d, "TTL x:missing").await, i(-2));
    assert_eq!(r(d, "PTTL x:missing").await, i(-2));
    assert_eq!(r(d, "EXPIRE x:a 100").await, i(1));
    assert_eq!(r(d, "TTL x:a").await, i(100));
    let pttl = r(d, "PTTL x:a").await.as_int().unwrap();
    assert!((99_000..=100_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(r(d, "EXPIRE x:missing 100").await, i(0));
    assert_eq!(r(d, "EXPIRE x:a 50 NX").await, i(0));
    assert_eq!(r(d, "EXPIRE x:a 50 GT").await, i(0));
    assert_eq!(r(d, "EXPIRE x:a 200 GT").await, i(1));
    assert_eq!(r(d, "EXPIRE x:a 50 LT").await, i(1));
    assert_eq!(r(d, "TTL x:a").await, i(50));
    assert_eq!(r(d, "SET x:a v2 KEEPTTL").await, s("OK"));
    assert_eq!(r(d, "TTL x:a").await, i(50));
    assert_eq!(r(d, "SET x:a v3").await, s("OK"));
    assert_eq!(
        r(d, "TTL x:a").await,
        i(-1),
        "SET without KEEPTTL drops the TTL"
    );
    assert_eq!(r(d, "PEXPIRE x:a 100000").await, i(1));
    assert_eq!(r(d, "PERSIST x:a").await, i(1));
    assert_eq!(r(d, "PERSIST x:a").await, i(0));
    assert_eq!(r(d, "TTL x:a").await, i(-1));
    assert_eq!(r(d, "EXPIRE x:a -1").await, i(1));
    assert_eq!(r(d, "EXISTS x:a").await, i(0), "a negative EXPIRE deletes");
    assert_error(
        &e(d, "EXPIRE x:a 10 NX XX").await,
        "ERR",
        "NX and XX, GT or LT options at the same time are not compatible",
    );

    assert_eq!(r(d, "SET x:px v PX 60").await, s("OK"));
    assert_eq!(r(d, "SET x:ex v EX 1000").await, s("OK"));
    assert_eq!(r(d, "TTL x:ex").await, i(1000));
    assert_eq!(r(d, "SET x:lazy v").await, s("OK"));
    assert_eq!(r(d, "PEXPIRE x:lazy 60").await, i(1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r(d, "GET x:px").await, Value::Null, "expired by PX");
    assert_eq!(r(d, "EXISTS x:lazy").await, i(0), "expired by PEXPIRE");
    assert_eq!(r(d, "KEYS x:*").await, list(&["x:ex"]));
}

/// HSET, HGET, HMGET, HGETALL, HDEL, HINCRBY, HLEN, HEXISTS.
pub async fn hashes(d: &dyn StorageDriver) {
    assert_eq!(r(d, "HSET h:a f1 v1 f2 v2").await, i(2));
    assert_eq!(r(d, "HSET h:a f1 x f3 v3").await, i(1));
    assert_eq!(r(d, "HGET h:a f1").await, s("x"));
    assert_eq!(r(d, "HGET h:a nope").await, Value::Null);
    assert_eq!(r(d, "HGET h:missing f").await, Value::Null);
    assert_eq!(
        r(d, "HMGET h:a f2 nope f3").await,
        Value::List(vec![s("v2"), Value::Null, s("v3")])
    );
    let Value::List(flat) = r(d, "HGETALL h:a").await else {
        panic!("HGETALL returns a list")
    };
    let mut pairs: Vec<(String, String)> = flat
        .chunks(2)
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("f1".into(), "x".into()),
            ("f2".into(), "v2".into()),
            ("f3".into(), "v3".into())
        ]
    );
    assert_eq!(r(d, "HGETALL h:missing").await, Value::List(vec![]));
    assert_eq!(r(d, "HLEN h:a").await, i(3));
    assert_eq!(r(d, "HEXISTS h:a f2").await, i(1));
    assert_eq!(r(d, "HEXISTS h:a nope").await, i(0));
    assert_eq!(r(d, "HDEL h:a f2 nope").await, i(1));
    assert_eq!(r(d, "HINCRBY h:a count 5").await, i(5));
    assert_eq!(r(d, "HINCRBY h:a count -7").await, i(-2));
    assert_error(
        &e(d, "HINCRBY h:a f1 1").await,
        "ERR",
        "hash value is not an integer",
    );
    assert_error(
        &e(d, "HSET h:a f1").await,
        "ERR",
        "wrong number of arguments for 'hset' command",
    );
    assert_eq!(r(d, "HDEL h:a f1 f3 count").await, i(3));
    assert_eq!(r(d, "EXISTS h:a").await, i(0), "an emptied hash is deleted");
}

/// LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN.
pub async fn lists(d: &dyn StorageDriver) {
    assert_eq!(r(d, "RPUSH l:a b c").await, i(2));
    assert_eq!(r(d, "LPUSH l:a a z").await, i(4));
    assert_eq!(r(d, "LRANGE l:a 0 -1").await, list(&["z", "a", "b", "c"]));
    assert_eq!(r(d, "LRANGE l:a 1 2").await, list(&["a", "b"]));
    assert_eq!(r(d, "LRANGE l:a -2 100").await, list(&["b", "c"]));
    assert_eq!(r(d, "LRANGE l:a 5 10").await, list(&[]));
    assert_eq!(r(d, "LRANGE l:missing 0 -1").await, list(&[]));
    assert_eq!(r(d, "LLEN l:a").await, i(4));
    assert_eq!(r(d, "LPOP l:a").await, s("z"));
    assert_eq!(r(d, "RPOP l:a").await, s("c"));
    assert_eq!(r(d, "RPUSH l:a x y").await, i(4));
    assert_eq!(r(d, "LPOP l:a 2").await, list(&["a", "b"]));
    assert_eq!(r(d, "RPOP l:a 5").await, list(&["y", "x"]));
    assert_eq!(r(d, "EXISTS l:a").await, i(0), "an emptied list is deleted");
    assert_eq!(r(d, "LPOP l:a").await, Value::Null);
    assert_eq!(r(d, "LLEN l:a").await, i(0));
    assert_error(
        &e(d, "LPOP l:a -1").await,
        "ERR",
        "value is out of range, must be positive",
    );
}

/// SADD, SREM, SMEMBERS, SISMEMBER, SCARD.
pub async fn sets(d: &dyn StorageDriver) {
    assert_eq!(r(d, "SADD t:a x y z x").await, i(3));
    assert_eq!(r(d, "SADD t:a y w").await, i(1));
    assert_eq!(sorted(r(d, "SMEMBERS t:a").await), ["w", "x", "y", "z"]);
    assert_eq!(r(d, "SMEMBERS t:missing").await, list(&[]));
    assert_eq!(r(d, "SISMEMBER t:a y").await, i(1));
    assert_eq!(r(d, "SISMEMBER t:a q").await, i(0));
    assert_eq!(r(d, "SCARD t:a").await, i(4));
    assert_eq!(r(d, "SREM t:a x q").await, i(1));
    assert_eq!(r(d, "SCARD t:a").await, i(3));
    assert_eq!(r(d, "SREM t:a w y z").await, i(3));
    assert_eq!(r(d, "EXISTS t:a").await, i(0), "an emptied set is deleted");
}

/// ZADD and its flags, ZREM, ZSCORE, ZRANGE (WITHSCORES, REV, BYSCORE), ZRANGEBYSCORE, ZCARD.
pub async fn sorted_sets(d: &dyn StorageDriver) {
    assert_eq!(r(d, "ZADD z:a 1 one 2 two 3 three").await, i(3));
    assert_eq!(r(d, "ZADD z:a 1.5 one 4 four").await, i(1));
    assert_eq!(r(d, "ZADD z:a CH 1 one 4 four").await, i(1));
    assert_eq!(r(d, "ZADD z:a NX 100 one").await, i(0));
    assert_eq!(r(d, "ZADD z:a XX 100 nope").await, i(0));
    assert_eq!(r(d, "ZADD z:a GT 0 one").await, i(0));
    assert_eq!(r(d, "ZADD z:a INCR 2.5 one").await, s("3.5"));
    assert_eq!(r(d, "ZSCORE z:a one").await, s("3.5"));
    assert_eq!(r(d, "ZSCORE z:a nope").await, Value::Null);
    assert_eq!(r(d, "ZCARD z:a").await, i(4));
    assert_eq!(
        r(d, "ZRANGE z:a 0 -1").await,
        list(&["two", "three", "one", "four"])
    );
    assert_eq!(
        r(d, "ZRANGE z:a 0 1 WITHSCORES").await,
        list(&["two", "2", "three", "3"])
    );
    assert_eq!(r(d, "ZRANGE z:a 0 0 REV").await, list(&["four"]));
    assert_eq!(
        r(d, "ZRANGE z:a 2 (3.5 BYSCORE").await,
        list(&["two", "three"])
    );
    assert_eq!(
        r(d, "ZRANGEBYSCORE z:a -inf +inf LIMIT 1 2").await,
        list(&["three", "one"])
    );
    assert_eq!(
        r(d, "ZRANGEBYSCORE z:a (2 4 WITHSCORES").await,
        list(&["three", "3", "one", "3.5", "four", "4"])
    );
    assert_eq!(r(d, "ZADD z:tie 1 b 1 a 1 c").await, i(3));
    assert_eq!(
        r(d, "ZRANGE z:tie 0 -1").await,
        list(&["a", "b", "c"]),
        "ties sort by member"
    );
    assert_eq!(r(d, "ZREM z:a two nope").await, i(1));
    assert_eq!(r(d, "ZRANGE z:missing 0 -1").await, list(&[]));
    assert_error(
        &e(d, "ZADD z:a NX XX 1 a").await,
        "ERR",
        "XX and NX options at the same time are not compatible",
    );
    assert_error(
        &e(d, "ZADD z:a abc a").await,
        "ERR",
        "value is not a valid float",
    );
    assert_error(
        &e(d, "ZRANGEBYSCORE z:a x 1").await,
        "ERR",
        "min or max is not a float",
    );
}

/// KEYS, SCAN, TYPE, DBSIZE, FLUSHDB, PING, DEL, EXISTS.
pub async fn keyspace(d: &dyn StorageDriver) {
    assert_eq!(r(d, "FLUSHDB").await, s("OK"));
    assert_eq!(r(d, "DBSIZE").await, i(0));
    for n in 0..25 {
        assert_eq!(r(d, &format!("SET k:{n} v")).await, s("OK"));
    }
    assert_eq!(r(d, "HSET k:hash f v").await, i(1));
    assert_eq!(r(d, "DBSIZE").await, i(26));
    assert_eq!(
        sorted(r(d, "KEYS k:1?").await),
        (10..20).map(|n| format!("k:{n}")).collect::<Vec<_>>()
    );
    assert_eq!(sorted(r(d, "KEYS k:[2-3]").await), ["k:2", "k:3"]);

    let mut seen = Vec::new();
    let mut cursor = "0".to_owned();
    for _ in 0..100 {
        let Value::List(reply) = r(d, &format!("SCAN {cursor} MATCH k:* COUNT 7")).await else {
            panic!("SCAN returns a list")
        };
        cursor = reply[0].as_str().unwrap().to_owned();
        seen.extend(sorted(reply[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 26, "SCAN visits every key");
    let Value::List(typed) = r(d, "SCAN 0 TYPE hash COUNT 1000").await else {
        panic!("SCAN returns a list")
    };
    assert_eq!(typed[1], list(&["k:hash"]));

    assert_eq!(r(d, "TYPE k:1").await, s("string"));
    assert_eq!(r(d, "TYPE k:hash").await, s("hash"));
    assert_eq!(r(d, "TYPE k:none").await, s("none"));
    assert_eq!(r(d, "EXISTS k:1 k:1 k:none").await, i(2));
    assert_eq!(r(d, "DEL k:1 k:2 k:none").await, i(2));
    assert_eq!(r(d, "PING").await, s("PONG"));
    assert_eq!(r(d, "PING hi").await, s("hi"));
    assert_eq!(r(d, "FLUSHDB").await, s("OK"));
    assert_eq!(r(d, "DBSIZE").await, i(0));
}

/// WRONGTYPE, arity and syntax errors, as Redis words them.
pub async fn errors(d: &dyn StorageDriver) {
    assert_eq!(r(d, "SET err:str v").await, s("OK"));
    assert_eq!(r(d, "RPUSH err:list v").await, i(1));
    for wrong in [
        "LPUSH err:str x",
        "HGET err:str f",
        "GET err:list",
        "SADD err:list x",
        "ZADD err:str 1 m",
        "INCR err:list",
    ] {
        let err = e(d, wrong).await;
        assert!(matches!(err, Error::Precondition(_)), "{wrong}: {err}");
        assert_error(
            &err,
            "WRONGTYPE",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
    }
    let err = e(d, "GET").await;
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
    assert_error(&err, "ERR", "wrong number of arguments for 'get' command");
    assert_error(
        &e(d, "GET a b").await,
        "ERR",
        "wrong number of arguments for 'get' command",
    );
    assert_error(&e(d, "SET k v BOGUS").await, "ERR", "syntax error");
    assert_eq!(
        r(d, "GET err:str").await,
        s("v"),
        "failed commands change nothing"
    );
}

/// `$n` parameters bind whole binary-safe arguments.
pub async fn binary_params(d: &dyn StorageDriver) {
    let key = Value::Bytes(bytes::Bytes::from_static(b"bin:\x00key with spaces"));
    let raw = Value::Bytes(bytes::Bytes::from_static(b"\x00\xff\xfe \"quoted\" \r\n"));
    assert_eq!(
        rp(d, "SET $1 $2", &[key.clone(), raw.clone()]).await,
        s("OK")
    );
    assert_eq!(
        rp(d, "GET $1", std::slice::from_ref(&key)).await,
        raw,
        "invalid UTF-8 comes back as bytes"
    );
    assert_eq!(rp(d, "STRLEN $1", std::slice::from_ref(&key)).await, i(15));
    let injection = s("x EX 1");
    assert_eq!(
        rp(d, "SET bin:inj $1", std::slice::from_ref(&injection)).await,
        s("OK")
    );
    assert_eq!(
        r(d, "GET bin:inj").await,
        injection,
        "a parameter is one argument, never split"
    );
    assert_eq!(r(d, "TTL bin:inj").await, i(-1));
    assert_eq!(rp(d, "INCRBY bin:n $1", &[i(41)]).await, i(41));
    assert_eq!(rp(d, "SET bin:utf $1", &[s("héllo ✓")]).await, s("OK"));
    assert_eq!(r(d, "GET bin:utf").await, s("héllo ✓"));
}
