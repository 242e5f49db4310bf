//! What a statement may try against its principal's grant, as an attacker
//! would, against real PostgreSQL, Redis and FalkorDB: lifting read-only
//! (`SET TRANSACTION READ WRITE`, `COMMIT`, `set_config`, scripts,
//! blocking and admin commands), hiding a denied Redis command by quoting
//! it or running it in a script (a denied write's code: security_denied.rs).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use omnigate::config::{DriverConfig, EngineConfig, PrincipalConfig};
use omnigate_drivers::PoolSettings;
use omnigate_drivers::postgres::PostgresConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::auth::{begin, config, denied, deny, in_tx, on, principal, run, signed};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, scalar};
use tonic::Code;

/// Sets a PostgreSQL up through an open gateway: a table, and a role with
/// read privileges only for `read_only_user`.
async fn set_up_postgres(pg: &PgServer) {
    let mut open = TestGateway::with_config(pg.gateway_config()).await;
    for text in [
        "CREATE TABLE t (v int)",
        "CREATE ROLE omnigate_reader LOGIN",
        "GRANT SELECT ON t TO omnigate_reader",
    ] {
        open.client
            .execute(on("main-db", "sql", text))
            .await
            .unwrap();
    }
}

fn reader() -> PrincipalConfig {
    PrincipalConfig {
        read_only: true,
        ..principal("reader-token")
    }
}

#[tokio::test]
async fn a_read_only_principal_cannot_lift_read_only_on_postgres() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    set_up_postgres(&pg).await;
    let principals = BTreeMap::from([
        ("owner".to_owned(), principal("owner-token")),
        ("reader".to_owned(), reader()),
    ]);
    let mut config = config(&pg, &redis, principals);
    // `main-db` has a read-only role; `plain` has none (read-only
    // transactions and the refusals alone).
    let plain = PostgresConfig {
        url: Some(pg.url("postgres")),
        pool: PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
        ..PostgresConfig::default()
    };
    if let Some(DriverConfig::Postgres(main)) =
        config.engines.get_mut("main-db").map(|e| &mut e.driver)
    {
        main.read_only_user = Some("omnigate_reader".into());
    }
    config.engines.insert(
        "plain".into(),
        EngineConfig::new(DriverConfig::Postgres(plain)),
    );
    let mut gw = TestGateway::with_config(config).await;
    let c = &mut gw.client;
    for engine in ["main-db", "plain"] {
        // In a transaction: the issue's bypass, statement by statement.
        let tx = begin(c, "reader-token").await;
        let lift = run(
            c,
            "reader-token",
            in_tx(&tx, engine, "sql", "SET TRANSACTION READ WRITE"),
        );
        denied(&lift.await.unwrap_err(), "principals.reader.read_only");
        let tx = begin(c, "reader-token").await;
        let insert = run(
            c,
            "reader-token",
            in_tx(&tx, engine, "sql", "INSERT INTO t VALUES (1)"),
        );
        denied(&insert.await.unwrap_err(), "principals.reader.read_only");
        let _ = c
            .commit(signed("reader-token", pb::CommitRequest { tx_id: tx }))
            .await;
        // Outside one: every statement that changes the access mode or
        // ends the transaction it runs in.
        for lift in [
            "SET TRANSACTION READ WRITE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET default_transaction_read_only = off",
            "set local transaction_read_only to off",
            "RESET ALL",
            "COMMIT",
            "BEGIN",
            "START TRANSACTION READ WRITE",
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SELECT set_config('default_transaction_read_only', 'off', false)",
        ] {
            let status = run(c, "reader-token", on(engine, "sql", lift))
                .await
                .unwrap_err();
            denied(&status, "principals.reader.read_only");
        }
        let write = run(
            c,
            "reader-token",
            on(engine, "sql", "INSERT INTO t VALUES (2)"),
        );
        denied(&write.await.unwrap_err(), "principals.reader.read_only");
        // A request that asked read-only itself keeps its code.
        let mut asked = on(engine, "sql", "INSERT INTO t VALUES (3)");
        asked.options = Some(pb::ExecuteOptions {
            read_only: true,
            ..Default::default()
        });
        let status = run(c, "owner-token", asked).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }
    // The reader's calls log in as the read-only role: the database itself
    // holds whatever a statement says.
    let who = run(
        c,
        "reader-token",
        on("main-db", "sql", "SELECT current_user"),
    )
    .await;
    assert_eq!(
        scalar(&who.unwrap()),
        Some(pb::value::Kind::String("omnigate_reader".into()))
    );
    let tx = begin(c, "reader-token").await;
    let who = run(
        c,
        "reader-token",
        in_tx(&tx, "main-db", "sql", "SELECT current_user"),
    );
    assert_eq!(
        scalar(&who.await.unwrap()),
        Some(pb::value::Kind::String("omnigate_reader".into()))
    );
    let owner = run(
        c,
        "owner-token",
        on("main-db", "sql", "SELECT current_user"),
    )
    .await;
    assert_ne!(
        scalar(&owner.unwrap()),
        Some(pb::value::Kind::String("omnigate_reader".into()))
    );
    let count = run(
        c,
        "owner-token",
        on("main-db", "sql", "SELECT count(*)::int FROM t"),
    );
    assert_eq!(scalar(&count.await.unwrap()), Some(pb::value::Kind::Int(0)));
}

