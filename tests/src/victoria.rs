//! A real VictoriaMetrics for tests: Debian's `victoria-metrics` on a free
//! loopback port, storing in a temporary directory. Stopped on drop.
//!
//! Flags: `-search.latencyOffset=0s` (fresh points are queryable at once),
//! `-search.disableCache` (a test writes into windows it already
//! queried), and `-dedup.minScrapeInterval=1ms` (a replayed write leaves
//! one sample per series and time, as the engine's docs ask of servers).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The Debian package that provides `victoria-metrics`.
pub const PACKAGE: &str = "victoria-metrics";

/// A running VictoriaMetrics.
#[derive(Debug)]
pub struct VictoriaServer {
    dir: tempfile::TempDir,
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl VictoriaServer {
    /// Starts a server; panics with its log if `/health` does not answer.
    pub fn start() -> VictoriaServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line flags.
    pub fn start_with(extra: &[&str]) -> VictoriaServer {
        let port = crate::free_port();
        let mut server = VictoriaServer {
            dir: tempfile::tempdir().expect("a temporary directory"),
            binary: crate::find_program("victoria-metrics", PACKAGE),
            port,
            child: None,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log file");
        let child = Command::new(&self.binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            .args([
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-dedup.minScrapeInterval=1ms",
                "-loggerLevel=WARN",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("victoria-metrics starts");
        let mut child = child;
        crate::wait_ready(
            "victoria-metrics",
            &mut child,
            || self.healthy(),
            || self.log(),
        );
        self.child = Some(child);
    }

    fn healthy(&self) -> bool {
        let request = b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
        let Some(mut stream) = crate::ask(self.port, request) else {
            return false;
        };
        let mut reply = String::new();
        stream.read_to_string(&mut reply).is_ok() && reply.starts_with("HTTP/1.0 200")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Its `http://` URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once.
    pub fn kill(&mut self) {
        crate::kill_now(self.child.take());
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for VictoriaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
