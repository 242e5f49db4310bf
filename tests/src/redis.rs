//! A real Redis server for tests: `redis-server` on a free loopback port,
//! in a temporary directory, persistence off. Stopped on drop.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The Debian package that provides `redis-server`.
pub const PACKAGE: &str = "redis-server";

/// The Debian package that provides `redis-cli` and `redis-benchmark`.
pub const TOOLS_PACKAGE: &str = "redis-tools";

/// The path of a Redis client program (`redis-cli`, `redis-benchmark`);
/// panics naming the Debian package that provides it when it is missing.
pub fn tool(name: &str) -> PathBuf {
    crate::find_program(name, TOOLS_PACKAGE)
}

/// A running Redis server.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server; panics with its log if it does not answer PING.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts `binary` (a redis-server build of its own, e.g. FalkorDB's)
    /// with extra arguments.
    pub fn start_binary(binary: &std::path::Path, extra: &[&str]) -> RedisServer {
        let mut server = Self::prepare(extra.iter().map(|a| (*a).to_owned()).collect());
        server.binary = binary.to_owned();
        server.launch();
        server
    }

    /// Starts a server with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = Self::prepare(extra.iter().map(|a| (*a).to_owned()).collect());
        server.launch();
        server
    }

    /// Starts a server that also listens with TLS (a certificate for
    /// 127.0.0.1 signed by a test CA); returns it, its `rediss://` URL and
    /// the CA's PEM file.
    pub fn start_with_tls() -> (RedisServer, String, PathBuf) {
        let mut server = Self::prepare(Vec::new());
        let certs = crate::certs::make(server.dir.path(), None);
        let tls_port = crate::free_port();
        let path = |p: &std::path::Path| p.display().to_string();
        server.extra = vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path(&certs.cert),
            "--tls-key-file".into(),
            path(&certs.key),
            "--tls-ca-cert-file".into(),
            path(&certs.ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        server.launch();
        (server, format!("rediss://127.0.0.1:{tls_port}/0"), certs.ca)
    }

    fn prepare(extra: Vec<String>) -> RedisServer {
        RedisServer {
            dir: tempfile::Builder::new()
                .prefix("omnigate-redis-")
                .tempdir()
                .expect("a temp dir"),
            binary: crate::find_program("redis-server", PACKAGE),
            port: crate::free_port(),
            child: None,
            extra,
        }
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log file");
        let child = Command::new(&self.binary)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut child = child;
        crate::wait_ready(
            "redis-server",
            &mut child,
            || self.answers_ping(),
            || self.log(),
        );
        self.child = Some(child);
    }

    fn answers_ping(&self) -> bool {
        let Some(mut stream) = crate::ask(self.port, b"PING\r\n") else {
            return false;
        };
        let mut reply = [0u8; 7];
        // A server with a password answers NOAUTH: it is up all the same.
        stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `config` with this server as its `cache` engine (database 0).
    pub fn add_to(&self, config: &mut omnigate::Config) {
        use omnigate::config::{DriverConfig, EngineConfig};
        let redis = omnigate_drivers::redis::RedisConfig {
            url: self.url(0),
            ..omnigate_drivers::redis::RedisConfig::default()
        };
        config.engines.insert(
            "cache".into(),
            EngineConfig::new(DriverConfig::Redis(redis)),
        );
    }

    /// The embedded default with this server as its `cache` engine.
    pub fn gateway_config(&self) -> omnigate::Config {
        let mut config = omnigate::Config::default();
        self.add_to(&mut config);
        config
    }

    /// A `redis://` URL for database `db`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// A driver on database 0 here, named `cache` as the tests' gateways
    /// name it, for reading the engine past the gateway.
    pub async fn driver(&self) -> omnigate_drivers::redis::RedisDriver {
        let config = omnigate_drivers::redis::RedisConfig {
            url: self.url(0),
            ..Default::default()
        };
        omnigate_drivers::redis::RedisDriver::connect("cache", config)
            .await
            .expect("the redis engine connects")
    }

    /// The temporary directory it runs in (for a unix socket, say).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once.
    pub fn kill(&mut self) {
        crate::kill_now(self.child.take());
    }

    /// Stalls the server (SIGSTOP): connections stay open, nothing is
    /// answered, until [`RedisServer::resume`].
    pub fn pause(&self) {
        crate::signal(self.child.as_ref(), "STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        crate::signal(self.child.as_ref(), "CONT");
    }

    /// Starts it again on the same port (empty: persistence is off).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
