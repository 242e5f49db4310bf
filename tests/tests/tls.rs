//! TLS on the gRPC listener: served with the configured certificate,
//! reloaded when its files change, and mutual TLS where a client
//! certificate verified against the client CA names a principal (and a
//! stranger's certificate is refused).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::{ClientName, Config, PrincipalConfig, TlsConfig};
use omnigate::security::tokens;
use omnigate_frontends::grpc::server;
use omnigate_proto::v1 as pb;
use omnigate_tests::certs::{self, Certs};
use pb::gateway_client::GatewayClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Starts the embedded engines with `config`'s security on a free port.
async fn serve(mut config: Config, dir: &Path) -> server::ServerHandle {
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.transactions.log = Some(dir.join("tx.log").display().to_string());
    let gateway = Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    server::start(gateway, &config.server).await.unwrap()
}

/// A TLS channel trusting `ca`, presenting `identity` when given.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

async fn ping(channel: Channel, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::ExecuteRequest {
        dialect: "redis".into(),
        statement: "PING".into(),
        ..Default::default()
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    GatewayClient::new(channel).execute(request).await.map(drop)
}

fn tls(certs: &Certs, client_ca: bool) -> TlsConfig {
    TlsConfig {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        client_ca: client_ca.then(|| certs.ca.clone()),
        client_name: ClientName::SubjectCn,
    }
}

#[tokio::test]
async fn serves_tls_and_reloads_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (first_dir, second_dir) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first = certs::make(&first_dir, None);
    let second = certs::make(&second_dir, None);
    // The server's files, replaced below by the second pair.
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let mut config = Config::default();
    config.security.tls = Some(TlsConfig {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: None,
        client_name: ClientName::SubjectCn,
    });
    config.security.reload_poll = Duration::from_millis(50);
    let handle = serve(config, dir.path()).await;
    let addr = handle.local_addr();
    ping(connect(addr, &first.ca, None).await.unwrap(), None)
        .await
        .unwrap();
    // Plain HTTP/2 to a TLS port gets nowhere.
    let plain = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(ping(channel, None).await.is_err());
    }
    // Renewal: the new pair is served to new connections, no restart.
    std::fs::copy(&second.key, &key).unwrap();
    std::fs::copy(&second.cert, &cert).unwrap();
    let mut renewed = false;
    for _ in 0..100 {
        if let Ok(channel) = connect(addr, &second.ca, None).await
            && ping(channel, None).await.is_ok()
        {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewed, "the renewed certificate was not served");
    assert!(
        connect(addr, &first.ca, None).await.is_err(),
        "the old CA no longer verifies it"
    );
}

#[tokio::test]
async fn a_client_certificate_names_its_principal_and_a_strangers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ours_dir, theirs_dir) = (dir.path().join("ours"), dir.path().join("theirs"));
    std::fs::create_dir_all(&ours_dir).unwrap();
    std::fs::create_dir_all(&theirs_dir).unwrap();
    let ours = certs::make(&ours_dir, None);
    let theirs = certs::make(&theirs_dir, None);
    let app = certs::client(&ours, "app-client");
    let unknown = certs::client(&ours, "nobody-client");
    let stranger = certs::client(&theirs, "app-client");
    let mut config = Config::default();
    config.security.tls = Some(tls(&ours, true));
    config.principals = BTreeMap::from([
        (
            "app".to_owned(),
            PrincipalConfig {
                certificate: Some("app-client".into()),
                ..PrincipalConfig::default()
            },
        ),
        (
            "tokened".to_owned(),
            PrincipalConfig {
                token_sha256: Some(tokens::to_hex(&tokens::hash("a-token"))),
                ..PrincipalConfig::default()
            },
        ),
    ]);
    let handle = serve(config, dir.path()).await;
    let addr = handle.local_addr();
    // Our CA's certificate for app-client: principal app, no token.
    let channel = connect(addr, &ours.ca, Some((&app.0, &app.1)))
        .await
        .unwrap();
    ping(channel, None).await.unwrap();
    // No certificate: a token still works; nothing at all does not.
    let channel = connect(addr, &ours.ca, None).await.unwrap();
    ping(channel.clone(), Some("a-token")).await.unwrap();
    let status = ping(channel, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // A valid certificate that names no principal.
    let channel = connect(addr, &ours.ca, Some((&unknown.0, &unknown.1)))
        .await
        .unwrap();
    assert_eq!(
        ping(channel, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Another CA's certificate, whatever name it claims: the handshake
    // fails (the connection, or the first call on it).
    match connect(addr, &ours.ca, Some((&stranger.0, &stranger.1))).await {
        Err(_) => {}
        Ok(channel) => assert!(ping(channel, None).await.is_err(), "a stranger got in"),
    }
}

#[tokio::test]
async fn a_rotated_client_ca_verifies_new_connections_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let old = certs::make(&old_dir, None);
    let new = certs::make(&new_dir, None);
    let old_client = certs::client(&old, "app-client");
    let new_client = certs::client(&new, "app-client");
    // The client CA file, replaced below by the new CA (written whole and
    // renamed over, as a secret manager does).
    let ca = dir.path().join("clients-ca.pem");
    std::fs::copy(&old.ca, &ca).unwrap();
    let mut config = Config::default();
    config.security.tls = Some(TlsConfig {
        client_ca: Some(ca.clone()),
        ..tls(&old, false)
    });
    config.security.reload_poll = Duration::from_millis(50);
    config.principals = BTreeMap::from([(
        "app".to_owned(),
        PrincipalConfig {
            certificate: Some("app-client".into()),
            ..PrincipalConfig::default()
        },
    )]);
    let handle = serve(config, dir.path()).await;
    let addr = handle.local_addr();
    let admitted = |client: (std::path::PathBuf, std::path::PathBuf)| {
        let server_ca = old.ca.clone();
        async move {
            match connect(addr, &server_ca, Some((&client.0, &client.1))).await {
                Ok(channel) => ping(channel, None).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    assert!(admitted(old_client.clone()).await);
    assert!(!admitted(new_client.clone()).await, "not yet trusted");
    let temp = dir.path().join("clients-ca.new");
    std::fs::copy(&new.ca, &temp).unwrap();
    std::fs::rename(&temp, &ca).unwrap();
    let mut rotated = false;
    for _ in 0..100 {
        if admitted(new_client.clone()).await {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Before: the CA was read once, at startup.
    assert!(rotated, "the new client CA was not taken");
    assert!(!admitted(old_client).await, "the old CA no longer admits");
}

#[test]
fn the_principal_name_comes_from_the_cn_or_a_dns_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::make(dir.path(), None);
    let (cert, _) = certs::client(&ca, "svc");
    let pem = std::fs::read(cert).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    let name = |which| omnigate_frontends::tls::client_name(&der, which);
    assert_eq!(name(ClientName::SubjectCn).as_deref(), Some("svc"));
    assert_eq!(
        name(ClientName::SanDns).as_deref(),
        Some("svc.clients.test")
    );
}
