//! twemproxy (Debian's `nutcracker`) in front of a Redis, for the
//! benchmark's "direct client through a proxy" path: the proxy users
//! would otherwise put in front of Redis, as PgBouncer is for PostgreSQL.
//! On free loopback ports; stopped on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The Debian package that provides `nutcracker`.
pub const PACKAGE: &str = "nutcracker";

/// A running twemproxy.
#[derive(Debug)]
pub struct Twemproxy {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Twemproxy {
    /// Starts twemproxy in front of the Redis on `redis_port`, with
    /// `connections` server connections.
    pub fn start(redis_port: u16, connections: usize) -> Twemproxy {
        let bin = crate::find_program("nutcracker", PACKAGE);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (port, stats) = (crate::free_port(), crate::free_port());
        let conf = dir.path().join("nutcracker.yml");
        std::fs::write(
            &conf,
            format!(
                "omnigate:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
                 redis: true\n  auto_eject_hosts: false\n  server_connections: {connections}\n  \
                 servers:\n   - 127.0.0.1:{redis_port}:1\n"
            ),
        )
        .expect("write nutcracker.yml");
        let log = dir.path().join("nutcracker.log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-o")
            .arg(&log)
            .args(["-a", "127.0.0.1", "-s", &stats.to_string()])
            .arg("-p")
            .arg(dir.path().join("nutcracker.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nutcracker starts");
        let mut proxy = Twemproxy { dir, port, child };
        crate::wait_ready(
            "nutcracker",
            &mut proxy.child,
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        proxy
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nutcracker.log")).unwrap_or_default()
    }

    /// A `redis://` URL through it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id (a bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Twemproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
