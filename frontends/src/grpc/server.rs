//! Runs the gRPC server: the Gateway service, standard health (overall and
//! one `omnigate.engine.<name>` per engine) and reflection, message size
//! limits, and graceful shutdown within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use omnigate_proto::v1::gateway_server::GatewayServer;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::grpc::GatewayService;
use omnigate::Gateway;
use omnigate::config::{Reflection, RuntimeKind, ServerConfig};
use tonic::service::interceptor::InterceptedService;

/// The runtime `config` asks for (`runtime`, `worker_threads`), for
/// `omnigate serve` to run on.
pub fn runtime(config: &ServerConfig) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match config.runtime {
        RuntimeKind::MultiThread => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if config.worker_threads > 0 {
                builder.worker_threads(config.worker_threads);
            }
            builder
        }
        RuntimeKind::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()
}

/// The health service name of an engine.
pub fn engine_health_name(engine: &str) -> String {
    format!("omnigate.engine.{engine}")
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Unix socket could not be bound.
    #[error("cannot listen on the Unix socket {}: {source}", path.display())]
    BindUnix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// No principals are configured and the listener is not loopback.
    #[error(
        "refusing to listen on {addr} without principals: anyone who can reach it could run any \
         statement on every engine. Configure [principals.*] (`omnigate token new NAME`), listen \
         on 127.0.0.1, or set [security] allow_anonymous = true (local use only)"
    )]
    Anonymous {
        /// The address.
        addr: SocketAddr,
    },
    /// The TLS certificate, key or client CA could not be loaded.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The transport failed.
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The Redis-protocol listener could not start.
    #[error(transparent)]
    Redis(#[from] crate::resp::StartError),
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    /// The Unix socket served beside TCP, removed when the handle goes.
    unix_socket: Option<super::unix::UnixSocket>,
    shutdown: watch::Sender<bool>,
    cancel_calls: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    health: HealthReporter,
    health_task: JoinHandle<()>,
    /// Reloads the TLS certificate when its files change.
    tls_task: Option<JoinHandle<()>>,
    /// The `/metrics` endpoint: its address and task.
    metrics_server: Option<(SocketAddr, JoinHandle<()>)>,
    /// The PostgreSQL-wire listener, when `[frontends.postgres]` is set.
    postgres: Option<crate::postgres::PostgresFrontend>,
    /// The Redis-protocol listener, when `[frontends.redis]` is set.
    redis: Option<crate::resp::RedisFrontend>,
    gateway: Gateway,
}

