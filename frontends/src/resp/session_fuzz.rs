//! Fuzzing the RESP front end's dispatch (cargo feature `fuzzing`): a
//! client's whole session, its bytes sent and its end of the connection
//! closed, served by the front end against an embedded gateway (the
//! memory engine as `cache`, SQLite as `main`). The gateways live for the
//! whole run, so what one input stored is there for the next: a finding
//! replays from its input alone only if it does not depend on that.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::Config;
use omnigate::security::tokens;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connection::{Connection, Shared};
use super::session::Session;

/// The token of the one principal of the gateway with principals.
pub const TOKEN: &str = "fuzz-token";

/// A runtime and two embedded gateways, made once: one open (no
/// principals), one whose only principal is `app` with [`TOKEN`].
struct World {
    runtime: tokio::runtime::Runtime,
    open: Gateway,
    guarded: Gateway,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let build = |config: Config| {
            runtime
                .block_on(Gateway::builder().config(config).build())
                .expect("the embedded gateway builds")
        };
        let open = build(Config::default());
        let mut config = Config::default();
        config.principals.insert(
            "app".to_owned(),
            omnigate::config::PrincipalConfig {
                token_sha256: Some(tokens::to_hex(&tokens::hash(TOKEN))),
                ..omnigate::config::PrincipalConfig::default()
            },
        );
        let guarded = build(config);
        World {
            runtime,
            open,
            guarded,
        }
    })
}

/// Serves `data` as one client's session (the first byte picks the
/// gateway: odd, the one with principals), its replies read as they come.
/// Checks that the session ends (the client closed its side) and that no
/// transaction it opened outlives it (a client gone mid-`MULTI` discards
/// it). Sessions run one at a time, so that the count of open
/// transactions is this session's alone. Returns normally for any input;
/// a panic is a finding.
pub fn fuzz_session(data: &[u8]) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let world = world();
    let (gateway, bytes) = match data.split_first() {
        Some((first, rest)) if first % 2 == 1 => (&world.guarded, rest),
        Some((_, rest)) => (&world.open, rest),
        None => (&world.open, data),
    };
    let before = gateway.open_transactions();
    let shared = Arc::new(Shared {
        gateway: gateway.clone(),
        target: "cache".to_owned(),
        idle_timeout: Duration::from_secs(5),
        counted: crate::connections::StatementCounters::default(),
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], 6380));
    let connection = Connection {
        shared,
        session: Session::new(1, addr, addr),
    };
    world.runtime.block_on(async {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let served = tokio::spawn(connection.serve(server));
        let (mut reading, mut writing) = tokio::io::split(&mut client);
        let send = async {
            let _ = writing.write_all(bytes).await;
            let _ = writing.shutdown().await;
        };
        let mut replies = Vec::new();
        let receive = reading.read_to_end(&mut replies);
        // The client's reads end when the session drops its socket: the
        // whole exchange is bounded, so a session that never ends is a
        // finding, not a hang.
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            let _ = tokio::join!(send, receive);
            served.await
        })
        .await;
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the session did not end after its client closed"),
        }
    });
    assert_eq!(
        gateway.open_transactions(),
        before,
        "a transaction outlived the session that opened it"
    );
}
