//! `omnigate engine drain|resume NAME`: take an engine out of service on
//! purpose, and put it back.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use omnigate_proto::v1 as pb;

use super::{ClientArgs, Failure, connect, failure};

/// `omnigate engine`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// What to do.
    #[command(subcommand)]
    action: EngineAction,
}

#[derive(Debug, Subcommand)]
enum EngineAction {
    /// Drain an engine: no new calls (UNAVAILABLE), while calls and
    /// transactions in flight finish; says what is left in flight.
    Drain {
        #[command(flatten)]
        client: ClientArgs,
        /// The engine.
        name: String,
        /// Wait until nothing is in flight (at most this long, e.g. 30s).
        #[arg(long, value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Put a drained engine back in service.
    Resume {
        #[command(flatten)]
        client: ClientArgs,
        /// The engine.
        name: String,
    },
}

/// Runs `omnigate engine ...`; what to print.
pub async fn engine(args: EngineArgs) -> Result<String, Failure> {
    match args.action {
        EngineAction::Drain { client, name, wait } => {
            let mut gateway = connect(&client).await?;
            let started = Instant::now();
            loop {
                let left = gateway
                    .drain_engine(pb::DrainEngineRequest {
                        engine: name.clone(),
                    })
                    .await?
                    .into_inner();
                let said = format!(
                    "engine {name} drained: {} calls and {} transactions in flight{}\n",
                    left.calls_in_flight,
                    left.transactions_in_flight,
                    if left.idle { " (idle)" } else { "" }
                );
                match wait {
                    Some(limit) if !left.idle => {
                        if started.elapsed() >= limit {
                            return Err(failure(
                                format!("{}still busy after {limit:?}", said.trim_end()),
                                1,
                            ));
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    _ => return Ok(said),
                }
            }
        }
        EngineAction::Resume { client, name } => {
            connect(&client)
                .await?
                .resume_engine(pb::ResumeEngineRequest {
                    engine: name.clone(),
                })
                .await?;
            Ok(format!("engine {name} resumed\n"))
        }
    }
}
