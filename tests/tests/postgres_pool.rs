//! The postgres engine's pool against a real PostgreSQL server: deadlines
//! that cancel on the server, many tasks on a small pool, warm-up and
//! retirement, abandoned calls, and a server that is down or restarts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::conformance::value;
use omnigate_drivers::postgres::{PostgresConfig, PostgresDriver};
use omnigate_drivers::{
    Dialect, Error, ExecuteOptions, Health, PoolSettings, Statement, StorageDriver, Value,
};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::signal_pid;

#[tokio::test]
async fn a_deadline_cancels_the_statement_on_the_server_and_the_pool_stays_healthy() {
    let server = PgServer::start();
    let config = pooled(&server, 1);
    let d = PostgresDriver::connect("pg", config).await.unwrap();
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(200)),
        ..ExecuteOptions::default()
    };
    for _ in 0..3 {
        let err = d
            .execute(
                Dialect::Sql,
                &Statement::new("SELECT pg_sleep(30)"),
                &options,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)),
            "{err}"
        );
        // The cancelled connection was replaced at once.
        let active = value(
            &d,
            Dialect::Sql,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
            &[],
        )
        .await;
        assert_eq!(
            active,
            Value::Int(0),
            "the sleeping query was cancelled on the server"
        );
    }
    let stats = d.pool_stats();
    // A connection a cancel was sent to never serves another call (a late
    // cancel must not hit someone else's query): each timeout replaced it.
    assert_eq!(
        stats.created, 4,
        "each cancelled connection was replaced: {stats:?}"
    );
    assert_eq!(d.health().await, Health::Serving);
}

/// The server's engine config with a pool of `max` connections.
fn pooled(server: &PgServer, max: usize) -> PostgresConfig {
    PostgresConfig {
        pool: PoolSettings {
            max_connections: max,
            ..PoolSettings::default()
        },
        ..server.engine_config()
    }
}

/// The driver bounds its own call (the gateway arms no second timer for
/// it): a server process that answers nothing, not even the cancel, ends
/// the call with `Timeout` by the deadline and the cancel's margin, and
/// its connection never serves again.
#[tokio::test]
async fn a_server_process_that_never_answers_ends_the_call_by_its_deadline() {
    let server = PgServer::start();
    let config = pooled(&server, 1);
    let d = PostgresDriver::connect("pg", config).await.unwrap();
    assert!(d.bounds_execute());
    let Value::Int(pid) = value(&d, Dialect::Sql, "SELECT pg_backend_pid()::int8", &[]).await
    else {
        panic!("a pid");
    };
    let pid = u32::try_from(pid).unwrap();
    signal_pid(pid, "STOP");
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(200)),
        ..ExecuteOptions::default()
    };
    let one = Statement::new("SELECT 1");
    let started = std::time::Instant::now();
    let call = d.execute(Dialect::Sql, &one, &options);
    let ended = tokio::time::timeout(Duration::from_secs(30), call).await;
    let took = started.elapsed();
    signal_pid(pid, "CONT");
    let err = ended.expect("the call ended by itself").unwrap_err();
    // The deadline (0.2 s) and the cancel's margin (1 s), with room for a
    // loaded machine: not the 30 s guard.
    assert!(took < Duration::from_secs(10), "ended after {took:?}");
    assert!(
        matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)),
        "{err}"
    );
    let next = d
        .execute(
            Dialect::Sql,
            &Statement::new("SELECT 7"),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(next.rows[0][0], Value::Int(7));
    assert_eq!(
        d.pool_stats().created,
        2,
        "the stalled connection was replaced"
    );
}

