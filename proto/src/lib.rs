//! Omnigate's gRPC API, `omnigate.v1`, generated from `proto/omnigate/v1/*.proto`.
//!
//! The build script compiles the protos with a vendored `protoc`, so no
//! protoc needs to be installed.

#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(feature = "grpc")]
pub mod codec;
#[cfg(feature = "grpc")]
pub mod encoded;

/// The `omnigate.v1` package: its messages, and with the `grpc` feature
/// the `Gateway` service's server (`gateway_server`) and client
/// (`gateway_client`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/omnigate.v1.rs"));
    #[cfg(feature = "grpc")]
    include!(concat!(env!("OUT_DIR"), "/server/omnigate.v1.rs"));
    #[cfg(feature = "grpc")]
    include!(concat!(env!("OUT_DIR"), "/client/omnigate.v1.rs"));
}

/// The encoded `FileDescriptorSet` of the API (with its imports), for
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/omnigate_descriptor.bin"));
