//! Omnigate's front ends: each turns one protocol into calls of the core
//! (the [`omnigate`] crate, which names no front end) and the core's
//! results and errors back into that protocol.
//!
//! - [`grpc`]: the `omnigate.v1.Gateway` service, its server (TLS,
//!   health, reflection, drain) and the gRPC server metrics;
//! - [`idle`]: when a front end's client connection is idle;
//! - [`cli`]: the `omnigate` command line, a gRPC client;
//! - [`metrics`]: the Prometheus `/metrics` listener;
//! - [`postgres`]: the PostgreSQL-wire listener;
//! - [`resp`]: the Redis-protocol (RESP2/RESP3) listener;
//! - [`tls`]: the TLS settings every listener shares;
//! - [`trace`]: what a call's span says (statement fingerprints, the
//!   caller's W3C trace context), for every front end.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod connections;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod idle;
pub mod metrics;
pub mod postgres;
pub mod resp;
#[cfg(feature = "otlp")]
pub mod telemetry;
pub mod tls;
pub mod trace;
