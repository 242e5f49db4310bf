//! Omnigate's core: one in-process gateway in front of many storage
//! engines. Callers send dialect-tagged statements (`sql`, `redis`, ...);
//! the gateway routes each through the
//! [`StorageDriver`](omnigate_drivers::StorageDriver) trait to a pooled
//! engine and returns one value model, and commits transactions across
//! engines.
//!
//! Use it in-process with [`Gateway::builder`]. The front ends (the gRPC
//! service, the CLI, the metrics listener, and the `omnigate` binary) are
//! in the `omnigate-frontends` crate above this one; nothing here names a
//! front end or a transport.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod codec;
pub mod config;
pub mod engines;
pub mod error;
mod gateway;
pub mod metrics;
pub mod router;
pub mod security;
pub mod tx;

pub use config::Config;
pub use error::{ConfigError, Error, Result};
pub use gateway::{
    BatchRequest, BatchResponse, CallContext, Caller, DescribeRequest, Description, Drained,
    EngineStatus, Gateway, GatewayBuilder, InFlight, Limits, Reloaded, Request, Response,
    ServiceState, StreamResponse, Transaction, watch_config,
};
pub use omnigate_drivers as drivers;
pub use omnigate_proto as proto;
pub use tx::TxOptions;
