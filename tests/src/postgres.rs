//! A real PostgreSQL server for tests: `initdb` in a temporary directory
//! as the unprivileged `postgres` user (the server refuses to run as
//! root), on a free loopback port, with `max_prepared_transactions` set
//! and fsync off (on for [`PgServer::start_flushed`]). Stopped and removed on
//! drop.

use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian package that provides the server binaries.
pub const PACKAGE: &str = "postgresql-15";

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    tls: bool,
    /// `max_prepared_transactions` (0 turns two-phase commit off).
    max_prepared: u32,
    /// Whether a commit waits for its WAL to be written: what survives
    /// the server being killed (fsync stays off: the trials kill
    /// processes, not the machine).
    synchronous_commit: bool,
    /// Whether the server flushes its WAL to disk (`fsync`,
    /// `full_page_writes`): as deployed, for benchmarks of commits.
    flushed: bool,
}

/// The directory holding `initdb` and `postgres`, or a panic naming the package.
fn bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(|d| d.ok())
                .map(|d| d.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .unwrap_or_else(|| {
            panic!("PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql: install the Debian package {PACKAGE} (apt-get install -y {PACKAGE}), or run ./scripts/test.sh as root")
        })
}

/// A PostgreSQL client program (`psql`, `pgbench`) of the installed
/// version, or a panic naming the package.
pub fn client_bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{name} not found beside the PostgreSQL server binaries: install the Debian package \
         {PACKAGE} (apt-get install -y {PACKAGE}), or run ./scripts/test.sh as root"
    );
    path
}

/// The uid and gid of the `postgres` user, when running as root.
pub(crate) fn unprivileged_owner() -> Option<(u32, u32)> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd is readable");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .unwrap_or_else(|| panic!("running as root, but there is no `postgres` user to run the server as: install {PACKAGE}"));
    let fields: Vec<&str> = line.split(':').collect();
    Some((
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    ))
}

impl PgServer {
    /// Initialises a cluster and starts the server; panics with the server's
    /// log if it does not come up.
    pub fn start() -> PgServer {
        Self::start_with(false, 64)
    }

    /// [`PgServer::start`] with `max_prepared_transactions = 0`, as a
    /// default PostgreSQL install has it.
    pub fn start_without_prepared_transactions() -> PgServer {
        Self::start_with(false, 0)
    }

    /// [`PgServer::start`] that keeps every commit it acknowledged when
    /// it is killed (`synchronous_commit=on`), for crash trials.
    pub fn start_durable() -> PgServer {
        let mut server = Self::prepare(false, 64);
        server.synchronous_commit = true;
        server.boot();
        server
    }

    /// A server configured as deployed: every acknowledged commit flushed
    /// to disk (`fsync`, `synchronous_commit` and `full_page_writes` on),
    /// for benchmarks of commits (the others run with the WAL unflushed,
    /// which makes commits far cheaper than they are in production).
    pub fn start_flushed() -> PgServer {
        let mut server = Self::prepare(false, 64);
        server.synchronous_commit = true;
        server.flushed = true;
        server.boot();
        server
    }

    /// Starts a server that also accepts TLS, with a certificate for
    /// 127.0.0.1 signed by a test CA; returns it and the CA's PEM file.
    pub fn start_with_tls() -> (PgServer, PathBuf) {
        let server = Self::start_with(true, 64);
        let ca = server.dir.path().join("ca.pem");
        (server, ca)
    }

    fn start_with(tls: bool, max_prepared: u32) -> PgServer {
        let mut server = Self::prepare(tls, max_prepared);
        server.boot();
        server
    }

    /// A server not yet initialised.
    fn prepare(tls: bool, max_prepared: u32) -> PgServer {
        let bin = bin_dir();
        let owner = unprivileged_owner();
        let dir = tempfile::Builder::new()
            .prefix("omnigate-pg-")
            .tempdir()
            .expect("a temp dir");
        if let Some((uid, gid)) = owner {
            chown(dir.path(), Some(uid), Some(gid)).expect("chown the temp dir to postgres");
        }
        PgServer {
            dir,
            bin,
            port: crate::free_port(),
            owner,
            child: None,
            tls,
            max_prepared,
            synchronous_commit: false,
            flushed: false,
        }
    }