/// A call waiting for a connection ends at its own deadline, not at the
/// pool's (longer) acquire timeout nor when the connection comes free.
#[tokio::test]
async fn a_call_waiting_for_a_connection_ends_at_its_deadline() {
    let server = PgServer::start();
    let config = PostgresConfig {
        pool: PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(60),
            ..PoolSettings::default()
        },
        ..server.engine_config()
    };
    let d = Arc::new(PostgresDriver::connect("pg", config).await.unwrap());
    let holder = {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            let sleep = Statement::new("SELECT pg_sleep(60)");
            d.execute(Dialect::Sql, &sleep, &ExecuteOptions::default())
                .await
        })
    };
    // The holder has the one connection once its query runs.
    let running = "SELECT count(*)::int8 FROM pg_stat_activity WHERE wait_event = 'PgSleep'";
    let probe = PostgresDriver::connect("probe", server.engine_config())
        .await
        .unwrap();
    while value(&probe, Dialect::Sql, running, &[]).await != Value::Int(1) {
        assert!(!holder.is_finished(), "the holder's query ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(200)),
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Sql, &Statement::new("SELECT 1"), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)),
        "{err}"
    );
    assert!(
        !holder.is_finished(),
        "the waiting call ended before the connection came free"
    );
    // Free the connection: the holder's query is cancelled.
    let cancel = "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'";
    value(&probe, Dialect::Sql, cancel, &[]).await;
    assert!(holder.await.unwrap().is_err(), "the holder was cancelled");
}

