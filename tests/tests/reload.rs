//! Reloading the config while clients call: the file gains an engine,
//! loses another and changes a third (and a limit); no call in flight
//! fails, new calls see the new config, and a broken file, or one whose
//! new engine cannot start, changes nothing. Principals follow a reload.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use omnigate::config::{Config, ProcessEnv};
use omnigate_proto::v1 as pb;
use omnigate_tests::auth::{self, on, principal, signed};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, free_port, in_tx, request};
use tonic::Code;
use tonic::transport::Channel;

type Client = pb::gateway_client::GatewayClient<Channel>;

/// The config file: `main-db` (4 connections), `old-db` and `cache`; or,
/// after, `main-db` (6 connections: rebuilt), `cache` (unchanged),
/// `new-mem` (added), `old-db` gone, and at most 2 rows per Execute.
fn config_text(dir: &Path, pg: &PgServer, redis: &RedisServer, after: bool) -> String {
    let (rows, main_connections) = if after { (2, 6) } else { (1000, 4) };
    let mut text = format!(
        r#"
[server]
default_max_rows = {rows}

[transactions]
log = "{log}"

[engines.main-db]
kind = "postgres"
url = "{url}"
max_connections = {main_connections}

[engines.cache]
kind = "redis"
url = "{redis}"
"#,
        log = dir.join("tx.log").display(),
        url = pg.url("postgres"),
        redis = redis.url(0),
    );
    if after {
        text.push_str("\n[engines.new-mem]\nkind = \"memory\"\n");
    } else {
        text.push_str(&format!(
            "\n[engines.old-db]\nkind = \"postgres\"\nmax_connections = 2\nurl = \"{}\"\n",
            pg.url("postgres")
        ));
    }
    text
}

async fn engine_names(client: &mut Client) -> Vec<String> {
    let engines = client
        .list_engines(pb::ListEnginesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .engines;
    engines.into_iter().map(|e| e.name).collect()
}

/// Calls `statement` on `target` until `stop`; every failure, in order.
fn caller(
    mut client: Client,
    target: &'static str,
    dialect: &'static str,
    statement: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, Vec<tonic::Status>)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match client.execute(on(target, dialect, statement)).await {
                Ok(_) => ok += 1,
                Err(status) => failed.push(status),
            }
        }
        (ok, failed)
    })
}

