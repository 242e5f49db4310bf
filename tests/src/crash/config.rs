//! The gateway's config in the crash trials: one gateway with a file log,
//! or replicas sharing a log table in PostgreSQL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::Backends;

/// The gateway's config over `backends` (and SQLite in `dir`), at `addr`.
pub(crate) fn write_config(dir: &Path, backends: &Backends, addr: SocketAddr) -> PathBuf {
    write_replica_config(dir, backends, addr, None)
}

/// [`write_config`] for `replica` N of several: its own name and file, the
/// log a table of PostgreSQL that the replicas share, another replica's
/// unfinished transactions taken over after 2 s.
pub(super) fn write_replica_config(
    dir: &Path,
    backends: &Backends,
    addr: SocketAddr,
    replica: Option<usize>,
) -> PathBuf {
    let (log, extra, file) = match replica {
        None => (
            dir.join("tx.log").display().to_string(),
            String::new(),
            "omnigate.toml".to_owned(),
        ),
        Some(n) => (
            "main-db".to_owned(),
            format!("instance = \"gw-{n}\"\ntakeover_after = \"2s\"\n"),
            format!("omnigate-{n}.toml"),
        ),
    };
    let text = format!(
        r#"[server]
listen = "{addr}"
max_rows = 10000000
max_response_bytes = 1073741824

[transactions]
recovery_interval = "500ms"
idle_timeout = "10s"
log = "{log}"
{extra}
[engines.main-db]
kind = "postgres"
url = "{pg}"
max_connections = 16

[engines.main]
kind = "sqlite"
path = "{sqlite}"

[engines.cache]
kind = "redis"
url = "{redis}"

[engines.graph]
kind = "falkordb"
url = "{graph}"
graph = "crash"

[engines.metrics]
kind = "victoriametrics"
url = "{metrics}"
read_your_writes = true
"#,
        pg = backends.pg.url("postgres"),
        sqlite = dir.join("main.sqlite3").display(),
        redis = backends.redis.url(0),
        graph = backends.graph.url(),
        metrics = backends.metrics.url(),
    );
    let path = dir.join(file);
    std::fs::write(&path, text).expect("the config file");
    path
}
