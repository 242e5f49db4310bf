//! Helpers for tests of who may call: signed requests, principals, and a
//! gateway config over PostgreSQL, Redis and SQLite.

use std::collections::BTreeMap;

use omnigate::config::{Config, DenyRule, PrincipalConfig};
use omnigate::security::tokens;
use omnigate_proto::v1 as pb;

use crate::postgres::PgServer;
use crate::redis::RedisServer;
use crate::request;

type Client = omnigate_proto::v1::gateway_client::GatewayClient<tonic::transport::Channel>;

/// `message`, sent with `token`.
pub fn signed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header value"),
    );
    request
}

/// `statement` in `dialect` on engine `target`.
pub fn on(target: &str, dialect: &str, statement: &str) -> pb::ExecuteRequest {
    let mut req = request(dialect, statement, vec![]);
    req.target = target.to_owned();
    req
}

/// A principal recognised by `token`.
pub fn principal(token: &str) -> PrincipalConfig {
    PrincipalConfig {
        token_sha256: Some(tokens::to_hex(&tokens::hash(token))),
        ..PrincipalConfig::default()
    }
}

/// A deny rule on engines of `kind`.
pub fn deny(name: &str, kind: &str, pattern: &str) -> DenyRule {
    DenyRule {
        name: Some(name.into()),
        engine: None,
        kind: Some(kind.into()),
        dialect: None,
        pattern: pattern.into(),
    }
}

/// PostgreSQL (`main-db`), Redis (`cache`), and the embedded SQLite
/// (`main`), with `principals`.
pub fn config(
    pg: &PgServer,
    redis: &RedisServer,
    principals: BTreeMap<String, PrincipalConfig>,
) -> Config {
    let mut config = pg.gateway_config_with(redis);
    config.engines.insert(
        "main".into(),
        omnigate::config::EngineConfig::new(omnigate::config::DriverConfig::Sqlite(
            Default::default(),
        )),
    );
    config.principals = principals;
    config
}

/// `request` sent with `token`: the response or the status.
pub async fn run(
    c: &mut Client,
    token: &str,
    request: pb::ExecuteRequest,
) -> Result<pb::ExecuteResponse, tonic::Status> {
    c.execute(signed(token, request))
        .await
        .map(tonic::Response::into_inner)
}

/// Begins a transaction as `token`'s principal; its id.
pub async fn begin(c: &mut Client, token: &str) -> String {
    c.begin(signed(token, pb::BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tx_id
}

/// `text` on `target` inside transaction `tx`.
pub fn in_tx(tx: &str, target: &str, dialect: &str, text: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        tx_id: tx.to_owned(),
        ..on(target, dialect, text)
    }
}

/// `status` is PERMISSION_DENIED and its message has `words`.
#[track_caller]
pub fn denied(status: &tonic::Status, words: &str) {
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(words), "{status:?}");
}
