//! Several statements as one pipeline: one round trip. Statements that
//! cannot be sent (bad syntax or parameters, refused or blocking commands)
//! fail alone; the others run.

use super::commands::{check_allowed, is_blocking};
use super::{KIND, RedisDriver};
use crate::deadline::within;
use crate::redis_syntax::parse_command;
use crate::{EngineError, Error, ExecuteOptions, Result, ResultSet, Statement};

pub(super) async fn run(
    driver: &RedisDriver,
    statements: &[Statement],
    options: &ExecuteOptions,
) -> Result<Vec<Result<ResultSet>>> {
    let mut results: Vec<Option<Result<ResultSet>>> = Vec::with_capacity(statements.len());
    let mut sent = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let prepared = statement
            .check(crate::Dialect::Redis)
            .and_then(|()| parse_command(&statement.text, &statement.params, KIND))
            .and_then(|args| {
                check_allowed(&args)?;
                if is_blocking(&args) {
                    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                    return Err(Error::not_supported(
                        format!("command {name} in a batch (it blocks; send it alone)"),
                        KIND,
                    ));
                }
                Ok(args)
            });
        match prepared {
            Ok(args) => {
                sent.push((i, args));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    if !sent.is_empty() {
        if options.read_only {
            // The parsed command, not the text: a quoted `'SET'` is SET.
            for (i, args) in &sent {
                driver.refuse_writes(args).await.map_err(|e| match e {
                    Error::ReadOnly(report) => Error::ReadOnly(EngineError::new(
                        KIND,
                        None,
                        format!("statement {}: {}", i + 1, report.message),
                    )),
                    other => other,
                })?;
            }
        }
        let commands: Vec<&[bytes::Bytes]> = sent.iter().map(|(_, args)| &args[..]).collect();
        let work = async { driver.pool.link().await?.call(&commands).await };
        let replies = within(options.timeout, work).await;
        // The replies together are held to the call's bytes, as one
        // result is (each reply is a row of its own result, so rows are
        // not counted across them): what passes is an error in its place.
        let mut limits = crate::ResultLimits::new(&crate::ExecuteOptions {
            max_rows: None,
            ..options.clone()
        });
        for ((i, _), reply) in sent.into_iter().zip(replies?) {
            results[i] = Some(reply.into_value(KIND, options.raw_bytes).and_then(|value| {
                let set = ResultSet::reply(value);
                limits.admit(set.rows.first().unwrap_or_default())?;
                Ok(set)
            }));
        }
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::Internal(EngineError::new(
                    KIND,
                    None,
                    "no reply for a statement",
                )))
            })
        })
        .collect())
}
