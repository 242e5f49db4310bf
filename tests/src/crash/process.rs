//! The gateway process of the crash trials: started, connected to,
//! killed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omnigate_proto::v1::gateway_client::GatewayClient;
use tonic::transport::Channel;

/// The gateway process and a client of it.
pub(crate) struct Gateway {
    child: Process,
    pub(crate) client: GatewayClient<Channel>,
}

impl Gateway {
    /// Starts `binary serve --config CONFIG` (its log appended to
    /// `dir/gateway.log`) and connects to it at `addr`.
    pub(crate) async fn start(
        binary: &Path,
        config: &Path,
        addr: SocketAddr,
        dir: &Path,
    ) -> Gateway {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .expect("the gateway's log file");
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("an endpoint");
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let mut process =
            Process(child.unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display())));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(channel) = endpoint.connect().await {
                return Gateway {
                    child: process,
                    client: GatewayClient::new(channel).max_decoding_message_size(usize::MAX),
                };
            }
            if Instant::now() >= deadline {
                process.kill();
                panic!(
                    "the gateway did not start; see {}",
                    dir.join("gateway.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then waits for the process to be gone.
    pub(crate) fn kill(&mut self) {
        self.child.kill();
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// A child process, killed (and waited for) when dropped.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