#[tokio::test]
async fn a_reload_under_load_adds_removes_and_changes_engines_without_failing_a_call() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnigate.toml");
    std::fs::write(&path, config_text(dir.path(), &pg, &redis, false)).unwrap();
    let config = Config::load(&path, &ProcessEnv).unwrap();
    let mut gw = TestGateway::with_config(config).await;
    let watcher = omnigate::watch_config(
        gw.gateway.clone(),
        Some(path.clone()),
        Duration::from_millis(50),
        |p| Config::load(p, &ProcessEnv),
    );
    exec(
        &mut gw.client,
        on("main-db", "sql", "CREATE TABLE r (id int PRIMARY KEY)"),
    )
    .await;
    let wide = "SELECT generate_series(1, 5)";
    exec(&mut gw.client, on("main-db", "sql", wide)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let callers = [
        caller(
            gw.client.clone(),
            "main-db",
            "sql",
            "SELECT 1",
            stop.clone(),
        ),
        caller(
            gw.client.clone(),
            "cache",
            "redis",
            "INCR hits",
            stop.clone(),
        ),
        caller(gw.client.clone(), "old-db", "sql", "SELECT 1", stop.clone()),
    ];
    // Work in flight across the swap: a slow call on the engine being
    // rebuilt and one on the engine being removed, and a transaction open
    // on the engine being rebuilt.
    let slow = |target: &'static str| {
        let mut client = gw.client.clone();
        tokio::spawn(async move {
            client
                .execute(on(target, "sql", "SELECT pg_sleep(1.5)"))
                .await
        })
    };
    let (slow_main, slow_old) = (slow("main-db"), slow("old-db"));
    let tx = begin_tx(&mut gw.client, None).await;
    let mut insert = in_tx(&tx, "sql", "INSERT INTO r VALUES (1)", vec![]);
    insert.target = "main-db".into();
    exec(&mut gw.client, insert).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    std::fs::write(&path, config_text(dir.path(), &pg, &redis, true)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !engine_names(&mut gw.client)
        .await
        .contains(&"new-mem".to_owned())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the changed file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        engine_names(&mut gw.client).await,
        ["cache", "main-db", "new-mem"],
        "ListEngines shows the new engines at once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    // What was in flight finished, on the engines it started on.
    slow_main.await.unwrap().expect("the slow call on main-db");
    slow_old.await.unwrap().expect("the slow call on old-db");
    commit_tx(&mut gw.client, &tx).await.unwrap();
    let [main, cache, old] = callers;
    let (main, cache, old) = (
        main.await.unwrap(),
        cache.await.unwrap(),
        old.await.unwrap(),
    );
    assert!(main.1.is_empty(), "main-db calls failed: {:?}", main.1);
    assert!(cache.1.is_empty(), "cache calls failed: {:?}", cache.1);
    assert!(
        main.0 > 0 && cache.0 > 0 && old.0 > 0,
        "{main:?} {cache:?} {old:?}"
    );
    // The removed engine: served until the swap, then NOT_FOUND (a new
    // call), nothing else.
    assert!(!old.1.is_empty(), "calls on old-db after the reload");
    for status in &old.1 {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.message().contains("old-db"), "{status:?}");
    }

    // New calls see the new config.
    let mut set = on("new-mem", "redis", "SET k v");
    exec(&mut gw.client, set.clone()).await;
    set.statement = "GET k".into();
    let got = exec(&mut gw.client, set).await;
    assert_eq!(
        omnigate_tests::scalar(&got),
        Some(omnigate_tests::s("v").kind.unwrap())
    );
    let capped = gw
        .client
        .execute(on("main-db", "sql", wide))
        .await
        .unwrap_err();
    assert!(
        capped.message().contains("more than 2 rows"),
        "the new row limit: {capped:?}"
    );
    let row = exec(
        &mut gw.client,
        on("main-db", "sql", "SELECT count(*) FROM r"),
    )
    .await;
    assert_eq!(
        omnigate_tests::scalar(&row),
        Some(pb::value::Kind::Int(1)),
        "the transaction committed"
    );

    // A broken file changes nothing (and the watcher keeps watching).
    std::fs::write(&path, "[engines.main-db\nkind = ").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        engine_names(&mut gw.client).await,
        ["cache", "main-db", "new-mem"]
    );
    exec(&mut gw.client, on("main-db", "sql", "SELECT 1")).await;
    // Nor does a file whose new engine cannot start; the error names it.
    let mut unreachable = config_text(dir.path(), &pg, &redis, true);
    unreachable.push_str(&format!(
        "\n[engines.dead-db]\nkind = \"postgres\"\nurl = \"postgres://x@127.0.0.1:{}/x\"\nconnect_timeout = \"1s\"\n",
        free_port()
    ));
    let refused = gw
        .gateway
        .reload(Config::parse(&unreachable, &ProcessEnv).unwrap())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("dead-db"), "{refused}");
    assert_eq!(
        engine_names(&mut gw.client).await,
        ["cache", "main-db", "new-mem"]
    );
    // And a valid file is taken again after the broken one.
    std::fs::write(&path, config_text(dir.path(), &pg, &redis, false)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !engine_names(&mut gw.client)
        .await
        .contains(&"old-db".to_owned())
    {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    exec(&mut gw.client, on("main-db", "sql", wide)).await;
    watcher.abort();
}

#[tokio::test]
async fn a_reload_replaces_principals_and_names_settings_that_need_a_restart() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = auth::config(
        &pg,
        &redis,
        BTreeMap::from([("alice".to_owned(), principal("alice-token"))]),
    );
    let gw = TestGateway::with_config(config.clone()).await;
    let mut client = gw.client.clone();
    let call = || signed("alice-token", request("sql", "SELECT 1", vec![]));
    let ask = on("main", "sql", "SELECT 1");
    client
        .execute(signed("alice-token", ask.clone()))
        .await
        .unwrap();

    config.principals = BTreeMap::from([("bob".to_owned(), principal("bob-token"))]);
    config.server.listen = "127.0.0.1:1".parse().unwrap();
    let done = gw.gateway.reload(config).await.unwrap();
    assert!(done.principals);
    assert!(
        done.need_restart.contains(&"server.listen".to_owned()),
        "{done:?}"
    );
    assert!(done.added.is_empty() && done.removed.is_empty() && done.changed.is_empty());
    let revoked = client.execute(call()).await.unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated, "{revoked:?}");
    client.execute(signed("bob-token", ask)).await.unwrap();
    // The listener did not move.
    assert_ne!(gw.addr().port(), 1);
}

