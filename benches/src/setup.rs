//! The backends, the gateway (in-process, and `omnigate serve` over
//! gRPC) and the direct drivers the workloads (see `workloads/`) run
//! against.

use std::sync::Arc;
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::Config;
use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::transport::Channel;

use crate::measure::Op;

/// Where the backends are.
pub(crate) struct Backends {
    /// PostgreSQL URL.
    pub(crate) postgres: String,
    /// Redis URL.
    pub(crate) redis: String,
    /// FalkorDB URL (`redis://`), when one is reachable.
    pub(crate) falkordb: Option<String>,
    /// VictoriaMetrics URL, when one is reachable.
    pub(crate) victoria: Option<String>,
    /// PgBouncer (transaction pooling) in front of the PostgreSQL, when
    /// one is reachable.
    pub(crate) pgbouncer: Option<String>,
    /// twemproxy in front of the Redis, when one is reachable.
    pub(crate) twemproxy: Option<String>,
    /// Servers started here, kept alive for the run.
    _local: Local,
}

impl Backends {
    /// The process id of a proxy started here whose CPU a path's calls
    /// cost: PgBouncer's for `pgbouncer`, twemproxy's for `twemproxy`.
    pub(crate) fn proxy_pid(&self, path: &str) -> Option<u32> {
        match path {
            "pgbouncer" => self._local._bouncer.as_ref().map(|b| b.pid()),
            "twemproxy" => self._local._proxy.as_ref().map(|p| p.pid()),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Local {
    _pg: Option<omnigate_tests::postgres::PgServer>,
    _redis: Option<omnigate_tests::redis::RedisServer>,
    _falkor: Option<omnigate_tests::falkordb::FalkorServer>,
    _victoria: Option<omnigate_tests::victoria::VictoriaServer>,
    _bouncer: Option<omnigate_tests::pgbouncer::PgBouncer>,
    _proxy: Option<omnigate_tests::twemproxy::Twemproxy>,
}

/// Starts an optional server; `None` (and a note) when it is not installed.
fn optional<T>(what: &str, start: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = std::panic::catch_unwind(start);
    std::panic::set_hook(quiet);
    match started {
        Ok(server) => Some(server),
        Err(why) => {
            let why = why
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| why.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            eprintln!("skipping the {what} workloads: {why}");
            None
        }
    }
}

impl Backends {
    /// Given URLs, or local servers started for the run.
    pub(crate) fn start(
        postgres: Option<String>,
        postgres_flushed: bool,
        redis: Option<String>,
        falkordb: Option<String>,
        victoria: Option<String>,
        pgbouncer: Option<String>,
        twemproxy: Option<String>,
    ) -> Backends {
        let mut local = Local::default();
        let mut pgbouncer = pgbouncer;
        let mut twemproxy = twemproxy;
        let postgres = postgres.unwrap_or_else(|| {
            let server = if postgres_flushed {
                omnigate_tests::postgres::PgServer::start_flushed()
            } else {
                omnigate_tests::postgres::PgServer::start()
            };
            let url = server.url("postgres");
            if pgbouncer.is_none() {
                let port = server.port();
                if let Some(bouncer) = optional("PgBouncer", move || {
                    omnigate_tests::pgbouncer::PgBouncer::start(port, POOL_SIZE)
                }) {
                    pgbouncer = Some(bouncer.url("postgres"));
                    local._bouncer = Some(bouncer);
                }
            }
            local._pg = Some(server);
            url
        });
        let redis = redis.unwrap_or_else(|| {
            let server = omnigate_tests::redis::RedisServer::start();
            let url = server.url(0);
            if twemproxy.is_none() {
                let port = server.port();
                if let Some(proxy) = optional("twemproxy", move || {
                    omnigate_tests::twemproxy::Twemproxy::start(port, 4)
                }) {
                    twemproxy = Some(proxy.url());
                    local._proxy = Some(proxy);
                }
            }
            local._redis = Some(server);
            url
        });
        let falkordb = falkordb.or_else(|| {
            let server = optional("graph", omnigate_tests::falkordb::FalkorServer::start)?;
            let url = server.url();
            local._falkor = Some(server);
            Some(url)
        });
        let victoria = victoria.or_else(|| {
            let server = optional(
                "time-series",
                omnigate_tests::victoria::VictoriaServer::start,
            )?;
            let url = server.url();
            local._victoria = Some(server);
            Some(url)
        });
        Backends {
            postgres,
            redis,
            falkordb,
            victoria,
            pgbouncer,
            twemproxy,
            _local: local,
        }
    }
}

/// One workload: its name, engine, and an operation per path.
pub(crate) struct Workload {
    /// e.g. `pg_point_read`.
    pub(crate) name: &'static str,
    /// `direct`, `library`, `grpc` and their operations.
    pub(crate) paths: Vec<(&'static str, Op)>,
}

/// Everything the workloads run against.
pub(crate) struct Targets {
    pub(crate) gateway: Gateway,
    grpc: Vec<GatewayClient<Channel>>,
    /// The same over the served gateway's Unix socket.
    grpc_uds: Vec<GatewayClient<Channel>>,
    channels: Vec<Channel>,
    pub(crate) pg: deadpool_postgres::Pool,
    pub(crate) redis: redis::aio::MultiplexedConnection,
    /// FalkorDB's direct connection, when it is reachable.
    pub(crate) falkor: Option<redis::aio::MultiplexedConnection>,
    /// The direct driver through PgBouncer, when it is reachable.
    pub(crate) bouncer: Option<deadpool_postgres::Pool>,
    /// The direct client through twemproxy, when it is reachable.
    pub(crate) proxy: Option<redis::aio::MultiplexedConnection>,
    /// The direct client through the served gateway's RESP front end.
    pub(crate) resp: redis::aio::MultiplexedConnection,
    /// The direct driver through the served gateway's PostgreSQL-wire
    /// front end (database: the engine `pg`).
    pub(crate) pgwire: deadpool_postgres::Pool,
    /// The SQLite driver on its own (the three-engine transaction's native
    /// commit), on an in-memory database like the gateway's `side`.
    pub(crate) sqlite: omnigate::drivers::sqlite::SqliteDriver,
    /// The direct HTTP client (VictoriaMetrics).
    pub(crate) http: reqwest::Client,
    /// VictoriaMetrics' URL, when it is reachable.
    pub(crate) victoria: Option<String>,
    /// Connection establish time per engine, p50 of several, in µs.
    pub(crate) establish_us: Vec<(String, u64)>,
    /// The `omnigate serve` process the gRPC path calls.
    pub(crate) served: crate::served::Served,
}

/// The PostgreSQL engine's name (a second `sql` engine, SQLite, takes part
/// in the three-engine transaction workload).
pub(crate) const PG: &str = "pg";

/// The SQLite engine's name.
pub(crate) const SQLITE: &str = "side";

/// The FalkorDB graph the graph workloads use.
pub(crate) const GRAPH: &str = "bench";

/// The pool size both the gateway and the direct driver get.
pub(crate) const POOL_SIZE: usize = 16;

impl Targets {
    /// Starts the gateway and its gRPC server, opens the direct drivers,
    /// and loads the data the workloads read.
    pub(crate) async fn connect(
        backends: &Backends,
        binary: &std::path::Path,
    ) -> Result<Targets, String> {
        // The library path: this config in this process. The gRPC path:
        // the same config in `omnigate serve`, a process of its own.
        let log = std::env::temp_dir().join(format!("omnigate-bench-{}.txlog", std::process::id()));
        let text = crate::served::config_text(backends, "127.0.0.1:0".parse().map_err(err)?, &log);
        let config = Config::parse(&text, &std::collections::BTreeMap::new()).map_err(err)?;
        let gateway = Gateway::builder()
            .config(config)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let server = crate::served::Served::start(binary, backends).await?;
        let mut grpc = Vec::new();
        let mut channels = Vec::new();
        for _ in 0..4 {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
                    .map_err(|e| e.to_string())?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
            channels.push(channel.clone());
            grpc.push(GatewayClient::new(channel).max_decoding_message_size(64 << 20));
        }
        let mut grpc_uds = Vec::new();
        for _ in 0..4 {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("unix:{}", server.unix.display()))
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
            grpc_uds.push(GatewayClient::new(channel).max_decoding_message_size(64 << 20));
        }
        let pg = pg_pool(&backends.postgres)?;
        let redis = redis::Client::open(backends.redis.as_str())
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let mut falkor = None;
        if let Some(url) = &backends.falkordb {
            // No response timeout: loading the graph takes a while.
            let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            let mut conn = redis::Client::open(url.as_str())
                .map_err(err)?
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(err)?;
            crate::workloads::load_graph(&mut conn)
                .await
                .map_err(|e| format!("loading the benchmark graph: {e}"))?;
            falkor = Some(conn);
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(POOL_SIZE)
            .tcp_nodelay(true)
            .build()
            .map_err(err)?;
        if let Some(url) = &backends.victoria {
            crate::workloads::load_series(&http, url).await?;
        }
        let bouncer = backends.pgbouncer.as_deref().map(pg_pool).transpose()?;
        let proxy = match &backends.twemproxy {
            Some(url) => {
                // twemproxy answers no CLIENT SETINFO: it closes the
                // connection instead.
                use redis::IntoConnectionInfo;
                let info = url.as_str().into_connection_info().map_err(err)?;
                let settings = info.redis_settings().clone().set_skip_set_lib_name();
                Some(
                    redis::Client::open(info.set_redis_settings(settings))
                        .map_err(err)?
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(err)?,
                )
            }
            None => None,
        };
        let pgwire = pg_pool(&format!(
            "postgres://bench@{}/{PG}?sslmode=disable",
            server.pgwire
        ))?;
        let resp = redis::Client::open(format!("redis://{}/", server.resp))
            .map_err(err)?
            .get_multiplexed_async_connection()
            .await
            .map_err(err)?;
        let sqlite =
            omnigate::drivers::sqlite::SqliteDriver::open("direct-side", Default::default())
                .await
                .map_err(err)?;
        let bench_tx = omnigate::drivers::Statement::new("CREATE TABLE bench_tx (v INTEGER)");
        for driver in [
            &sqlite as &dyn omnigate::drivers::StorageDriver,
            gateway
                .router()
                .by_name(SQLITE)
                .map_err(err)?
                .driver
                .as_ref(),
        ] {
            driver
                .execute(
                    omnigate::drivers::Dialect::Sql,
                    &bench_tx,
                    &Default::default(),
                )
                .await
                .map_err(err)?;
        }
        grpc[0]
            .clone()
            .execute(pb::ExecuteRequest {
                dialect: "sql".into(),
                target: SQLITE.into(),
                statement: bench_tx.text.clone(),
                ..pb::ExecuteRequest::default()
            })
            .await
            .map_err(err)?;
        let targets = Targets {
            sqlite,
            bouncer,
            proxy,
            resp,
            pgwire,
            gateway,
            grpc,
            grpc_uds,
            channels,
            pg,
            redis,
            falkor,
            http,
            victoria: backends.victoria.clone(),
            establish_us: crate::measure::establish_times(backends).await,
            served: server,
        };
        targets.load().await?;
        Ok(targets)
    }

    async fn load(&self) -> Result<(), String> {
        let client = self.pg.get().await.map_err(|e| e.to_string())?;
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_accounts, bench_events;
                 CREATE TABLE bench_accounts (id int8 PRIMARY KEY, name text NOT NULL, balance numeric(12,2) NOT NULL);
                 INSERT INTO bench_accounts SELECT i, 'account ' || i, i * 1.5 FROM generate_series(1, 10000) AS i;
                 CREATE TABLE bench_events (id bigserial PRIMARY KEY, account int8 NOT NULL, note text NOT NULL);
                 ANALYZE bench_accounts;",
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut redis = self.redis.clone();
        let small = "x".repeat(100);
        let large = "y".repeat(10_000);
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.set(format!("bench:100b:{i}"), &small).ignore();
        }
        for i in 0..100 {
            pipe.set(format!("bench:10kb:{i}"), &large).ignore();
        }
        pipe.query_async::<()>(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The gateway's pools: (engine, connections created, acquired).
    pub(crate) async fn gateway_pools(&self) -> Vec<(String, u64, u64)> {
        self.gateway
            .engines(&omnigate::CallContext::anonymous())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.pool.created, e.pool.acquired))
            .collect()
    }

    /// One of the gRPC channels, round-robin.
    pub(crate) fn channel(&self, n: u64) -> Channel {
        self.channels[(n % self.channels.len() as u64) as usize].clone()
    }

    /// A gRPC client, round-robin over the channels.
    pub(crate) fn grpc(&self, n: u64) -> GatewayClient<Channel> {
        self.grpc[(n % self.grpc.len() as u64) as usize].clone()
    }

    /// A gRPC client over the Unix socket, round-robin over its channels.
    pub(crate) fn grpc_uds(&self, n: u64) -> GatewayClient<Channel> {
        self.grpc_uds[(n % self.grpc_uds.len() as u64) as usize].clone()
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every workload whose engine is reachable.
pub(crate) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    crate::workloads::all(t)
}

/// How long to warm up before measuring.
pub(crate) fn warmup(duration: Duration) -> Duration {
    (duration / 5).max(Duration::from_millis(200))
}

/// A pool of the direct driver's connections to `url`, as large as the
/// gateway's.
fn pg_pool(url: &str) -> Result<deadpool_postgres::Pool, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| e.to_string())?;
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager)
        .max_size(POOL_SIZE)
        .build()
        .map_err(err)
}
