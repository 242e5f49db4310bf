//! `omnigate tx begin | commit ID | rollback ID`: transactions on a
//! running gateway (statements run in one with `omnigate exec --tx ID`);
//! and for operators, `omnigate tx list | show ID | resolve ID
//! --commit|--rollback`.

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
    /// List every transaction not yet finished: open, prepared,
    /// committing, failed after commit.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one transaction not yet finished.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The transaction's id.
        id: String,
    },
    /// Resolve by hand a transaction recovery cannot decide or finish
    /// (refused where it would contradict a recorded decision).
    Resolve {
        #[command(flatten)]
        client: ClientArgs,
        /// The transaction's id.
        id: String,
        /// Commit it (finish it forward; for a failed-after-commit one:
        /// acknowledge it, once its data is mended).
        #[arg(
            long,
            conflicts_with = "rollback",
            required_unless_present = "rollback"
        )]
        commit: bool,
        /// Roll it back.
        #[arg(long)]
        rollback: bool,
    },
}

/// A state's name.
fn state_name(state: i32) -> &'static str {
    use pb::transaction_info::State;
    match State::try_from(state) {
        Ok(State::Active) => "ACTIVE",
        Ok(State::Prepared) => "PREPARED",
        Ok(State::Committing) => "COMMITTING",
        Ok(State::FailedAfterCommit) => "FAILED_AFTER_COMMIT",
        _ => "UNKNOWN",
    }
}

fn info_json(t: &pb::TransactionInfo) -> serde_json::Value {
    serde_json::json!({
        "tx_id": t.tx_id,
        "state": state_name(t.state),
        "engines": t.engines,
        "age_ms": t.age.map(|a| a.seconds * 1000 + i64::from(a.nanos) / 1_000_000),
        "detail": t.detail,
        "writes": t.writes.iter().map(write_text).collect::<Vec<_>>(),
    })
}

/// A write as a command line: each argument quoted as redis-cli quotes
/// a reply (printable ASCII as is, other bytes escaped), so it reads
/// and pastes back.
fn write_text(write: &pb::Write) -> String {
    let args: Vec<String> = write
        .args
        .iter()
        .map(|arg| {
            let mut quoted = String::from("\"");
            for &b in arg {
                match b {
                    b'"' | b'\\' => quoted.extend(['\\', char::from(b)]),
                    b'\n' => quoted.push_str("\\n"),
                    b'\r' => quoted.push_str("\\r"),
                    b'\t' => quoted.push_str("\\t"),
                    0x20..=0x7e => quoted.push(char::from(b)),
                    _ => quoted.push_str(&format!("\\x{b:02x}")),
                }
            }
            quoted.push('"');
            quoted
        })
        .collect();
    args.join(" ")
}

fn age_text(t: &pb::TransactionInfo) -> String {
    t.age
        .map(|a| format!("{}s", a.seconds))
        .unwrap_or_else(|| "-".into())
}

async fn listed(client: &ClientArgs) -> Result<Vec<pb::TransactionInfo>, Failure> {
    Ok(connect(client)
        .await?
        .list_transactions(pb::ListTransactionsRequest {})
        .await?
        .into_inner()
        .transactions)
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
            let begun = connect(&client)
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
            let engines = connect(&client)
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
            connect(&client)
                .await?
                .rollback(pb::RollbackRequest { tx_id: id })
                .await?;
            Ok(if client.json {
                "{\"rolled_back\":true}\n".to_owned()
            } else {
                "rolled back\n".to_owned()
            })
        }
        TxAction::List { client } => {
            let all = listed(&client).await?;
            if client.json {
                let items: Vec<_> = all.iter().map(info_json).collect();
                return Ok(format!("{}\n", serde_json::Value::Array(items)));
            }
            if all.is_empty() {
                return Ok("no transaction is unfinished\n".into());
            }
            let mut out = format!("{:<38} {:<20} {:>6}  {}\n", "TX", "STATE", "AGE", "ENGINES");
            for t in &all {
                out.push_str(&format!(
                    "{:<38} {:<20} {:>6}  {}\n",
                    t.tx_id,
                    state_name(t.state),
                    age_text(t),
                    t.engines.join(",")
                ));
            }
            Ok(out)
        }
        TxAction::Show { client, id } => {
            let Some(t) = listed(&client).await?.into_iter().find(|t| t.tx_id == id) else {
                return Err(super::failure(
                    format!("transaction {id} is not unfinished (it ended, or never began)"),
                    1,
                ));
            };
            Ok(if client.json {
                format!("{}\n", info_json(&t))
            } else {
                let mut out = format!(
                    "tx:      {}\nstate:   {}\nage:     {}\nengines: {}\ndetail:  {}\n",
                    t.tx_id,
                    state_name(t.state),
                    age_text(&t),
                    t.engines.join(", "),
                    t.detail
                );
                if !t.writes.is_empty() {
                    out.push_str("writes to re-apply (after checking which stand):\n");
                    for write in &t.writes {
                        out.push_str(&format!("  {}\n", write_text(write)));
                    }
                }
                out
            })
        }
        TxAction::Resolve {
            client,
            id,
            commit,
            rollback,
        } => {
            let _ = rollback;
            let outcome = connect(&client)
                .await?
                .resolve_transaction(pb::ResolveTransactionRequest { tx_id: id, commit })
                .await?
                .into_inner()
                .outcome;
            Ok(if client.json {
                format!("{}\n", serde_json::json!({ "outcome": outcome }))
            } else {
                format!("{outcome}\n")
            })
        }
    }
}
