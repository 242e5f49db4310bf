//! Helpers for tests of who may call: signed requests, principals, and a
//! gateway config over PostgreSQL, Redis and SQLite.

use std::collections::BTreeMap;

use omnigate::config::{Config, DenyRule, PrincipalConfig};
use omnigate::security::tokens;
use omnigate_proto::v1 as pb;

use crate::postgres::PgServer;
use crate::redis::RedisServer;
use crate::request;

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
