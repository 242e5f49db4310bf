//! Test support for Omnigate's end-to-end tests: an in-process gateway
//! serving gRPC on a free loopback port, with a connected client.
//!
//! Real backends run as local processes: [`postgres::PgServer`],
//! [`redis::RedisServer`], [`falkordb::FalkorServer`].
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod auth;
pub mod binary;
pub mod certs;
pub mod crash;
pub mod driver;
pub mod falkordb;
pub mod library;
pub mod metrics;
pub mod pgbouncer;
pub mod postgres;
pub mod python;
pub mod redis;
pub mod soak;
pub mod spikes;
pub mod twemproxy;
pub mod victoria;

use std::net::SocketAddr;
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::Config;
use omnigate_frontends::grpc::server::{self, ServerHandle};
use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::transport::Channel;

/// What a program printed: its standard output, then its standard error,
/// as text (for assertions and their messages).
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The path of `program` on `PATH` (or in /usr/bin, /usr/sbin, /usr/local/bin);
/// panics naming the Debian `package` that provides it.
pub(crate) fn find_program(program: &str, package: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join(program))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("{program} not found: install the Debian package {package} (apt-get install -y {package}), or run ./scripts/test.sh as root")
        })
}

/// Waits until a server started as `child` is `ready`; panics with its
/// log if it exits first or is not ready within 30 s.
pub(crate) fn wait_ready(
    what: &str,
    child: &mut std::process::Child,
    ready: impl Fn() -> bool,
    log: impl Fn() -> String,
) {
    let started = std::time::Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}: {}", log());
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what} did not answer: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a server's process at once and reaps it.
pub(crate) fn kill_now(child: Option<std::process::Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a server process, to stall it and
/// let it go on as a hung machine would.
pub(crate) fn signal(child: Option<&std::process::Child>, signal: &str) {
    send_signal(child.expect("the server is running"), signal);
}

/// Sends `signal` (`"TERM"`, `"HUP"`, ...) to `child`.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    signal_pid(child.id(), signal);
}

/// Sends `signal` to the process `pid` (e.g. one PostgreSQL connection's
/// server process).
pub fn signal_pid(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("the kill command runs");
    assert!(sent.success(), "kill -{signal} {pid} failed");
}

/// Connects to a server on loopback `port` and sends `request`, for a
/// readiness probe to read the answer (within 1 s); `None` when the
/// server is not listening yet.
pub(crate) fn ask(port: u16, request: &[u8]) -> Option<std::net::TcpStream> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    stream.write_all(request).ok()?;
    Some(stream)
}

/// What ListEngines reports for the engine called `name`; panics naming
/// it when the gateway does not list it.
pub async fn engine(client: &mut GatewayClient<Channel>, name: &str) -> pb::EngineInfo {
    let engines = client
        .list_engines(pb::ListEnginesRequest {})
        .await
        .expect("ListEngines answers")
        .into_inner()
        .engines;
    engines
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no engine {name} in ListEngines"))
}

/// A gateway serving gRPC on 127.0.0.1 (a free port), and a client for it.
#[derive(Debug)]
pub struct TestGateway {
    /// The running server.
    pub handle: ServerHandle,
    /// A connected client.
    pub client: GatewayClient<Channel>,
    /// The in-process gateway behind the server.
    pub gateway: Gateway,
    /// Holds the transaction log, when the config left it at its default.
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    /// Starts the embedded default configuration.
    pub async fn start() -> TestGateway {
        Self::with_config(Config::default()).await
    }

    /// Starts `config`, listening on a free loopback port.
    pub async fn with_config(mut config: Config) -> TestGateway {
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        // Each gateway its own transaction log (a gateway locks its log).
        let dir = tempfile::tempdir().expect("a temp dir");
        if config.transactions.log.is_none() {
            config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
        }
        let gateway = Gateway::builder()
            .config(config.clone())
            .build()
            .await
            .expect("the gateway starts");
        let handle = server::start(gateway.clone(), &config.server)
            .await
            .expect("the server starts");
        let client = GatewayClient::new(channel(handle.local_addr()).await)
            .max_decoding_message_size(64 << 20);
        TestGateway {
            handle,
            client,
            gateway,
            dir,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A new channel to the server.
    pub async fn channel(&self) -> Channel {
        channel(self.addr()).await
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the client connects")
}

/// A proto value.
pub fn v(kind: pb::value::Kind) -> pb::Value {
    pb::Value { kind: Some(kind) }
}

/// A proto string value.
pub fn s(text: &str) -> pb::Value {
    v(pb::value::Kind::String(text.to_owned()))
}

/// A proto int value.
pub fn i(n: i64) -> pb::Value {
    v(pb::value::Kind::Int(n))
}

/// An ExecuteRequest without options.
pub fn request(dialect: &str, statement: &str, params: Vec<pb::Value>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        dialect: dialect.to_owned(),
        statement: statement.to_owned(),
        params,
        ..Default::default()
    }
}

/// An ExecuteRequest inside transaction `tx_id`.
pub fn in_tx(
    tx_id: &str,
    dialect: &str,
    statement: &str,
    params: Vec<pb::Value>,
) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        tx_id: tx_id.to_owned(),
        ..request(dialect, statement, params)
    }
}

