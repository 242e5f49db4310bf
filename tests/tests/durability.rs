//! The engines say, at startup, when their servers would lose what they
//! acknowledge (a committed transaction's parts among it), by their own
//! settings; and say nothing when the settings keep it (Redis; a
//! PostgreSQL with fsync on is not started here: the tests run it off).
#![allow(clippy::unwrap_used)]

use omnigate_drivers::StorageDriver;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

#[tokio::test]
async fn redis_without_an_append_only_file_is_said_and_with_one_is_not() {
    let volatile = RedisServer::start();
    let warning = volatile.driver().await.durability().await.unwrap();
    assert!(warning.contains("appendonly"), "{warning}");
    let durable = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    assert_eq!(durable.driver().await.durability().await, None);
    let lazy = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "no"]);
    let warning = lazy.driver().await.durability().await.unwrap();
    assert!(warning.contains("appendfsync"), "{warning}");
}

#[tokio::test]
async fn postgres_that_does_not_keep_its_commits_is_said() {
    // The tests' PostgreSQL runs with synchronous_commit and fsync off; the
    // crash trials' with synchronous_commit on (a killed process keeps
    // them) and fsync still off (a killed machine would not).
    let fast = PgServer::start();
    let warning = fast.engine().await.durability().await.unwrap();
    assert!(warning.contains("synchronous_commit"), "{warning}");
    let durable = PgServer::start_durable();
    let warning = durable.engine().await.durability().await.unwrap();
    assert!(warning.contains("fsync = off"), "{warning}");
}