#[tokio::test]
async fn a_reload_never_opens_a_public_listener() {
    let mut config = Config {
        principals: BTreeMap::from([("alice".to_owned(), principal("alice-token"))]),
        ..Config::default()
    };
    config.server.listen = "0.0.0.0:0".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = omnigate::Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    config.principals.clear();
    let refused = gateway.reload(config.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("allow_anonymous"), "{refused}");
    assert!(!gateway.security().is_open(), "alice stays");

    // Principals only from a tokens file, and a reload dropping the file:
    // refused all the same (before, only the config's own were counted).
    let tokens = dir.path().join("tokens.toml");
    let hash = omnigate::security::tokens::to_hex(&omnigate::security::tokens::hash("bob-token"));
    std::fs::write(
        &tokens,
        format!("[principals.bob]\ntoken_sha256 = \"{hash}\"\n"),
    )
    .unwrap();
    config.security.tokens_file = Some(tokens);
    gateway.reload(config.clone()).await.unwrap();
    assert!(!gateway.security().is_open());
    config.security.tokens_file = None;
    let refused = gateway.reload(config).await.unwrap_err();
    assert!(refused.to_string().contains("allow_anonymous"), "{refused}");
    assert!(!gateway.security().is_open(), "bob stays");
}

#[tokio::test]
async fn a_codec_change_keeps_the_engine_and_metrics_follow_the_engines() {
    use omnigate::codec::{Binding, Format};
    use omnigate::config::{DriverConfig, EngineConfig};
    let mut config = Config::default();
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let mut gw = TestGateway::with_config(config.clone()).await;
    let metrics = gw.handle.metrics_addr().unwrap();
    let mut set = on("cache", "redis", "SET kept yes");
    exec(&mut gw.client, set.clone()).await;

    config.engines.get_mut("cache").unwrap().bindings = vec![Binding {
        pattern: "session:*".into(),
        codec: Format::Msgpack,
        compress_above: 1024,
    }];
    config.engines.insert(
        "extra".into(),
        EngineConfig::new(DriverConfig::Memory(Default::default())),
    );
    let done = gw.gateway.reload(config.clone()).await.unwrap();
    assert_eq!(done.changed, ["cache"], "{done:?}");
    assert_eq!(done.added, ["extra"], "{done:?}");
    let (scrape, _) = omnigate_tests::metrics::scrape_at(metrics).await;
    assert!(
        omnigate_tests::metrics::value(&scrape, "omnigate_engine_up", &[("engine", "extra")])
            .is_some(),
        "the new engine's metrics at once"
    );
    // The memory engine kept its data: its driver was kept, not rebuilt.
    set.statement = "GET kept".into();
    let got = exec(&mut gw.client, set).await;
    assert_eq!(
        omnigate_tests::scalar(&got),
        Some(omnigate_tests::s("yes").kind.unwrap())
    );
    let described = gw
        .gateway
        .describe(omnigate::DescribeRequest {
            target: Some("cache".into()),
            dialect: None,
            name: None,
            context: omnigate::CallContext::anonymous(),
        })
        .await
        .unwrap();
    assert!(
        described
            .objects
            .iter()
            .any(|o| o.kind == "binding" && o.name == "session:*"),
        "the new binding: {:?}",
        described.objects
    );

    config.engines.remove("extra");
    let done = gw.gateway.reload(config).await.unwrap();
    assert_eq!(done.removed, ["extra"]);
    let (scrape, _) = omnigate_tests::metrics::scrape_at(metrics).await;
    assert!(
        omnigate_tests::metrics::value(&scrape, "omnigate_engine_up", &[("engine", "extra")])
            .is_none(),
        "a removed engine leaves the metrics"
    );
}