/// Starts serving `gateway` on `config.listen` (port 0 picks a free port).
pub async fn start(gateway: Gateway, config: &ServerConfig) -> Result<ServerHandle, ServeError> {
    let addr = config.listen;
    let security = Arc::clone(gateway.security());
    if security.is_open() {
        // Every listener: an open gateway answers anyone who reaches one.
        let public = std::iter::once(addr)
            .chain(gateway.frontends().listens())
            .find(|a| !a.ip().is_loopback());
        if let Some(addr) = public
            && !security.config().allow_anonymous
        {
            return Err(ServeError::Anonymous { addr });
        }
        tracing::warn!(
            %addr,
            "no principals are configured: every caller may run any statement on every engine"
        );
    }
    if !security.is_open() && security.config().tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "principals are configured but the listener has no TLS: bearer tokens cross the \
             network in the clear; configure [security.tls] (or terminate TLS in front)"
        );
    }
    let bind = |source| ServeError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
    let local_addr = listener.local_addr().map_err(bind)?;
    let tls = match &security.config().tls {
        Some(config) => Some(crate::tls::Tls::new(config).map_err(ServeError::Tls)?),
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GatewayServer<GatewayService>>().await;
    let engines = update_engine_health(&gateway, &health, Vec::new()).await;
    let health_task = tokio::spawn(watch_health(
        gateway.clone(),
        health.clone(),
        config.health_interval,
        engines.clone(),
    ));

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(omnigate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let reflection_v1 = reflection.build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(omnigate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Reflection is open, or asks for the same credentials as the calls.
    let reflection_guard = {
        let gateway = gateway.clone();
        let open = match security.config().reflection {
            Reflection::Open => true,
            Reflection::Authenticated => false,
            Reflection::Auto => security.is_open(),
        };
        move |request: tonic::Request<()>| {
            if !open {
                crate::grpc::caller(&gateway, request.metadata(), request.extensions())?;
            }
            Ok(request)
        }
    };
    let reflection_v1 = InterceptedService::new(reflection_v1, reflection_guard.clone());
    let reflection_v1alpha = InterceptedService::new(reflection_v1alpha, reflection_guard);

    let (cancel_calls, cancel_rx) = watch::channel(false);
    let service = GatewayServer::new(GatewayService::new(
        gateway.clone(),
        config.max_response_bytes,
        cancel_rx,
    ))
    .max_decoding_message_size(config.max_request_bytes)
    .max_encoding_message_size(config.max_response_bytes.saturating_add(64 << 10));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let unix = match &config.unix_socket {
        Some(path) => Some(
            super::unix::UnixSocket::bind(path, config.unix_socket_mode).map_err(|source| {
                ServeError::BindUnix {
                    path: path.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let mut metrics = omnigate::metrics::Metrics::new(&gateway);
    let grpc_metrics = crate::grpc::metrics::GrpcMetrics::register(metrics.registry_mut());
    let connections = crate::connections::ConnectionMetrics::register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    let metrics_server = match gateway.metrics_listen() {
        Some(addr) => {
            let bind = |source| ServeError::Bind { addr, source };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
            let bound = listener.local_addr().map_err(bind)?;
            tracing::info!(addr = %bound, "metrics at /metrics");
            Some((bound, crate::metrics::serve(listener, Arc::clone(&metrics))))
        }
        None => None,
    };
    let router = tonic::transport::Server::builder()
        .layer(crate::grpc::metrics::GrpcMetricsLayer(grpc_metrics))
        .layer(crate::grpc::deadline::DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    // The socket is served by the same services and layers; it is local,
    // so TLS is not asked of it.
    let (unix_socket, unix_serving) = match unix {
        Some((socket, listener)) => {
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let serving = router
                .clone()
                .serve_with_incoming_shutdown(incoming, stopped(shutdown_rx.clone()));
            tracing::info!(path = %socket.path().display(), "omnigate listening on a Unix socket");
            (Some(socket), Some(serving))
        }
        None => (None, None),
    };
    let stop = stopped(shutdown_rx);
    let (tcp, tls_task) = match &tls {
        Some(tls) => {
            let watcher = tls.watch(security.config().reload_poll);
            let incoming = tls.incoming(listener);
            let tcp = Box::pin(router.serve_with_incoming_shutdown(incoming, stop)) as Serving;
            (tcp, Some(watcher))
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let tcp = Box::pin(router.serve_with_incoming_shutdown(incoming, stop)) as Serving;
            (tcp, None)
        }
    };
    let server = tokio::spawn(async move {
        match unix_serving {
            Some(unix) => tokio::try_join!(tcp, unix).map(drop),
            None => tcp.await,
        }
    });
    let postgres = match &gateway.frontends().postgres {
        Some(frontend) => {
            let acceptor = tls.as_ref().map(|t| t.acceptor(&[b"postgresql"]));
            let addr = frontend.listen;
            Some(
                crate::postgres::start(
                    gateway.clone(),
                    frontend,
                    acceptor,
                    connections.clone(),
                    config.max_request_bytes,
                )
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
            )
        }
        None => None,
    };
    let redis = match &gateway.frontends().redis {
        Some(frontend) => {
            let acceptor = match (&tls, frontend.tls) {
                (Some(tls), true) => Some(tls.acceptor(&[])),
                _ => None,
            };
            Some(
                crate::resp::start(gateway.clone(), frontend, acceptor, connections.clone())
                    .await?,
            )
        }
        None => None,
    };
    tracing::info!(%local_addr, tls = tls.is_some(), engines = ?engines, "omnigate listening");
    Ok(ServerHandle {
        local_addr,
        unix_socket,
        shutdown,
        cancel_calls,
        server,
        health,
        health_task,
        tls_task,
        metrics_server,
        postgres,
        redis,
        gateway,
    })
}

/// Sets each engine's health status, and clears those of engines a
/// reload took out (`before`: the names set last time); the names set now.
async fn update_engine_health(
    gateway: &Gateway,
    health: &HealthReporter,
    before: Vec<String>,
) -> Vec<String> {
    let engines = gateway.all_engines().await;
    for gone in before
        .iter()
        .filter(|name| !engines.iter().any(|e| &e.name == *name))
    {
        // (The reporter is a handle on shared state.)
        health
            .clone()
            .clear_service_status(&engine_health_name(gone))
            .await;
    }
    let router = gateway.router();
    for engine in &engines {
        let mut drained = false;
        if let Ok(entry) = router.by_name(&engine.name) {
            let up = matches!(engine.health, omnigate_drivers::Health::Serving);
            entry.counters.calls.set_up(up);
            drained = entry.service.is_draining();
        }
        let status = match &engine.health {
            // Drained on purpose: not serving, so that balancers and
            // probes route around it.
            _ if drained => ServingStatus::NotServing,
            omnigate_drivers::Health::Serving => ServingStatus::Serving,
            omnigate_drivers::Health::NotServing(why) => {
                tracing::warn!(engine = %engine.name, reason = %why, "engine not serving");
                ServingStatus::NotServing
            }
        };
        health
            .set_service_status(engine_health_name(&engine.name), status)
            .await;
    }
    engines.into_iter().map(|e| e.name).collect()
}

async fn watch_health(
    gateway: Gateway,
    health: HealthReporter,
    every: Duration,
    mut names: Vec<String>,
) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        names = update_engine_health(&gateway, &health, names).await;
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Unix socket gRPC is served on as well, when it is configured.
    pub fn unix_socket(&self) -> Option<&std::path::Path> {
        self.unix_socket.as_ref().map(|s| s.path())
    }

    /// The address of the PostgreSQL-wire listener, when it is configured.
    pub fn postgres_addr(&self) -> Option<SocketAddr> {
        self.postgres.as_ref().map(|p| p.addr())
    }

    /// The address of the Redis-protocol listener, when it is configured.
    pub fn redis_addr(&self) -> Option<SocketAddr> {
        self.redis.as_ref().map(|r| r.addr())
    }

    /// The address of the `/metrics` endpoint, when it is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(addr, _)| *addr)
    }

    /// Stops accepting calls, lets in-flight calls finish for up to
    /// `grace`, then stops. Returns whether everything finished in time.
    pub async fn shutdown(self, grace: Duration) -> Result<bool, ServeError> {
        self.health_task.abort();
        if let Some(task) = &self.tls_task {
            task.abort();
        }
        if let Some((_, task)) = &self.metrics_server {
            task.abort();
        }
        if let Some(postgres) = &self.postgres {
            postgres.stop();
        }
        if let Some(redis) = &self.redis {
            redis.stop();
        }
        self.health
            .set_not_serving::<GatewayServer<GatewayService>>()
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for engine in self.gateway.router().engines() {
            self.health
                .set_service_status(engine_health_name(engine.name()), ServingStatus::NotServing)
                .await;
        }
        let _ = self.shutdown.send(true);
        let mut server = self.server;
        if let Ok(finished) = tokio::time::timeout(grace, &mut server).await {
            return match finished {
                Ok(result) => result.map(|()| true).map_err(ServeError::from),
                Err(join) => {
                    tracing::error!(error = %join, "the server task failed");
                    Ok(false)
                }
            };
        }
        tracing::warn!(
            ?grace,
            "in-flight calls did not finish within the grace period; cancelling them"
        );
        let _ = self.cancel_calls.send(true);
        if tokio::time::timeout(CANCEL_BOUND, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        Ok(false)
    }
}

/// A listener's serving future.
type Serving = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
>;

/// How long cancelled calls get to unwind before the server is dropped.
const CANCEL_BOUND: Duration = Duration::from_secs(2);

/// Serves until `signal` resolves, then shuts down gracefully.
pub async fn serve(
    gateway: Gateway,
    config: &ServerConfig,
    signal: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let handle = start(gateway, config).await?;
    signal.await;
    tracing::info!("shutting down");
    let clean = handle.shutdown(config.shutdown_grace).await?;
    tracing::info!(clean, "stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