#[tokio::test]
async fn read_only_on_redis_is_what_redis_flags_read_only() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    // Both may run scripts (`@scripting`: without it every script is
    // refused, see resp_wire/attacks.rs): read-only still holds in them.
    let scripting = |p: PrincipalConfig| PrincipalConfig {
        allow_commands: vec!["@scripting".into()],
        ..p
    };
    let principals = BTreeMap::from([
        ("owner".to_owned(), scripting(principal("owner-token"))),
        ("reader".to_owned(), scripting(reader())),
    ]);
    let mut config = config(&pg, &redis, principals);
    config.engines.insert(
        "mem".into(),
        EngineConfig::new(DriverConfig::Memory(Default::default())),
    );
    let mut gw = TestGateway::with_config(config).await;
    let c = &mut gw.client;
    run(c, "owner-token", on("cache", "redis", "SET k v"))
        .await
        .unwrap();
    run(c, "owner-token", on("cache", "redis", "FUNCTION LOAD \"#!lua name=lib\nredis.register_function('w', function(keys, args) return redis.call('SET', keys[1], 'x') end)\""))
        .await
        .unwrap();
    for (text, words) in [
        (
            "EVAL \"return redis.call('SET', KEYS[1], 'x')\" 1 w",
            "EVAL_RO",
        ),
        (
            "evalsha 0123456789012345678901234567890123456789 0",
            "EVALSHA_RO",
        ),
        ("FCALL w 1 w", "FCALL_RO"),
        ("BLPOP list 1", "read_only"),
        ("BLMOVE a b LEFT RIGHT 1", "read_only"),
        ("'SET' w x", "read_only"),
        ("PUBLISH ch m", "read_only"),
        ("FUNCTION FLUSH", "allow_commands"),
        ("CONFIG SET maxmemory 1", "allow_commands"),
        ("ACL SETUSER evil on >pw +@all ~*", "allow_commands"),
        ("REPLICAOF 127.0.0.1 1", "allow_commands"),
        ("SCRIPT FLUSH", "allow_commands"),
        ("FLUSHALL", "allow_commands"),
    ] {
        let status = run(c, "reader-token", on("cache", "redis", text))
            .await
            .unwrap_err();
        denied(&status, words);
    }
    // Reads pass; a script through EVAL_RO runs, and Redis itself keeps
    // it from writing.
    let got = run(c, "reader-token", on("cache", "redis", "GET k"))
        .await
        .unwrap();
    assert_eq!(scalar(&got), Some(pb::value::Kind::String("v".into())));
    let ro = "EVAL_RO \"return redis.call('GET', KEYS[1])\" 1 k";
    run(c, "reader-token", on("cache", "redis", ro))
        .await
        .unwrap();
    let sneaky = "EVAL_RO \"return redis.call('SET', KEYS[1], 'x')\" 1 w";
    run(c, "reader-token", on("cache", "redis", sneaky))
        .await
        .unwrap_err();
    run(c, "reader-token", on("cache", "redis", "OBJECT ENCODING k"))
        .await
        .unwrap();
    // The same in a transaction and a batch.
    let tx = begin(c, "reader-token").await;
    let eval = "EVAL \"return redis.call('SET', KEYS[1], 'x')\" 1 w";
    let status = run(c, "reader-token", in_tx(&tx, "cache", "redis", eval))
        .await
        .unwrap_err();
    denied(&status, "EVAL_RO");
    let batch = pb::ExecuteBatchRequest {
        dialect: "redis".into(),
        target: "cache".into(),
        statements: vec![pb::BatchStatement {
            statement: "\"set\" w x".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let status = c
        .execute_batch(signed("reader-token", batch))
        .await
        .unwrap_err();
    denied(&status, "principals.reader.read_only");
    let exists = run(c, "owner-token", on("cache", "redis", "EXISTS w"))
        .await
        .unwrap();
    assert_eq!(
        scalar(&exists),
        Some(pb::value::Kind::Int(0)),
        "nothing written"
    );
    // The memory engine, for what it supports.
    let status = run(c, "reader-token", on("mem", "redis", "SET k v"))
        .await
        .unwrap_err();
    denied(&status, "principals.reader.read_only");
    let status = run(c, "reader-token", on("mem", "redis", "FLUSHDB"))
        .await
        .unwrap_err();
    denied(&status, "allow_commands");
    run(c, "reader-token", on("mem", "redis", "GET k"))
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_rules_match_the_parsed_command_and_deny_scripts() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let app = PrincipalConfig {
        deny: vec![deny(
            "no-redis-admin",
            "redis",
            r"^\s*(FLUSHALL|FLUSHDB|KEYS|CONFIG)\b",
        )],
        ..principal("app-token")
    };
    let scripted = PrincipalConfig {
        allow_commands: vec!["@scripting".into(), "info".into()],
        ..app.clone()
    };
    let ops = PrincipalConfig {
        allow_commands: vec!["@admin".into()],
        ..principal("ops-token")
    };
    let principals = BTreeMap::from([
        ("app".to_owned(), app),
        (
            "scripted".to_owned(),
            PrincipalConfig {
                token_sha256: principal("scripted-token").token_sha256,
                ..scripted
            },
        ),
        ("ops".to_owned(), ops),
    ]);
    let mut gw = TestGateway::with_config(config(&pg, &redis, principals)).await;
    let c = &mut gw.client;
    run(c, "app-token", on("cache", "redis", "SET k v"))
        .await
        .unwrap();
    for text in [
        "'FLUSHDB'",
        "\"KEYS\" *",
        "flushall",
        "Config get maxmemory",
        "EVAL \"return redis.call('KEYS', '*')\" 0",
        "EVAL_RO \"return redis.call('KEYS', '*')\" 0",
        "FCALL_RO f 0",
    ] {
        let status = run(c, "app-token", on("cache", "redis", text))
            .await
            .unwrap_err();
        denied(&status, "no-redis-admin");
    }
    let status = run(c, "app-token", on("cache", "redis", "INFO"))
        .await
        .unwrap_err();
    denied(&status, "principals.app.allow_commands");
    // Scripts allowed explicitly run; the rule still holds outside them.
    let script = "EVAL \"return 1\" 0";
    run(c, "scripted-token", on("cache", "redis", script))
        .await
        .unwrap();
    run(c, "scripted-token", on("cache", "redis", "INFO server"))
        .await
        .unwrap();
    let status = run(c, "scripted-token", on("cache", "redis", "'keys' *"))
        .await
        .unwrap_err();
    denied(&status, "no-redis-admin");
    // An operator allowed admin commands runs them; the key is still there
    // before.
    let exists = run(c, "ops-token", on("cache", "redis", "EXISTS k"))
        .await
        .unwrap();
    assert_eq!(scalar(&exists), Some(pb::value::Kind::Int(1)));
    run(c, "ops-token", on("cache", "redis", "CONFIG GET maxmemory"))
        .await
        .unwrap();
    run(c, "ops-token", on("cache", "redis", "FLUSHDB"))
        .await
        .unwrap();
}