#[tokio::test]
async fn many_tasks_share_a_small_pool_without_deadlock() {
    let server = PgServer::start();
    let d = Arc::new(
        PostgresDriver::connect(
            "pg",
            PostgresConfig {
                pool: PoolSettings {
                    max_connections: 3,
                    ..PoolSettings::default()
                },
                ..server.engine_config()
            },
        )
        .await
        .unwrap(),
    );
    value(
        d.as_ref(),
        Dialect::Sql,
        "CREATE TABLE hits (task int, n int)",
        &[],
    )
    .await;
    let tasks = (0..48).map(|task| {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            for n in 0..10 {
                let statement = Statement::new("INSERT INTO hits VALUES ($1, $2)")
                    .bind(task)
                    .bind(n);
                d.execute(Dialect::Sql, &statement, &ExecuteOptions::default())
                    .await
                    .unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    assert_eq!(
        value(d.as_ref(), Dialect::Sql, "SELECT count(*) FROM hits", &[]).await,
        Value::Int(480)
    );
    let stats = d.pool_stats();
    assert!(stats.created <= 3, "{stats:?}");
    assert!(stats.acquired >= 481, "{stats:?}");
    let reuse = 1.0 - stats.created as f64 / stats.acquired as f64;
    assert!(reuse > 0.99, "connections are reused: {stats:?}");
}

#[tokio::test]
async fn a_restarted_server_fails_calls_fast_then_recovers_by_itself() {
    let mut server = PgServer::start();
    let d = server.engine().await;
    server.kill();
    // The test server runs with fsync off, so what was written before the
    // kill may be gone; only the connection is checked.
    omnigate_tests::outage_then_recovery(&d, Dialect::Sql, "SELECT 1", || server.restart()).await;
}

#[tokio::test]
async fn a_server_that_is_down_at_startup_is_a_clear_error() {
    let config = PostgresConfig {
        url: Some(format!(
            "postgres://omnigate@127.0.0.1:{}/postgres",
            omnigate_tests::free_port()
        )),
        pool: PoolSettings {
            connect_timeout: Duration::from_secs(2),
            ..PostgresConfig::default().pool
        },
        ..PostgresConfig::default()
    };
    let err = PostgresDriver::connect("pg", config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("cannot connect to PostgreSQL"),
        "{err}"
    );
}

#[tokio::test]
async fn the_pool_warms_up_verifies_and_retires_connections() {
    let server = PgServer::start();
    let verified = PostgresConfig {
        pool: PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        },
        min_idle: 3,
        recycling: omnigate_drivers::postgres::Recycling::Verified,
        ..server.engine_config()
    };
    let d = PostgresDriver::connect("pg", verified).await.unwrap();
    let stats = d.pool_stats();
    assert_eq!(
        (stats.size, stats.idle, stats.created),
        (3, 3, 3),
        "min_idle connections are open at startup: {stats:?}"
    );

    // Connections the server dropped are replaced before a caller sees them.
    let killed = value(&d, Dialect::Sql, "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = 'omnigate' AND pid <> pg_backend_pid()", &[]).await;
    assert_eq!(killed, Value::Int(2));
    for _ in 0..6 {
        assert_eq!(
            value(&d, Dialect::Sql, "SELECT 1", &[]).await,
            Value::Int(1)
        );
    }

    // Connections past their max lifetime are replaced.
    let short = PostgresConfig {
        pool: PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
        min_idle: 1,
        max_lifetime: Some(Duration::from_millis(200)),
        ..server.engine_config()
    };
    let d = PostgresDriver::connect("short", short).await.unwrap();
    let first = value(&d, Dialect::Sql, "SELECT pg_backend_pid()", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = value(&d, Dialect::Sql, "SELECT pg_backend_pid()", &[]).await;
    assert_ne!(first, second, "an old connection was replaced");
    assert_eq!(d.pool_stats().created, 2);
}

#[tokio::test]
async fn a_connection_whose_call_was_abandoned_never_serves_another() {
    // PostgreSQL cancels whatever a backend runs when a cancel arrives, so a
    // connection that may still get one leaves the pool.
    let server = PgServer::start();
    let d = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            pool: PoolSettings {
                max_connections: 1,
                ..PoolSettings::default()
            },
            min_idle: 1,
            ..server.engine_config()
        },
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let sleep = Statement::new("SELECT pg_sleep(5)");
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            d.execute(Dialect::Sql, &sleep, &ExecuteOptions::default()),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up while the query ran");
        let next = d
            .execute(
                Dialect::Sql,
                &Statement::new("SELECT pg_sleep(0.3), 7"),
                &ExecuteOptions::default(),
            )
            .await;
        assert_eq!(
            next.unwrap().rows[0][1],
            Value::Int(7),
            "the next call is untouched by the late cancel"
        );
    }
    assert_eq!(
        d.pool_stats().created,
        4,
        "each abandoned connection was replaced"
    );
    let sleeping = "SELECT count(*)::int8 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'";
    let mut cancelled = false;
    for _ in 0..50 {
        if value(&d, Dialect::Sql, sleeping, &[]).await == Value::Int(0) {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cancelled,
        "the abandoned queries were cancelled on the server"
    );
}

#[tokio::test]
async fn statements_with_their_values_in_the_text_do_not_pile_up_on_a_connection() {
    let server = PgServer::start();
    let config = pooled(&server, 1);
    let d = PostgresDriver::connect("pg", config).await.unwrap();
    let options = ExecuteOptions::default();
    let count = Statement::new("SELECT count(*) FROM pg_prepared_statements");
    let held = async || {
        let held = d.execute(Dialect::Sql, &count, &options).await.unwrap();
        match held.rows[0][0] {
            Value::Int(held) => held,
            _ => panic!("a count: {:?}", held.rows),
        }
    };
    // 1,000 texts, each run once (pgbench -S sends its reads so): each
    // on a statement of its own, closed after it.
    for i in 0..1_000 {
        let one = Statement::new(format!("SELECT {i} AS once"));
        let result = d.execute(Dialect::Sql, &one, &options).await.unwrap();
        assert_eq!(result.rows, vec![vec![Value::Int(i)]]);
    }
    let after_once = held().await;
    assert!(
        after_once <= 2,
        "{after_once} statements left prepared by texts run once"
    );
    // 1,000 texts, each run twice: cached from the second run, and the
    // one connection's server process holds a bounded number of them.
    for i in 0..1_000 {
        let twice = Statement::new(format!("SELECT {i} AS twice"));
        for _ in 0..2 {
            let result = d.execute(Dialect::Sql, &twice, &options).await.unwrap();
            assert_eq!(result.rows, vec![vec![Value::Int(i)]]);
        }
    }
    let after_twice = held().await;
    assert!(
        (100..=514).contains(&after_twice),
        "{after_twice} statements prepared"
    );
}
