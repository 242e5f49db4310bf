//! PgBouncer in transaction pooling mode in front of a PostgreSQL, for the
//! benchmark's "direct driver through a pooler" path: Debian's `pgbouncer`
//! on a free loopback port, run as the `postgres` user when root (it
//! refuses to run as root). Stopped on drop.

use std::net::TcpStream;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The Debian package that provides `pgbouncer`.
pub const PACKAGE: &str = "pgbouncer";

/// A running PgBouncer.
#[derive(Debug)]
pub struct PgBouncer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl PgBouncer {
    /// Starts PgBouncer in front of the PostgreSQL on `pg_port` (trust
    /// auth, user `omnigate`), with `pool_size` server connections.
    pub fn start(pg_port: u16, pool_size: usize) -> PgBouncer {
        let bin = crate::find_program("pgbouncer", PACKAGE);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = crate::free_port();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={pg_port} user=omnigate\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = any\n\
                 pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 1000\n\
                 unix_socket_dir =\nlogfile = {log}\nignore_startup_parameters = extra_float_digits\n",
                log = dir.path().join("pgbouncer.log").display()
            ),
        )
        .expect("write pgbouncer.ini");
        let mut command = Command::new(bin);
        if let Some((uid, gid)) = crate::postgres::unprivileged_owner() {
            chown(dir.path(), Some(uid), Some(gid)).expect("chown the temp dir");
            chown(&ini, Some(uid), Some(gid)).expect("chown the ini");
            command.uid(uid).gid(gid);
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let mut bouncer = PgBouncer { dir, port, child };
        let log = bouncer.dir.path().join("pgbouncer.log");
        crate::wait_ready(
            "pgbouncer",
            &mut bouncer.child,
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        bouncer
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// Its process id (a bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `postgres://` URL for database `db` through it.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://omnigate@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
