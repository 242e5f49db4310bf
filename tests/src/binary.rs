//! The `omnigate` binary as a process: started on a config, stopped with
//! its log read back.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `bin serve --config CONFIG --listen ADDR` (in the config's
/// directory, `RUST_LOG=log_level`, its log in a pipe) and waits until it
/// listens.
pub fn serve(bin: &str, config: &Path, addr: SocketAddr, log_level: &str) -> Child {
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &addr.to_string()])
        .current_dir(config.parent().expect("the config's directory"))
        .env("RUST_LOG", log_level)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", addr.port())).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited ({status}): {}", stop(child));
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Kills a server started by [`serve`]; its log.
pub fn stop(mut server: Child) -> String {
    let _ = server.kill();
    let mut log = String::new();
    if let Some(mut stderr) = server.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    let _ = server.wait();
    log
}

/// `given`, or the binary `name` beside the running executable (where
/// cargo puts all of a workspace's binaries).
pub fn beside_this(name: &str, given: Option<std::path::PathBuf>) -> std::path::PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(name)))
            .unwrap_or_else(|| name.into())
    })
}
