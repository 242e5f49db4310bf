//! gRPC on a Unix socket beside TCP (`[server] unix_socket`): the same
//! service, principals and limits; the socket's mode; a stale socket a
//! killed gateway left is replaced, a live one or another file refused;
//! the socket goes at shutdown.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::Config;
use omnigate_frontends::grpc::server;
use omnigate_proto::v1 as pb;
use omnigate_tests::auth::principal;
use pb::gateway_client::GatewayClient;
use tonic::Code;
use tonic::transport::Endpoint;

async fn start(config: &Config) -> Result<server::ServerHandle, server::ServeError> {
    let gateway = Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    server::start(gateway, &config.server).await
}

fn ping(token: Option<&str>) -> tonic::Request<pb::ExecuteRequest> {
    let mut request = tonic::Request::new(pb::ExecuteRequest {
        dialect: "redis".into(),
        statement: "PING".into(),
        ..Default::default()
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[tokio::test]
async fn grpc_is_served_on_a_unix_socket_with_its_mode_and_principals() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("omnigate.sock");
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    config.server.unix_socket = Some(socket.clone());
    config.server.unix_socket_mode = 0o600;
    config.principals = BTreeMap::from([("app".to_owned(), principal("app-token"))]);
    // A socket a killed gateway left: replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let handle = start(&config).await.unwrap();
    assert_eq!(handle.unix_socket(), Some(socket.as_path()));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let channel = Endpoint::from_shared(format!("unix:{}", socket.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = GatewayClient::new(channel);
    let reply = client.execute(ping(Some("app-token"))).await.unwrap();
    assert!(!reply.into_inner().rows.is_empty());
    // The socket asks for the same credentials as TCP.
    let refused = client.execute(ping(None)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // A second gateway on the same socket is refused (the first answers).
    let mut second = config.clone();
    second.transactions.log = Some(dir.path().join("tx2.log").display().to_string());
    let taken = start(&second).await.unwrap_err();
    assert!(taken.to_string().contains("another process"), "{taken}");
    // So is a path that holds another file, which is never removed.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    second.server.unix_socket = Some(file.clone());
    let refused = start(&second).await.unwrap_err();
    assert!(refused.to_string().contains("not a socket"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    assert!(handle.shutdown(Duration::from_secs(5)).await.unwrap());
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

#[test]
fn a_mode_that_is_not_octal_permissions_is_refused() {
    let text = "[server]\nunix_socket = \"/tmp/x.sock\"\nunix_socket_mode = 660\n";
    let err = Config::parse(text, &BTreeMap::<String, String>::new()).unwrap_err();
    assert!(err.to_string().contains("0o660"), "{err}");
}
