//! The gateway as users deploy it: the `omnigate serve` binary, a process
//! of its own configured at the same backends, which the gRPC path calls.
//! The in-process gateway (the library path) reads the same config text.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::{Backends, GRAPH, PG, POOL_SIZE, SQLITE};

/// The config both gateways run: `listen` and the transaction `log` are
/// each one's own.
pub(crate) fn config_text(backends: &Backends, listen: SocketAddr, log: &Path) -> String {
    let mut text = format!(
        r#"[server]
listen = "{listen}"
default_max_rows = 1000000

[transactions]
log = "{log}"

[engines.{SQLITE}]
kind = "sqlite"
path = ":memory:"

[engines.{PG}]
kind = "postgres"
url = "{pg}"
max_connections = {POOL_SIZE}
min_idle = {POOL_SIZE}

[engines.cache]
kind = "redis"
url = "{redis}"
max_connections = 4
"#,
        log = log.display(),
        pg = backends.postgres,
        redis = backends.redis,
    );
    if let Some(url) = &backends.falkordb {
        text.push_str(&format!(
            "\n[engines.graph]\nkind = \"falkordb\"\nurl = \"{url}\"\ngraph = \"{GRAPH}\"\nmax_connections = 4\n"
        ));
    }
    if let Some(url) = &backends.victoria {
        text.push_str(&format!(
            "\n[engines.metrics]\nkind = \"victoriametrics\"\nurl = \"{url}\"\nmax_connections = {POOL_SIZE}\n"
        ));
    }
    text
}

/// A running `omnigate serve`, killed when dropped.
pub(crate) struct Served {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Where its RESP front end listens (engine `cache`).
    pub(crate) resp: SocketAddr,
    /// Where its PostgreSQL-wire front end listens.
    pub(crate) pgwire: SocketAddr,
    /// The Unix socket it serves gRPC on as well (the `grpc-uds` path).
    pub(crate) unix: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `binary` on the backends and waits until it listens.
    pub(crate) async fn start(binary: &Path, backends: &Backends) -> Result<Served, String> {
        if !binary.exists() {
            return Err(format!(
                "{} not found: build it (cargo build --release -p omnigate-frontends) or pass --gateway",
                binary.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let addr = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
        let resp = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
        let pgwire = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
        let config = dir.path().join("omnigate.toml");
        let unix = dir.path().join("grpc.sock");
        let mut text = config_text(backends, addr, &dir.path().join("tx.log")).replacen(
            "[server]\n",
            &format!("[server]\nunix_socket = {:?}\n", unix.display().to_string()),
            1,
        );
        text.push_str(&format!(
            "\n[frontends.redis]\nlisten = \"{resp}\"\ntarget = \"cache\"\n\
             \n[frontends.postgres]\nlisten = \"{pgwire}\"\n"
        ));
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("gateway.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut served = Served {
            child,
            addr,
            resp,
            pgwire,
            unix,
            _dir: dir,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err()
            || tokio::net::TcpStream::connect(resp).await.is_err()
            || tokio::net::TcpStream::connect(pgwire).await.is_err()
            || tokio::net::UnixStream::connect(&served.unix).await.is_err()
        {
            if started.elapsed() > Duration::from_secs(60)
                || served.child.try_wait().ok().flatten().is_some()
            {
                return Err(format!(
                    "the gateway did not start: {}",
                    std::fs::read_to_string(served._dir.path().join("gateway.log"))
                        .unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(served)
    }

    /// Its process id (its CPU time is read from /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
