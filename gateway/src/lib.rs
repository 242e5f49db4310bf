//! Omnigate: one gRPC service — or one in-process library — in front of
//! many storage engines. Clients send dialect-tagged statements (`sql`,
//! `redis`, ...); the gateway routes each through the
//! [`StorageDriver`](omnigate_drivers::StorageDriver) trait to a pooled
//! engine and returns one value model.
//!
//! Use it in-process with [`Gateway::builder`], or run the `omnigate`
//! binary and call `omnigate.v1.Gateway` over gRPC.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod cli;
pub mod codec;
pub mod config;
pub mod engines;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
pub mod metrics;
pub mod router;
pub mod security;
pub mod server;
pub mod service;
#[cfg(feature = "otlp")]
pub mod telemetry;
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
