//! Omnigate's gRPC API, `omnigate.v1`, generated from `proto/omnigate/v1/*.proto`.
//!
//! The build script compiles the protos with a vendored `protoc`, so no
//! protoc needs to be installed.

pub mod codec;

/// The `omnigate.v1` package: the `Gateway` service and its messages.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("omnigate.v1");
}

/// The encoded `FileDescriptorSet` of the API (with its imports), for
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("omnigate_descriptor");
