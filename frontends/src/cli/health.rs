//! `omnigate health`: the standard gRPC health check (grpc.health.v1),
//! which needs no token, so a container's healthcheck works against a
//! gateway with principals. Exit 0 when serving, 1 when not.

use clap::Args;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::client::channel;
use super::{ClientArgs, Failure, failure};

/// `omnigate health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The service to check: empty for the gateway as a whole, or
    /// `omnigate.engine.NAME` for one engine.
    #[arg(long, default_value = "")]
    service: String,
}

/// Prints `serving`, or fails saying the status.
pub async fn health(args: HealthArgs) -> Result<String, Failure> {
    let mut client = HealthClient::new(channel(&args.client).await?);
    let reply = client
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?
        .into_inner();
    let what = if args.service.is_empty() {
        "the gateway".to_owned()
    } else {
        args.service
    };
    match reply.status() {
        ServingStatus::Serving => Ok("serving\n".to_owned()),
        status => Err(failure(
            format!("{what} is not serving ({})", status.as_str_name()),
            1,
        )),
    }
}
