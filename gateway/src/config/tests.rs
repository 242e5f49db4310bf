use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn empty_config_is_the_embedded_default() {
    let config = Config::parse("", &env(&[])).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:50051");
    assert!(matches!(
        config.engines.get("cache"),
        Some(EngineConfig {
            driver: DriverConfig::Memory(_),
            ..
        })
    ));
    assert!(
        matches!(config.engines.get("main").map(|e| &e.driver), Some(DriverConfig::Sqlite(s)) if s.path == ":memory:")
    );
}

#[test]
fn reads_typed_values() {
    let text = r#"
        [server]
        listen = "127.0.0.1:6000"
        default_timeout = "1500ms"
        shutdown_grace = "2s"

        [log]
        format = "json"

        [engines.main-db]
        kind = "sqlite"
        path = "/tmp/x.sqlite3"
        max_connections = 2
        acquire_timeout = "250ms"
    "#;
    let config = Config::parse(text, &env(&[])).unwrap();
    assert_eq!(config.server.listen.port(), 6000);
    assert_eq!(config.server.default_timeout, Duration::from_millis(1500));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(
        config.engines.len(),
        1,
        "a configured engine list replaces the default"
    );
    let DriverConfig::Sqlite(db) = &config.engines["main-db"].driver else {
        panic!("sqlite expected")
    };
    assert_eq!(db.pool.max_connections, 2);
    assert_eq!(db.pool.acquire_timeout, Duration::from_millis(250));
    assert_eq!(
        db.busy_timeout,
        Duration::from_secs(5),
        "unset fields keep their defaults"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_line() {
    let err = Config::parse(
        "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 5\n",
        &env(&[]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("listen_port"), "{text}");
    assert!(text.contains("line 3"), "{text}");

    let err = Config::parse("[engines.c]\nkind = \"memory\"\nsize = 1\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
}

#[test]
fn unknown_engine_kinds_and_bad_durations_are_errors() {
    let err = Config::parse("[engines.x]\nkind = \"mysql\"\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("mysql"), "{err}");
    let err = Config::parse("[server]\ndefault_timeout = \"soon\"\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("default_timeout"), "{err}");
    let err = Config::parse("[engines.x]\npath = \"a\"\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
}

#[test]
fn pool_keys_are_read_for_every_kind_and_unknown_keys_beside_them_refused() {
    let text = r#"
        [engines.db]
        kind = "postgres"
        max_connections = 8
        acquire_timeout = "2s"
        min_idle = 2

        [engines.cache]
        kind = "redis"
        max_connections = 3
        connect_timeout = "750ms"
        backoff_base = "50ms"
        backoff_max = "2s"
    "#;
    let config = Config::parse(text, &env(&[])).unwrap();
    let DriverConfig::Postgres(pg) = &config.engines["db"].driver else {
        panic!("postgres expected")
    };
    assert_eq!(
        pg.pool,
        omnigate_drivers::PoolSettings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(2),
            ..omnigate_drivers::postgres::PostgresConfig::default().pool
        }
    );
    assert_eq!(pg.min_idle, 2);
    let DriverConfig::Redis(redis) = &config.engines["cache"].driver else {
        panic!("redis expected")
    };
    assert_eq!(
        redis.pool,
        omnigate_drivers::PoolSettings {
            max_connections: 3,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_millis(750),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    );

    // An unknown key beside pool keys, in either order.
    for text in [
        "[engines.db]\nkind = \"postgres\"\nmax_connections = 8\nacquire_timout = \"2s\"\n",
        "[engines.db]\nkind = \"postgres\"\nacquire_timout = \"2s\"\nmax_connections = 8\n",
    ] {
        let err = Config::parse(text, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown field `acquire_timout`"), "{err}");
        assert!(
            err.contains("`acquire_timeout`"),
            "the pool keys are named: {err}"
        );
    }
    // A pool key the kind does not take is unknown to it, as before.
    let err = Config::parse(
        "[engines.main]\nkind = \"sqlite\"\nbackoff_max = \"1s\"\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `backoff_max`"), "{err}");
    // A bad value names its key; a zero wait is refused by validation.
    let err = Config::parse(
        "[engines.cache]\nkind = \"redis\"\nacquire_timeout = \"soon\"\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("acquire_timeout"), "{err}");
    let err = Config::parse(
        "[engines.cache]\nkind = \"redis\"\nacquire_timeout = \"0s\"\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("engines.cache.acquire_timeout"), "{err}");
}

#[test]
fn invalid_values_are_errors_naming_the_field() {
    let err = Config::parse(
        "[engines.db]\nkind = \"sqlite\"\nmax_connections = 0\n",
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("engines.db.max_connections"),
        "{err}"
    );
    let err = Config::parse("[engines.\"a b\"]\nkind = \"memory\"\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("engine name"), "{err}");
}

#[test]
fn environment_overrides_win_and_are_typed() {
    let text = "[engines.main-db]\nkind = \"sqlite\"\n";
    let vars = env(&[
        ("OMNIGATE__SERVER__LISTEN", "0.0.0.0:7000"),
        ("OMNIGATE__ENGINES__MAIN_DB__MAX_CONNECTIONS", "9"),
        ("OMNIGATE__ENGINES__MAIN_DB__PATH", "\"123\""),
        ("UNRELATED", "x"),
    ]);
    let config = Config::parse(text, &vars).unwrap();
    assert_eq!(config.server.listen.port(), 7000);
    let DriverConfig::Sqlite(db) = &config.engines["main-db"].driver else {
        panic!("sqlite expected")
    };
    assert_eq!(db.pool.max_connections, 9);
    assert_eq!(db.path, "123", "a quoted value stays a string");
}

#[test]
fn environment_overrides_with_unknown_keys_are_errors() {
    let err = Config::parse("", &env(&[("OMNIGATE__SERVER__NOPE", "1")])).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = Config::parse("", &env(&[("OMNIGATE____X", "1")])).unwrap_err();
    assert!(err.to_string().contains("OMNIGATE____X"), "{err}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnigate.toml");
    std::fs::write(&path, "[server]\nbogus = 1\n").unwrap();
    let err = Config::load(&path, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("omnigate.toml"), "{err}");
    let err = Config::load(&dir.path().join("missing.toml"), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn postgres_engines_by_url_or_fields_with_the_password_from_the_environment() {
    let text = "[engines.main-db]\nkind = \"postgres\"\nhost = \"db.internal\"\nport = 6543\nuser = \"app\"\ndatabase = \"shop\"\nmax_connections = 8\nrecycling = \"verified\"\ntls = \"require\"\nca_file = \"/etc/ca.pem\"\n";
    let vars = env(&[("OMNIGATE__ENGINES__MAIN_DB__PASSWORD", "s3cret")]);
    let config = Config::parse(text, &vars).unwrap();
    let DriverConfig::Postgres(pg) = &config.engines["main-db"].driver else {
        panic!("postgres expected")
    };
    assert_eq!(pg.url(), "postgres://app@db.internal:6543/shop");
    let driver = pg;
    assert_eq!(
        driver
            .password
            .as_ref()
            .map(omnigate_drivers::Secret::expose),
        Some("s3cret")
    );
    assert_eq!(driver.pool.max_connections, 8);
    assert_eq!(
        driver.recycling,
        omnigate_drivers::postgres::Recycling::Verified
    );
    assert_eq!(driver.tls, omnigate_drivers::postgres::Tls::Require);
    assert!(driver.ca_file.is_some());
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "Debug never shows the password"
    );
    assert!(
        !format!("{driver:?}").contains("s3cret"),
        "Debug never shows the password"
    );

    let socket = Config::parse(
        "[engines.db]\nkind = \"postgres\"\nhost = \"/run/postgresql\"\n",
        &env(&[]),
    )
    .unwrap();
    let DriverConfig::Postgres(pg) = &socket.engines["db"].driver else {
        panic!("postgres expected")
    };
    assert_eq!(
        pg.url(),
        "postgres://postgres@%2Frun%2Fpostgresql:5432/postgres"
    );
}

#[test]
fn bad_postgres_settings_name_the_key() {
    for (text, key) in [
        (
            "[engines.db]\nkind = \"postgres\"\nurl = \"postgres://a@b/c\"\nhost = \"x\"\n",
            "not both",
        ),
        (
            "[engines.db]\nkind = \"postgres\"\nurl = \"mysql://a@b/c\"\n",
            "engines.db.url",
        ),
        (
            "[engines.db]\nkind = \"postgres\"\nmax_connections = 2\nmin_idle = 3\n",
            "engines.db.max_connections",
        ),
        (
            "[engines.db]\nkind = \"postgres\"\nca_file = \"/x.pem\"\n",
            "engines.db.ca_file",
        ),
        (
            "[engines.db]\nkind = \"postgres\"\nrecycling = \"sometimes\"\n",
            "sometimes",
        ),
    ] {
        let err = Config::parse(text, &env(&[])).unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
}

#[test]
fn redis_engines_with_bindings_tls_and_resp3() {
    let text = "[engines.cache]\nkind = \"redis\"\nurl = \"rediss://cache.internal:6380\"\ndatabase = 2\nprotocol = \"resp3\"\nca_file = \"/etc/ca.pem\"\n\n[[engines.cache.bindings]]\npattern = \"session:*\"\ncodec = \"msgpack\"\n\n[[engines.cache.bindings]]\npattern = \"profile:*\"\ncodec = \"protobuf\"\ncompress_above = 256\n";
    let config =
        Config::parse(text, &env(&[("OMNIGATE__ENGINES__CACHE__PASSWORD", "pw")])).unwrap();
    let DriverConfig::Redis(redis) = &config.engines["cache"].driver else {
        panic!("redis expected")
    };
    let bindings = &config.engines["cache"].bindings;
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0].compress_above, 1024, "the default threshold");
    assert_eq!(bindings[1].compress_above, 256);
    let driver = redis;
    assert_eq!(
        (
            driver.database,
            driver
                .password
                .as_ref()
                .map(omnigate_drivers::Secret::expose)
        ),
        (2, Some("pw"))
    );
    assert_eq!(driver.protocol, omnigate_drivers::redis::Protocol::Resp3);
    for (bad, key) in [
        (
            "[engines.c]\nkind = \"redis\"\nurl = \"http://x\"\n",
            "engines.c.url",
        ),
        (
            "[engines.c]\nkind = \"redis\"\nca_file = \"/x\"\n",
            "engines.c.ca_file",
        ),
        (
            "[engines.c]\nkind = \"memory\"\n[[engines.c.bindings]]\npattern = \"\"\ncodec = \"msgpack\"\n",
            "engines.c.bindings",
        ),
        (
            "[engines.c]\nkind = \"memory\"\n[[engines.c.bindings]]\npattern = \"x\"\ncodec = \"json\"\n",
            "json",
        ),
    ] {
        let err = Config::parse(bad, &env(&[])).unwrap_err();
        assert!(err.to_string().contains(key), "{bad}: {err}");
    }
}

#[test]
fn codec_settings_go_only_on_engines_that_store_through_codecs() {
    let err = Config::parse(
        "[engines.db]\nkind = \"sqlite\"\n[[engines.db.bindings]]\npattern = \"x\"\ncodec = \"msgpack\"\n",
        &env(&[]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("engines.db.bindings"), "{err}");
    let err = Config::parse(
        "[engines.c]\nkind = \"redis\"\nproperties = { codec = \"msgpack\" }\n",
        &env(&[]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("properties"), "{err}");
    let graph = Config::parse(
        "[engines.g]\nkind = \"falkordb\"\nproperties = { codec = \"protobuf\", compress_above = 64 }\n",
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        graph.engines["g"].properties.codec,
        crate::codec::Format::Protobuf
    );
    assert_eq!(graph.engines["g"].driver.kind(), "falkordb");
}

#[test]
fn the_transaction_log_is_a_file_or_a_postgresql_engine() {
    let location = |text: &str| {
        let config = Config::parse(text, &env(&[]))?;
        Ok::<_, ConfigError>(config.transactions.location(&config.engines).unwrap())
    };
    // The embedded default: a file beside the process.
    assert_eq!(
        location("").unwrap(),
        LogLocation::File(DEFAULT_LOG_FILE.into())
    );
    let one_pg = r#"
        [engines.main-db]
        kind = "postgres"
        url = "postgres://u@localhost/db"
    "#;
    // Exactly one PostgreSQL engine: a table in it.
    assert_eq!(
        location(one_pg).unwrap(),
        LogLocation::Table("main-db".into())
    );
    let file = format!("[transactions]\nlog = \"/var/lib/omnigate/tx.log\"\n{one_pg}");
    assert_eq!(
        location(&file).unwrap(),
        LogLocation::File("/var/lib/omnigate/tx.log".into())
    );
    let two_pg = format!(
        "{one_pg}\n[engines.other]\nkind = \"postgres\"\nurl = \"postgres://u@h/d\"\n\
         [transactions]\nlog = \"other\"\ntakeover_after = \"2m\"\nstep_timeout = \"5s\""
    );
    let config = Config::parse(&two_pg, &env(&[])).unwrap();
    assert_eq!(config.transactions.takeover_after, Duration::from_secs(120));
    assert_eq!(config.transactions.step_timeout, Duration::from_secs(5));
    assert_eq!(
        config.transactions.location(&config.engines).unwrap(),
        LogLocation::Table("other".into())
    );
    // Naming an engine that is not PostgreSQL says what to fix.
    let wrong = "[transactions]\nlog = \"cache\"\n[engines.cache]\nkind = \"memory\"\n";
    let err = Config::parse(wrong, &env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("transactions.log: engine cache is not PostgreSQL"),
        "{err}"
    );
}

#[test]
fn a_log_that_looks_like_a_name_must_name_an_engine() {
    let pg = "[engines.orders]\nkind = \"postgres\"\nurl = \"postgres://u@localhost/db\"\n";
    let typo = format!("[transactions]\nlog = \"oders\"\n{pg}");
    let err = Config::parse(&typo, &env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("\"oders\" is no engine's name (did you mean \"orders\"? engines: orders)"),
        "{err}"
    );
    assert!(err.contains("e.g. \"./oders.log\""), "{err}");
    let far = format!("[transactions]\nlog = \"ledger\"\n{pg}");
    let err = Config::parse(&far, &env(&[])).unwrap_err().to_string();
    assert!(!err.contains("did you mean"), "{err}");
    for path in ["./oders", "oders.log"] {
        let file = format!("[transactions]\nlog = \"{path}\"\n{pg}");
        let config = Config::parse(&file, &env(&[])).unwrap();
        assert_eq!(
            config.transactions.location(&config.engines).unwrap(),
            LogLocation::File(path.into())
        );
    }
}

#[test]
fn otlp_export_is_read() {
    let text = "[tracing]\notlp_endpoint = \"http://127.0.0.1:4317\"\nservice_name = \"gw\"\n";
    let config = Config::parse(text, &env(&[])).unwrap();
    assert_eq!(config.tracing.service_name, "gw");
    assert_eq!(
        Config::parse("", &env(&[])).unwrap().tracing.otlp_endpoint,
        None
    );
}

#[test]
fn the_redis_front_end_names_an_engine_of_the_redis_dialect() {
    let config = Config::parse(
        "[frontends.redis]\nlisten = \"127.0.0.1:6380\"\ntarget = \"cache\"\nidle_timeout = \"90s\"\n",
        &env(&[]),
    )
    .unwrap();
    let redis = config.frontends.redis.expect("the section is read");
    assert_eq!(redis.target, "cache");
    assert_eq!(redis.idle_timeout, Duration::from_secs(90));
    assert_eq!(redis.max_connections, 1024);
    assert_eq!(Config::parse("", &env(&[])).unwrap().frontends.redis, None);

    let err = Config::parse(
        "[frontends.redis]\nlisten = \"127.0.0.1:6380\"\ntarget = \"nope\"\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("frontends.redis.target: no engine nope") && err.contains("cache"),
        "{err}"
    );
    let err = Config::parse(
        "[frontends.redis]\nlisten = \"127.0.0.1:6380\"\ntarget = \"main\"\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("engine main is a sqlite engine, which does not serve the redis dialect"),
        "{err}"
    );
    let err = Config::parse(
        "[frontends.redis]\nlisten = \"127.0.0.1:6380\"\ntarget = \"cache\"\nmax_connections = 0\n",
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("frontends.redis.max_connections"), "{err}");
}