    /// Initialises the cluster and starts the server.
    fn boot(&mut self) {
        self.init();
        if self.tls {
            self.make_certificates();
        }
        self.launch();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        command.current_dir(self.dir.path());
        command
    }

    fn init(&self) {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "omnigate",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn make_certificates(&self) {
        crate::certs::make(self.dir.path(), self.owner);
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log file");
        if let Some((uid, gid)) = self.owner {
            chown(self.dir.path().join("server.log"), Some(uid), Some(gid)).expect("chown the log");
        }
        let prepared = format!("max_prepared_transactions={}", self.max_prepared);
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                if self.flushed {
                    "fsync=on"
                } else {
                    "fsync=off"
                },
                "-c",
                if self.synchronous_commit {
                    "synchronous_commit=on"
                } else {
                    "synchronous_commit=off"
                },
                "-c",
                if self.flushed {
                    "full_page_writes=on"
                } else {
                    "full_page_writes=off"
                },
                "-c",
                prepared.as_str(),
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ])
            .args(if self.tls {
                let file = |name: &str| self.dir.path().join(name).display().to_string();
                vec![
                    "-c".to_owned(),
                    "ssl=on".to_owned(),
                    "-c".to_owned(),
                    format!("ssl_cert_file={}", file("server.pem")),
                    "-c".to_owned(),
                    format!("ssl_key_file={}", file("server.key")),
                ]
            } else {
                Vec::new()
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let ready = self
                .command("pg_isready")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "omnigate",
                    "-d",
                    "postgres",
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited with {status}: {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres did not become ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://omnigate@127.0.0.1:{}/{db}", self.port)
    }

    /// A `postgres` engine's config for the `postgres` database here, the
    /// rest default.
    pub fn engine_config(&self) -> omnigate_drivers::postgres::PostgresConfig {
        omnigate_drivers::postgres::PostgresConfig {
            url: Some(self.url("postgres")),
            ..omnigate_drivers::postgres::PostgresConfig::default()
        }
    }

    /// A gateway config with one engine, `main-db`: this server's
    /// `postgres` database, two connections.
    pub fn gateway_config(&self) -> omnigate::config::Config {
        use omnigate::config::{Config, DriverConfig, EngineConfig};
        use omnigate_drivers::postgres::PostgresConfig;
        let mut config = Config::default();
        config.engines.clear();
        let mut pg = PostgresConfig {
            url: Some(self.url("postgres")),
            ..PostgresConfig::default()
        };
        pg.pool.max_connections = 2;
        config.engines.insert(
            "main-db".into(),
            EngineConfig::new(DriverConfig::Postgres(pg)),
        );
        config
    }

    /// [`PgServer::gateway_config`] with `connections` in the pool.
    pub fn gateway_config_with_pool(&self, connections: usize) -> omnigate::Config {
        use omnigate::config::DriverConfig;
        let mut config = self.gateway_config();
        if let Some(DriverConfig::Postgres(pg)) =
            config.engines.get_mut("main-db").map(|e| &mut e.driver)
        {
            pg.pool.max_connections = connections;
        }
        config
    }

    /// A gateway config for a transaction across engines: `main-db` on
    /// this server (four connections, room for pinned transactions and
    /// calls beside them) and `cache` on `redis`.
    pub fn gateway_config_with(&self, redis: &crate::redis::RedisServer) -> omnigate::Config {
        let mut config = self.gateway_config_with_pool(4);
        redis.add_to(&mut config);
        config
    }

    /// A `postgres` engine named `pg` on [`PgServer::engine_config`].
    pub async fn engine(&self) -> omnigate_drivers::postgres::PostgresDriver {
        omnigate_drivers::postgres::PostgresDriver::connect("pg", self.engine_config())
            .await
            .expect("the postgres engine connects")
    }

    /// The first value `text` answers on the `postgres` database, read
    /// straight from the engine (as an operator would, past the gateway's
    /// refusal of statements that name its own tables).
    pub async fn scalar(&self, text: &str) -> omnigate_drivers::Value {
        use omnigate_drivers::StorageDriverExt;
        self.engine()
            .await
            .query_scalar(
                omnigate_drivers::Dialect::Sql,
                omnigate_drivers::Statement::new(text),
            )
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Kills the server at once (as a crash would).
    pub fn kill(&mut self) {
        crate::kill_now(self.child.take());
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The temporary directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A fast shutdown (SIGINT) lets postgres remove its socket and pid file.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && started.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
