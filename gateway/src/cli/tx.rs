//! `omnigate tx begin | commit ID | rollback ID`: transactions on a
//! running gateway (statements run in one with `omnigate exec --tx ID`).

use std::time::Duration;

use clap::{Args, Subcommand};
use omnigate_proto::v1 as pb;

use super::{ClientArgs, Failure, connect};

/// `omnigate tx`.
#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(subcommand)]
    action: TxAction,
}

/// What to do with a transaction.
#[derive(Debug, Subcommand)]
enum TxAction {
    /// Begin a transaction and print its id (pass it to `exec --tx`).
    Begin {
        #[command(flatten)]
        client: ClientArgs,
        /// Roll it back when idle this long, e.g. 30s (default: the server's).
        #[arg(long, value_parser = humantime::parse_duration)]
        idle_timeout: Option<Duration>,
        /// Refuse writes on every engine.
        #[arg(long)]
        read_only: bool,
    },
    /// Commit a transaction; prints the engines that took part.
    Commit {
        #[command(flatten)]
        client: ClientArgs,
        /// The transaction's id.
        id: String,
    },
    /// Roll a transaction back.
    Rollback {
        #[command(flatten)]
        client: ClientArgs,
        /// The transaction's id.
        id: String,
    },
}

/// Runs `omnigate tx ...` and returns what to print.
pub async fn tx(args: TxArgs) -> Result<String, Failure> {
    match args.action {
        TxAction::Begin {
            client,
            idle_timeout,
            read_only,
        } => {
            let idle_timeout = idle_timeout
                .map(prost_types::Duration::try_from)
                .transpose()
                .map_err(|e| super::failure(format!("--idle-timeout: {e}"), 2))?;
            let begun = connect(&client.addr)
                .await?
                .begin(pb::BeginRequest {
                    idle_timeout,
                    read_only,
                })
                .await?
                .into_inner();
            Ok(if client.json {
                format!("{}\n", serde_json::json!({ "tx_id": begun.tx_id }))
            } else {
                format!("{}\n", begun.tx_id)
            })
        }
        TxAction::Commit { client, id } => {
            let engines = connect(&client.addr)
                .await?
                .commit(pb::CommitRequest { tx_id: id })
                .await?
                .into_inner()
                .engines;
            Ok(if client.json {
                format!("{}\n", serde_json::json!({ "committed": engines }))
            } else {
                format!("committed on: {}\n", engines.join(", "))
            })
        }
        TxAction::Rollback { client, id } => {
            connect(&client.addr)
                .await?
                .rollback(pb::RollbackRequest { tx_id: id })
                .await?;
            Ok(if client.json {
                "{\"rolled_back\":true}\n".to_owned()
            } else {
                "rolled back\n".to_owned()
            })
        }
    }
}
