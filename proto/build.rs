//! Compiles the API's protos with a vendored protoc: the messages always
//! (prost), the `Gateway` service's tonic server and client only with the
//! `grpc` feature, so the core crate can use the message types without a
//! gRPC stack in its dependency tree.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let includes = [PathBuf::from("."), protoc_bin_vendored::include_path()?];
    let protos = ["omnigate/v1/value.proto", "omnigate/v1/gateway.proto"].map(PathBuf::from);
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut messages = prost_build::Config::new();
    messages
        .protoc_executable(&protoc)
        .file_descriptor_set_path(out_dir.join("omnigate_descriptor.bin"))
        .compile_protos(&protos, &includes)?;

    #[cfg(feature = "grpc")]
    {
        // The services only: every message type is the one compiled above,
        // except what the server sends for Execute, ExecuteStream and
        // ExecuteBatch: a reply encoded already (src/encoded.rs). The
        // client decodes the generated messages.
        for (side, server) in [("server", true), ("client", false)] {
            let dir = out_dir.join(side);
            std::fs::create_dir_all(&dir)?;
            let mut config = prost_build::Config::new();
            config.protoc_executable(&protoc);
            let mut builder = tonic_prost_build::configure()
                .build_server(server)
                .build_client(!server)
                .codec_path("crate::codec::OmnigateCodec");
            if server {
                for reply in ["ExecuteResponse", "ExecuteBatchResponse"] {
                    builder = builder.extern_path(
                        format!(".omnigate.v1.{reply}"),
                        "crate::encoded::EncodedReply",
                    );
                }
            }
            builder
                .extern_path(".omnigate.v1", "crate::v1")
                .out_dir(&dir)
                .compile_with_config(config, &protos, &includes)?;
        }
    }
    Ok(())
}