/// Begins a transaction (idle timeout: `idle`, or the server's); its id.
pub async fn begin_tx(
    client: &mut GatewayClient<Channel>,
    idle: Option<std::time::Duration>,
) -> String {
    let idle_timeout = idle.map(|d| prost_types::Duration::try_from(d).expect("a short duration"));
    client
        .begin(pb::BeginRequest {
            idle_timeout,
            read_only: false,
        })
        .await
        .expect("Begin succeeds")
        .into_inner()
        .tx_id
}

/// Begins a read-only transaction; its id.
pub async fn begin_read_only_tx(client: &mut GatewayClient<Channel>) -> String {
    client
        .begin(pb::BeginRequest {
            idle_timeout: None,
            read_only: true,
        })
        .await
        .expect("Begin succeeds")
        .into_inner()
        .tx_id
}

/// The transaction counts ListEngines reports.
pub async fn tx_counts(
    client: &mut GatewayClient<Channel>,
) -> std::collections::HashMap<String, u64> {
    client
        .list_engines(pb::ListEnginesRequest {})
        .await
        .expect("ListEngines succeeds")
        .into_inner()
        .transactions
}

/// Commits transaction `tx_id`: the engines that took part, or the status.
pub async fn commit_tx(
    client: &mut GatewayClient<Channel>,
    tx_id: &str,
) -> Result<Vec<String>, tonic::Status> {
    client
        .commit(pb::CommitRequest {
            tx_id: tx_id.to_owned(),
        })
        .await
        .map(|r| r.into_inner().engines)
}

/// Runs a request that must succeed.
pub async fn exec(
    client: &mut GatewayClient<Channel>,
    req: pb::ExecuteRequest,
) -> pb::ExecuteResponse {
    let statement = req.statement.clone();
    match client.execute(req).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("`{statement}` failed: {status:?}"),
    }
}

/// Runs a request that must fail, and returns its status.
pub async fn fail(client: &mut GatewayClient<Channel>, req: pb::ExecuteRequest) -> tonic::Status {
    let statement = req.statement.clone();
    match client.execute(req).await {
        Ok(response) => panic!(
            "`{statement}` should fail but returned {:?}",
            response.into_inner()
        ),
        Err(status) => status,
    }
}

/// Asserts a status's code and that its message holds `text`.
pub fn assert_status(status: &tonic::Status, code: tonic::Code, text: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(text),
        "`{}` should contain `{text}`",
        status.message()
    );
}

/// The first value of the first row.
pub fn scalar(response: &pb::ExecuteResponse) -> Option<pb::value::Kind> {
    response.rows.first()?.values.first()?.kind.clone()
}

/// Whether a call cut by its deadline failed as it should: the gateway's
/// DEADLINE_EXCEEDED (retryable), or, when the client's own timer fired
/// first on a busy machine, the client's CANCELLED "Timeout expired".
pub fn is_deadline_status(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    match status.code() {
        // The core's (its statement cancelled: retryable), or the server's
        // backstop's (DEADLINE_CUT: the work may have happened).
        tonic::Code::DeadlineExceeded => status.get_details_error_info().is_some_and(|info| {
            info.reason == "DEADLINE_CUT"
                || info.metadata.get("retryable").is_some_and(|r| r == "true")
        }),
        tonic::Code::Cancelled => status.message().contains("Timeout expired"),
        _ => false,
    }
}

/// With the engine's server just killed, calls of `probe` fail fast with
/// UNAVAILABLE (each in under 3 s, not after an acquire timeout) and health
/// reports NOT_SERVING; after `restart`, the engine reconnects by itself
/// (only UNAVAILABLE meanwhile) and is healthy again.
pub async fn outage_then_recovery(
    d: &dyn omnigate_drivers::StorageDriver,
    dialect: omnigate_drivers::Dialect,
    probe: &str,
    restart: impl FnOnce(),
) {
    use omnigate_drivers::{Error, ExecuteOptions, Health, Statement};
    let statement = Statement::new(probe);
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let err = d
            .execute(dialect, &statement, &ExecuteOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "calls fail fast, not after the acquire timeout"
        );
    }
    assert!(matches!(d.health().await, Health::NotServing(_)));
    restart();
    let mut recovered = false;
    for _ in 0..100 {
        match d
            .execute(dialect, &statement, &ExecuteOptions::default())
            .await
        {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(e) => assert!(
                matches!(e, Error::Unavailable(_)),
                "only Unavailable while it comes back: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the engine reconnected after the restart");
    assert_eq!(d.health().await, Health::Serving);
}
