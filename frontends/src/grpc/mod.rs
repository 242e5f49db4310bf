//! The gRPC front end: the `omnigate.v1.Gateway` service over the core,
//! the server that runs it, and what it maps between the two (proto
//! messages, statuses, request metadata).

pub mod convert;
pub mod deadline;
pub mod metrics;
mod reply;
pub(crate) mod request;
pub mod server;
mod service;
pub mod status;
mod unix;

pub use request::{caller, grpc_timeout};
pub use server::{
    ServeError, ServerHandle, engine_health_name, runtime, serve, shutdown_signal, start,
};
pub use service::GatewayService;
