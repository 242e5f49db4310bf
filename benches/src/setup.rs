//! The backends, the gateway (in-process and over gRPC) and the direct
//! drivers, and the workloads as operations on each path.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use omnigate::config::{Config, EngineConfig, PostgresEngineConfig, RedisEngineConfig};
use omnigate::{BatchRequest, Gateway, Request};
use omnigate_drivers::{Statement, Value};
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
    /// Servers started here, kept alive for the run.
    _local: (
        Option<omnigate_tests::postgres::PgServer>,
        Option<omnigate_tests::redis::RedisServer>,
    ),
}

impl Backends {
    /// Given URLs, or local servers started for the run.
    pub(crate) fn start(postgres: Option<String>, redis: Option<String>) -> Backends {
        let pg = postgres
            .is_none()
            .then(omnigate_tests::postgres::PgServer::start);
        let rs = redis
            .is_none()
            .then(omnigate_tests::redis::RedisServer::start);
        Backends {
            postgres: postgres
                .unwrap_or_else(|| pg.as_ref().map(|s| s.url("postgres")).unwrap_or_default()),
            redis: redis.unwrap_or_else(|| rs.as_ref().map(|s| s.url(0)).unwrap_or_default()),
            _local: (pg, rs),
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
    gateway: Gateway,
    grpc: Vec<GatewayClient<Channel>>,
    pg: deadpool_postgres::Pool,
    redis: redis::aio::MultiplexedConnection,
    _server: omnigate::server::ServerHandle,
}

/// The pool size both the gateway and the direct driver get.
pub(crate) const POOL_SIZE: usize = 16;

impl Targets {
    /// Starts the gateway and its gRPC server, opens the direct drivers,
    /// and loads the data the workloads read.
    pub(crate) async fn connect(backends: &Backends) -> Result<Targets, String> {
        let mut config = Config::default();
        config.engines.clear();
        config.server.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        config.server.default_max_rows = 1_000_000;
        config.engines.insert(
            "pg".into(),
            EngineConfig::Postgres(PostgresEngineConfig {
                url: Some(backends.postgres.clone()),
                max_connections: POOL_SIZE,
                min_idle: POOL_SIZE,
                ..PostgresEngineConfig::default()
            }),
        );
        config.engines.insert(
            "cache".into(),
            EngineConfig::Redis(RedisEngineConfig {
                url: backends.redis.clone(),
                max_connections: 4,
                ..RedisEngineConfig::default()
            }),
        );
        let gateway = Gateway::builder()
            .config(config.clone())
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let server = omnigate::server::start(gateway.clone(), &config.server)
            .await
            .map_err(|e| e.to_string())?;
        let mut grpc = Vec::new();
        for _ in 0..4 {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://{}", server.local_addr()))
                    .map_err(|e| e.to_string())?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
            grpc.push(GatewayClient::new(channel).max_decoding_message_size(64 << 20));
        }
        let pg_config: tokio_postgres::Config = backends
            .postgres
            .parse()
            .map_err(|e: tokio_postgres::Error| e.to_string())?;
        let manager = deadpool_postgres::Manager::new(pg_config, tokio_postgres::NoTls);
        let pg = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| e.to_string())?;
        let redis = redis::Client::open(backends.redis.as_str())
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let targets = Targets {
            gateway,
            grpc,
            pg,
            redis,
            _server: server,
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
            .engines()
            .await
            .into_iter()
            .map(|e| (e.name, e.pool.created, e.pool.acquired))
            .collect()
    }

    fn grpc(&self, n: u64) -> GatewayClient<Channel> {
        self.grpc[(n % self.grpc.len() as u64) as usize].clone()
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A SQL workload on the three paths: `sql` with one int8 parameter.
fn sql_workload(
    t: &Arc<Targets>,
    name: &'static str,
    sql: &'static str,
    param: fn(u64) -> i64,
) -> Workload {
    let direct: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let t = Arc::clone(&t);
            async move {
                let client = t.pg.get().await.map_err(err)?;
                let statement = client.prepare_cached(sql).await.map_err(err)?;
                let id = param(n);
                client
                    .query(&statement, &[&id])
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let library: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let t = Arc::clone(&t);
            async move {
                t.gateway
                    .execute(Request::new("sql", sql).param(param(n)))
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let grpc: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = t.grpc(n);
            async move {
                let request = pb::ExecuteRequest {
                    dialect: "sql".into(),
                    statement: sql.into(),
                    params: vec![pb::Value {
                        kind: Some(pb::value::Kind::Int(param(n))),
                    }],
                    ..Default::default()
                };
                client.execute(request).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    Workload {
        name,
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    }
}

/// A Redis workload: `args(n)` are the command's arguments.
fn redis_workload(t: &Arc<Targets>, name: &'static str, args: fn(u64) -> Vec<String>) -> Workload {
    let direct: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut conn = t.redis.clone();
            async move {
                let args = args(n);
                let mut cmd = redis::cmd(&args[0]);
                for arg in &args[1..] {
                    cmd.arg(arg);
                }
                cmd.query_async::<redis::Value>(&mut conn)
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let statement = |args: &[String]| {
        let placeholders: Vec<String> = (1..args.len()).map(|i| format!("${i}")).collect();
        (
            format!("{} {}", args[0], placeholders.join(" ")),
            args[1..].to_vec(),
        )
    };
    let library: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let t = Arc::clone(&t);
            async move {
                let (text, params) = statement(&args(n));
                let mut request = Request::new("redis", text);
                request.params = params.into_iter().map(Value::String).collect();
                t.gateway.execute(request).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    let grpc: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = t.grpc(n);
            async move {
                let (text, params) = statement(&args(n));
                let request = pb::ExecuteRequest {
                    dialect: "redis".into(),
                    statement: text,
                    params: params
                        .into_iter()
                        .map(|p| pb::Value {
                            kind: Some(pb::value::Kind::String(p)),
                        })
                        .collect(),
                    ..Default::default()
                };
                client.execute(request).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    Workload {
        name,
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    }
}

/// An 8-command Redis pipeline: one round trip on every path.
fn redis_pipeline(t: &Arc<Targets>) -> Workload {
    let keys = |n: u64| (0..8).map(move |i| format!("bench:100b:{}", (n * 8 + i) % 1000));
    let direct: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut conn = t.redis.clone();
            async move {
                let mut pipe = redis::pipe();
                for key in keys(n) {
                    pipe.get(key);
                }
                pipe.query_async::<Vec<redis::Value>>(&mut conn)
                    .await
                    .map_err(err)
                    .map(drop)
            }
            .boxed()
        })
    };
    let library: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let t = Arc::clone(&t);
            async move {
                let batch = BatchRequest {
                    dialect: "redis".into(),
                    statements: keys(n).map(|k| Statement::new("GET $1").bind(k)).collect(),
                    ..BatchRequest::default()
                };
                t.gateway.execute_batch(batch).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    let grpc: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = t.grpc(n);
            async move {
                let request = pb::ExecuteBatchRequest {
                    dialect: "redis".into(),
                    statements: keys(n)
                        .map(|k| pb::BatchStatement {
                            statement: "GET $1".into(),
                            params: vec![pb::Value {
                                kind: Some(pb::value::Kind::String(k)),
                            }],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                client.execute_batch(request).await.map_err(err).map(drop)
            }
            .boxed()
        })
    };
    Workload {
        name: "redis_pipeline_8",
        paths: vec![("direct", direct), ("library", library), ("grpc", grpc)],
    }
}

/// Every workload.
pub(crate) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    vec![
        sql_workload(
            t,
            "pg_point_read",
            "SELECT id, name, balance FROM bench_accounts WHERE id = $1",
            |n| (n % 10_000) as i64 + 1,
        ),
        sql_workload(
            t,
            "pg_insert",
            "INSERT INTO bench_events (account, note) VALUES ($1, 'bench')",
            |n| (n % 10_000) as i64 + 1,
        ),
        sql_workload(
            t,
            "pg_read_100",
            "SELECT id, name, balance FROM bench_accounts WHERE id BETWEEN $1 AND $1 + 99",
            |n| (n % 9_900) as i64 + 1,
        ),
        redis_workload(t, "redis_get_100b", |n| {
            vec!["GET".into(), format!("bench:100b:{}", n % 1000)]
        }),
        redis_workload(t, "redis_set_100b", |n| {
            vec![
                "SET".into(),
                format!("bench:set:{}", n % 1000),
                "z".repeat(100),
            ]
        }),
        redis_workload(t, "redis_get_10kb", |n| {
            vec!["GET".into(), format!("bench:10kb:{}", n % 100)]
        }),
        redis_pipeline(t),
    ]
}

/// How long to warm up before measuring.
pub(crate) fn warmup(duration: Duration) -> Duration {
    (duration / 5).max(Duration::from_millis(200))
}
